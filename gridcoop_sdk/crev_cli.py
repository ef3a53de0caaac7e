"""``gridcoop crev …``: retire C-REV, trace a retirement certificate, show lot balances and the
emission-factor schedule.

The token is found by ``--crev ADDRESS`` or, without it, at ``<region>.CarbonReductionValue`` in the
deployments file of the connected chain. Keys are never passed on the command line: commands that
send a transaction read the private key from the environment variable named by ``--key-env``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from eth_account import Account
from web3 import Web3

from .chain import connect
from .crev import (
    Crev,
    balance,
    emission_factor_schedule,
    format_crev,
    format_trace,
    load_crev,
    parse_crev,
    retire,
    set_emission_factor,
    trace,
)
from .exceptions import GridcoopError
from .units import INTERVAL_SECONDS

DEFAULT_KEY_ENV = "GRIDCOOP_PRIVATE_KEY"


def _connection_options(fn):
    fn = click.option("--deployments", "deployments_dir", type=click.Path(file_okay=False, path_type=Path),
                      default=None, help="Folder of deployments/<chainId>.json (default: the project's "
                      "deployments/, or $GRIDCOOP_DEPLOYMENTS).")(fn)
    fn = click.option("--region", default="default", show_default=True,
                      help="Region whose recorded C-REV to use when --crev is not given.")(fn)
    fn = click.option("--crev", "crev_address", default=None, metavar="ADDRESS",
                      help="C-REV token address (default: the recorded <region>.CarbonReductionValue).")(fn)
    fn = click.option("--rpc-url", envvar="GRIDCOOP_RPC_URL", default="http://127.0.0.1:8545", show_default=True,
                      metavar="URL", help="JSON-RPC URL of the node (or $GRIDCOOP_RPC_URL).")(fn)
    return fn


def _key_option(fn):
    return click.option("--key-env", default=DEFAULT_KEY_ENV, show_default=True, metavar="NAME",
                        help="Environment variable holding the sender's private key (hex).")(fn)


def _open(rpc_url: str, crev_address: str | None, region: str, deployments_dir: Path | None) -> tuple[Web3, Crev]:
    w3 = connect(rpc_url)
    if crev_address is not None and not Web3.is_address(crev_address):
        raise click.BadParameter(f"{crev_address!r} is not an address", param_hint="--crev")
    return w3, load_crev(w3, crev_address, region=region, directory=deployments_dir)


def _account(key_env: str):
    key = os.environ.get(key_env)
    if not key:
        raise click.UsageError(f"no private key: set the environment variable {key_env} (see --key-env)")
    try:
        return Account.from_key(key.strip())
    except Exception as exc:  # malformed hex, wrong length
        raise click.UsageError(f"${key_env} does not hold a valid private key ({type(exc).__name__})") from exc


def _time(value: str | None, name: str) -> int | None:
    """Unix seconds, or an ISO date/time (UTC if no zone)."""
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    try:
        dt = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is neither Unix seconds nor an ISO date (2026-05-01)",
                                 param_hint=name) from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def _run(fn, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except GridcoopError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return "0x" + obj.hex()
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def crev() -> None:
    """C-REV carbon-reduction value: retire, trace a certificate, balances by lot, emission factor."""


@crev.command("retire")
@click.argument("amount")
@click.option("--beneficiary", default=None, metavar="ADDRESS",
              help="Address on whose behalf the CO2 is offset (give this, --beneficiary-name, or both).")
@click.option("--beneficiary-name", default="", help="Name of the beneficiary (public forever).")
@click.option("--message", default="", help="Reason/message recorded in the certificate (public forever).")
@click.option("--period-start", default=None, metavar="TIME",
              help="Start of the consumption period offset: Unix seconds or ISO date (default: 0).")
@click.option("--period-end", default=None, metavar="TIME",
              help="End of the consumption period: Unix seconds or ISO date (default: the start).")
@click.option("--holder", default=None, metavar="ADDRESS",
              help="Retire this holder's C-REV through the allowance it gave the sender (retireFrom); "
                   "the certificate goes to the holder.")
@_key_option
@_connection_options
def retire_cmd(amount: str, beneficiary: str | None, beneficiary_name: str, message: str,
               period_start: str | None, period_end: str | None, holder: str | None, key_env: str,
               rpc_url: str, crev_address: str | None, region: str, deployments_dir: Path | None) -> None:
    """Retire AMOUNT of C-REV (t-CO2e: 0.5, 0.5t, 450kg, 12g or 123units) into a certificate.

    The burnt C-REV is gone for good; the certificate NFT cannot be transferred. The beneficiary
    name and the message are stored on chain and are PUBLIC FOREVER.
    """
    try:
        units = parse_crev(amount)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="AMOUNT") from exc
    for value, hint in ((beneficiary, "--beneficiary"), (holder, "--holder")):
        if value is not None and not Web3.is_address(value):
            raise click.BadParameter(f"{value!r} is not an address", param_hint=hint)
    start = _time(period_start, "--period-start") or 0
    end = _time(period_end, "--period-end")
    account = _account(key_env)
    w3, c = _run(_open, rpc_url, crev_address, region, deployments_dir)
    if message or beneficiary_name:
        click.echo("note: the beneficiary name and message are public on chain forever", err=True)
    cert = _run(retire, w3, account, c, units, beneficiary=beneficiary, beneficiary_name=beneficiary_name,
                message=message, period_start=start, period_end=end, holder=holder)
    click.echo(f"retired {format_crev(units)} as certificate #{cert} "
               f"(certificate NFT {c.certificate.address}, holder {holder or account.address})")


@crev.command("trace")
@click.argument("certificate", type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print the trace as JSON instead of text.")
@_connection_options
def trace_cmd(certificate: int, as_json: bool, rpc_url: str, crev_address: str | None, region: str,
              deployments_dir: Path | None) -> None:
    """Print where certificate CERTIFICATE's value came from: its lots (meter, interval), every
    transfer of those lots to the retiring holder, and the retirement."""
    w3, c = _run(_open, rpc_url, crev_address, region, deployments_dir)
    t = _run(trace, w3, c, certificate)
    if as_json:
        click.echo(json.dumps(_jsonable({"retirement": asdict(t.retirement), "lots": [asdict(x) for x in t.lots],
                                         "transfers": [asdict(x) for x in t.transfers]}), indent=2))
    else:
        click.echo(format_trace(t))


@crev.command("balance")
@click.argument("address", required=False)
@click.option("--key-env", default=DEFAULT_KEY_ENV, show_default=True, metavar="NAME",
              help="Without ADDRESS: show the account of the private key in this environment variable.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@_connection_options
def balance_cmd(address: str | None, key_env: str, as_json: bool, rpc_url: str, crev_address: str | None,
                region: str, deployments_dir: Path | None) -> None:
    """Show ADDRESS's C-REV balance split by lot (meter, interval), in the order transfers spend them."""
    if address is None:
        address = _account(key_env).address
    elif not Web3.is_address(address):
        raise click.BadParameter(f"{address!r} is not an address", param_hint="ADDRESS")
    w3, c = _run(_open, rpc_url, crev_address, region, deployments_dir)
    b = _run(balance, w3, c, address)
    if as_json:
        click.echo(json.dumps(_jsonable({"holder": b.holder, "total": b.total,
                                         "lots": [{**asdict(h.lot), "held": h.amount} for h in b.lots]}), indent=2))
        return
    click.echo(f"{b.holder}: {format_crev(b.total)} in {len(b.lots)} lot(s)")
    for h in b.lots:
        i = h.lot
        click.echo(f"  lot {i.lot_id}: {format_crev(h.amount)} from meter 0x{i.meter_id.hex()} "
                   f"interval {i.interval_id} ({i.self_consumed_wh} Wh x {i.factor_g_per_kwh} g/kWh)")


@crev.command("factor")
@click.option("--set", "new_factor", type=click.IntRange(min=0, max=2000), default=None, metavar="G_PER_KWH",
              help="Schedule a new emission factor (needs PARAMETER_ROLE); without it, only show the schedule.")
@click.option("--effective-interval", type=click.IntRange(min=0), default=None, metavar="ID",
              help="With --set: first interval id (Unix start / 900) it applies to (default: the next one).")
@_key_option
@_connection_options
def factor_cmd(new_factor: int | None, effective_interval: int | None, key_env: str, rpc_url: str,
               crev_address: str | None, region: str, deployments_dir: Path | None) -> None:
    """Show the emission-factor schedule (g-CO2/kWh by first interval), or schedule a change.

    A change applies to readings of later intervals only; readings already made keep their factor.
    """
    if effective_interval is not None and new_factor is None:
        raise click.UsageError("--effective-interval needs --set")
    w3, c = _run(_open, rpc_url, crev_address, region, deployments_dir)
    if new_factor is not None:
        account = _account(key_env)
        _run(set_emission_factor, w3, account, c, new_factor, effective_from_interval=effective_interval)
    now = w3.eth.get_block("latest")["timestamp"] // INTERVAL_SECONDS
    click.echo(f"emission factor schedule of C-REV {c.address} (current interval {now}):")
    for start, factor in emission_factor_schedule(c):
        click.echo(f"  from interval {start:>10}: {factor} g-CO2/kWh")
