"""``gridcoop meters …``: a meter's device key, its registration on chain, and its on-chain state.
Logic: :mod:`gridcoop_sdk.meters`, :mod:`gridcoop_sdk.readings`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from web3 import Web3

from gridcoop_sdk.exceptions import TransactionFailed
from gridcoop_sdk.meters import get_meter, register_meter
from gridcoop_sdk.readings import meter_id

from .common import Chain, account_from_env, chain_options, checked_address, group, key_env_option

registry_option = click.option("--registry", default=None, metavar="ADDRESS",
                               help="MeterRegistry address, for one deployed outside a region "
                                    "(default: the region's MeterRegistry).")


@group("meters")
def meters() -> None:
    """Smart meters: device keys, registration in the region's MeterRegistry, on-chain state.

    A meter signs its readings with a device key (`keygen`); an account with REGISTRAR_ROLE
    ($GRIDCOOP_REGISTRAR_KEY) registers the key's address with the meter's owner and rating.
    """


@meters.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Keystore file to write.")
@click.option("--passphrase-env", default="METER_KEY_PASSPHRASE", show_default=True, metavar="NAME",
              help="Environment variable holding the passphrase that encrypts the key.")
def keygen(out: str, passphrase_env: str) -> None:
    """Create a meter device key as an encrypted keystore file and print its address."""
    from eth_account import Account

    passphrase = os.environ.get(passphrase_env)
    if not passphrase:
        raise click.UsageError(f"set {passphrase_env} to the passphrase for the new key")
    p = Path(out)
    if p.exists():
        raise click.UsageError(f"{out} exists; refusing to overwrite a device key")
    acct = Account.create()
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(Account.encrypt(acct.key, passphrase)))
    os.chmod(p, 0o600)
    click.echo(acct.address)


def _keystore_address(path: str) -> str:
    try:
        data = json.loads(Path(path).read_text())
        return Web3.to_checksum_address("0x" + str(data["address"]).removeprefix("0x"))
    except FileNotFoundError as exc:
        raise click.BadParameter(f"{path} not found", param_hint="--key-file") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise click.BadParameter(f"{path} is not a keystore file with an address (make one with "
                                 "`gridcoop meters keygen`)", param_hint="--key-file") from exc


@meters.command()
@registry_option
@chain_options
@key_env_option("GRIDCOOP_REGISTRAR_KEY", "an account holding the registry's REGISTRAR_ROLE")
@click.option("--meter", "meter_name", required=True, help="Meter name (its id is keccak256 of it) or 0x-id.")
@click.option("--signer", default=None, metavar="ADDRESS", help="Device key address (or use --key-file).")
@click.option("--key-file", default=None, type=click.Path(dir_okay=False),
              help="Device keystore; its address is the signer (no passphrase needed).")
@click.option("--owner", required=True, metavar="ADDRESS", help="Account that receives WATT (and C-REV).")
@click.option("--kind", type=click.Choice(["producer", "consumer", "prosumer", "battery"]), required=True,
              help="What the meter measures.")
@click.option("--colour", default="solar", show_default=True, help="Energy source attribute (solar, wind, grid …).")
@click.option("--certified/--not-certified", default=False, show_default=True,
              help="Calibrated meter (needed for C-REV).")
@click.option("--rated-power-w", type=click.IntRange(1, 2**32 - 1), required=True,
              help="Rated power in W (plausibility limit).")
@click.option("--location", default="", help="Location, e.g. a geohash.")
def register(registry: str | None, chain: Chain, key_env: str, meter_name: str, signer: str | None,
             key_file: str | None, owner: str, kind: str, colour: str, certified: bool, rated_power_w: int,
             location: str) -> None:
    """Register a meter on chain (needs REGISTRAR_ROLE; after a region's hand-over the DAO treasury
    holds it, so a DAO proposal grants it to a registrar or registers the meter itself)."""
    registrar = account_from_env(key_env, "the registrar")
    if bool(signer) == bool(key_file):
        raise click.UsageError("give exactly one of --signer or --key-file")
    signer = checked_address(signer, "--signer") if signer else _keystore_address(key_file)  # type: ignore[arg-type]
    owner = checked_address(owner, "--owner")  # type: ignore[assignment]
    reg = chain.contract("MeterRegistry", registry, "--registry")
    role = reg.functions.REGISTRAR_ROLE().call()
    if not reg.functions.hasRole(role, registrar.address).call():
        raise click.ClickException(
            f"{registrar.address} (the key in ${key_env}) lacks REGISTRAR_ROLE on the MeterRegistry {reg.address}: "
            "after a region's hand-over the DAO treasury holds it; ask the DAO to grant it by proposal "
            f"(gridcoop dao propose --call {chain.region or 'REGION'}.MeterRegistry grantRole …) or to register "
            "the meter by proposal (the registry would refuse with AccessControlUnauthorizedAccount)")
    mid = meter_id(meter_name)
    rcpt = register_meter(chain.w3, registrar, reg, meter_id=mid, signer=signer, owner=owner, kind=kind,
                          colour=colour, certified=certified, rated_power_w=rated_power_w, location=location)
    click.echo(f"registered {meter_name} as 0x{mid.hex()} (tx 0x{bytes(rcpt['transactionHash']).hex()})")


@meters.command()
@click.argument("meter")
@registry_option
@chain_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(meter: str, registry: str | None, chain: Chain, as_json: bool) -> None:
    """Show meter METER (name or 0x-id) as registered: signer, owner, kind, rating, last reading."""
    reg = chain.contract("MeterRegistry", registry, "--registry")
    # a region's meters are named <region>:<household>:main and <region>:<battery>:battery
    names = [meter] + ([f"{chain.region}:{meter}:main", f"{chain.region}:{meter}:battery"]
                       if chain.region and not meter.startswith("0x") else [])
    m = None
    for name in names:
        try:
            m = get_meter(reg, name)
        except TransactionFailed as exc:
            if exc.error_name != "MeterNotRegistered":
                raise
            continue
        meter = name
        break
    if m is None:
        raise click.ClickException(f"no meter {' or '.join(repr(n) for n in names)} in the MeterRegistry "
                                   f"{reg.address}; register it with `gridcoop meters register`")
    if as_json:
        click.echo(json.dumps({k: (v.hex() if isinstance(v, bytes) else v) for k, v in m.items()}, indent=2))
        return
    click.echo(f"meter {meter} (0x{meter_id(meter).hex()}) in {reg.address}")
    for k, v in m.items():
        click.echo(f"  {k:<18} {v}")
