"""``gridcoop crev …``: C-REV balances by lot, retirement into a certificate, the trace of a
certificate, and the emission-factor schedule. Logic: :mod:`gridcoop_sdk.crev`."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import click

from gridcoop_sdk.crev import (
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
from gridcoop_sdk.units import INTERVAL_SECONDS

from .common import Chain, account_from_env, chain_options, checked_address, group, key_env_option

KEY_ENV = "GRIDCOOP_KEY"


def _crev_options(fn):
    fn = click.option("--crev", "crev_address", default=None, metavar="ADDRESS",
                      help="C-REV token address, for a token deployed outside a region "
                           "(default: the region's CarbonReductionValue).")(fn)
    return chain_options(fn)


def _open(chain: Chain, crev_address: str | None) -> Crev:
    address = chain.address("CarbonReductionValue", crev_address, "--crev")
    return load_crev(chain.w3, address, directory=chain.deployments_dir)


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


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return "0x" + obj.hex()
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


@group("crev")
def crev() -> None:
    """C-REV carbon-reduction value: balances by lot, retire, trace a certificate, emission factor.

    1 C-REV = 1 t-CO2e avoided; amounts are written 0.5, 0.5t, 450kg, 12g or 123units. Commands
    that send a transaction sign with the key in $GRIDCOOP_KEY (see --key-env).
    """


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
@key_env_option(KEY_ENV, "the retiring holder")
@_crev_options
def retire_cmd(amount: str, beneficiary: str | None, beneficiary_name: str, message: str,
               period_start: str | None, period_end: str | None, holder: str | None, key_env: str,
               chain: Chain, crev_address: str | None) -> None:
    """Retire AMOUNT of C-REV (t-CO2e: 0.5, 0.5t, 450kg, 12g or 123units) into a certificate.

    The burnt C-REV is gone for good; the certificate NFT cannot be transferred. The beneficiary
    name and the message are stored on chain and are PUBLIC FOREVER.
    """
    try:
        units = parse_crev(amount)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="AMOUNT") from exc
    beneficiary = checked_address(beneficiary, "--beneficiary")
    holder = checked_address(holder, "--holder")
    start = _time(period_start, "--period-start") or 0
    end = _time(period_end, "--period-end")
    account = account_from_env(key_env, "the holder")
    c = _open(chain, crev_address)
    if message or beneficiary_name:
        click.echo("note: the beneficiary name and message are public on chain forever", err=True)
    cert = retire(chain.w3, account, c, units, beneficiary=beneficiary, beneficiary_name=beneficiary_name,
                  message=message, period_start=start, period_end=end, holder=holder)
    click.echo(f"retired {format_crev(units)} as certificate #{cert} "
               f"(certificate NFT {c.certificate.address}, holder {holder or account.address})")


@crev.command("trace")
@click.argument("certificate", type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print the trace as JSON instead of text.")
@_crev_options
def trace_cmd(certificate: int, as_json: bool, chain: Chain, crev_address: str | None) -> None:
    """Print where certificate CERTIFICATE's value came from: its lots (meter, interval), every
    transfer of those lots to the retiring holder, and the retirement."""
    c = _open(chain, crev_address)
    t = trace(chain.w3, c, certificate)
    if as_json:
        click.echo(json.dumps(_jsonable({"retirement": asdict(t.retirement), "lots": [asdict(x) for x in t.lots],
                                         "transfers": [asdict(x) for x in t.transfers]}), indent=2))
    else:
        click.echo(format_trace(t))


@crev.command("balance")
@click.argument("address", required=False)
@key_env_option(KEY_ENV, "the holder (used without ADDRESS)")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@_crev_options
def balance_cmd(address: str | None, key_env: str, as_json: bool, chain: Chain, crev_address: str | None) -> None:
    """Show ADDRESS's C-REV balance split by lot (meter, interval), in the order transfers spend them.

    Without ADDRESS: the account of the key in $GRIDCOOP_KEY (see --key-env).
    """
    if address is None:
        address = account_from_env(key_env, "the holder").address
    else:
        address = checked_address(address, "ADDRESS")
    c = _open(chain, crev_address)
    b = balance(chain.w3, c, address)
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
@key_env_option(KEY_ENV, "an account with PARAMETER_ROLE (with --set)")
@_crev_options
def factor_cmd(new_factor: int | None, effective_interval: int | None, key_env: str, chain: Chain,
               crev_address: str | None) -> None:
    """Show the emission-factor schedule (g-CO2/kWh by first interval), or schedule a change.

    A change applies to readings of later intervals only; readings already made keep their factor.
    """
    if effective_interval is not None and new_factor is None:
        raise click.UsageError("--effective-interval needs --set")
    account = account_from_env(key_env, "an account with PARAMETER_ROLE") if new_factor is not None else None
    c = _open(chain, crev_address)
    if account is not None:
        set_emission_factor(chain.w3, account, c, new_factor, effective_from_interval=effective_interval)
    now = chain.w3.eth.get_block("latest")["timestamp"] // INTERVAL_SECONDS
    click.echo(f"emission factor schedule of C-REV {c.address} (current interval {now}):")
    for start, factor in emission_factor_schedule(c):
        click.echo(f"  from interval {start:>10}: {factor} g-CO2/kWh")
