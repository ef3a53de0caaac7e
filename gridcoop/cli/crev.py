"""``gridcoop crev …``: C-REV balances by lot, retirement into a certificate, the trace of a
certificate, the emission-factor schedule, and a member's carbon view per interval. Logic:
:mod:`gridcoop_sdk.crev` and :mod:`gridcoop_sdk.carbon`."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import click

from gridcoop_sdk.carbon import CarbonFeed, CarbonInterval, Factors, crev_factor_schedule, interval_start
from gridcoop_sdk.crev import (
    Crev,
    balance,
    emission_factor_schedule,
    format_crev,
    format_interval,
    format_trace,
    load_crev,
    parse_crev,
    retire,
    set_emission_factor,
    trace,
)
from gridcoop_sdk.units import INTERVAL_SECONDS

from .common import (
    Chain,
    account_from_env,
    address_callback,
    chain_options,
    checked_address,
    group,
    key_env_option,
)

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


def _iso(ts: int) -> str:
    try:
        return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):  # past year 9999: uint64 seconds can hold it
        return f"unix {int(ts)}"


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
    """C-REV carbon-reduction value: balances by lot, retire, trace a certificate, emission factor,
    and a member's renewable share, CO2 and claimable C-REV per interval (report).

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
                   f"interval {format_interval(i.interval_start, i.interval_seconds)} "
                   f"({i.self_consumed_wh} Wh x {i.factor_g_per_kwh} g/kWh)")


@crev.command("factor")
@click.option("--set", "new_factor", type=click.IntRange(min=0, max=2000), default=None, metavar="G_PER_KWH",
              help="Schedule a new emission factor (needs PARAMETER_ROLE); without it, only show the schedule.")
@click.option("--effective-from", default=None, metavar="TIME",
              help="With --set: readings of intervals starting at or after TIME (Unix seconds or an ISO "
                   "date/time, UTC if no zone; at least 15 minutes ahead) get the new factor "
                   "(default: intervals starting 15 minutes from now on).")
@click.option("--effective-interval", type=click.IntRange(min=0), default=None, metavar="ID",
              help="With --set: the same, given as a 15-minute interval id (TIME = ID x 900).")
@key_env_option(KEY_ENV, "an account with PARAMETER_ROLE (with --set)")
@_crev_options
def factor_cmd(new_factor: int | None, effective_from: str | None, effective_interval: int | None, key_env: str,
               chain: Chain, crev_address: str | None) -> None:
    """Show the emission-factor schedule (g-CO2/kWh by the interval start it applies from), or
    schedule a change.

    A factor applies to readings by the start time of their interval, whatever the interval length.
    A change applies only to intervals starting at least 15 minutes after it is made; readings of
    earlier intervals, even when they arrive late, keep their factor.
    """
    if (effective_interval is not None or effective_from is not None) and new_factor is None:
        raise click.UsageError("--effective-from/--effective-interval need --set")
    if effective_interval is not None and effective_from is not None:
        raise click.UsageError("give --effective-from or --effective-interval, not both")
    start = _time(effective_from, "--effective-from")
    if effective_interval is not None:
        start = effective_interval * INTERVAL_SECONDS
    account = account_from_env(key_env, "an account with PARAMETER_ROLE") if new_factor is not None else None
    c = _open(chain, crev_address)
    if account is not None:
        set_emission_factor(chain.w3, account, c, new_factor, effective_from=start)
    now = chain.w3.eth.get_block("latest")["timestamp"]
    click.echo(f"emission factor schedule of C-REV {c.address} (chain time {_iso(now)}):")
    for since, factor in emission_factor_schedule(c):
        when = "the start" if since == 0 else f"{_iso(since)} ({since})"
        click.echo(f"  intervals from {when}: {factor} g-CO2/kWh")


# ------------------------------------------------------------------------------ report


def _maybe_address(chain: Chain, contract: str, override: str | None, option: str) -> str | None:
    """``override``, else the region's record of ``contract`` if the region has one, else ``None``."""
    if override:
        return checked_address(override, option)
    if not chain.region:
        return None
    return chain.regions().get(chain.region, {}).get(contract) and chain.address(contract)


def _interval_seconds(chain: Chain, registry: str | None) -> int:
    if not registry:
        return INTERVAL_SECONDS
    abi = [{"type": "function", "name": "intervalLength", "stateMutability": "view", "inputs": [],
            "outputs": [{"type": "uint32", "name": ""}]}]
    try:
        return int(chain.w3.eth.contract(address=registry, abi=abi).functions.intervalLength().call())
    except Exception:  # a registry without the getter (a stand-in): the 900-second convention
        return INTERVAL_SECONDS


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.1f}%"


def _num(x: float, unit: str) -> str:
    return "-" if math.isnan(x) else f"{x:,.1f} {unit}"


def _row_text(r: CarbonInterval, revised: bool = False) -> str:
    when = datetime.fromtimestamp(interval_start(r.interval_id), UTC).strftime("%Y-%m-%d %H:%M")
    text = (f"interval {r.interval_id} ({when}Z): demand {r.demand_wh} Wh, renewable {_pct(r.renewable_ratio)} "
            f"({r.renewable_wh:,.1f} Wh), CO2 {_num(r.co2_g, 'g')} (net {_num(r.net_co2_g, 'g')}), "
            f"{_num(r.avg_emission_factor_g_per_kwh, 'g/kWh')}; C-REV earned {format_crev(r.crev_earned)}, "
            f"kept {format_crev(r.crev_kept)}, retired {format_crev(r.crev_retired)}, "
            f"claimed {format_crev(r.crev_claimed)}")
    if r.passed_on_wh:
        text += f"; {r.passed_on_wh:,.1f} Wh of self-consumption passed on with its C-REV"
    return text + (" (revised)" if revised else "")


def _row_json(r: CarbonInterval, revised: bool = False) -> str:
    d = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(r).items()}
    d["interval_start"] = interval_start(r.interval_id)
    d["revised"] = revised
    for k in ("crev_earned", "crev_kept", "crev_retired", "crev_claimed"):
        d[k] = str(d[k])  # base units: exact as a string (JSON numbers lose digits past 2**53)
    return json.dumps(d)


def follow(feed: CarbonFeed, emit: Callable[[CarbonInterval, bool], None], *, poll_seconds: float,
           polls: int | None = None, sleep: Callable[[float], None] = time.sleep) -> int:
    """Poll ``feed`` and emit each interval as it settles (and again, flagged, when it is revised).
    Stops after ``polls`` polls (None: until interrupted); returns the number of intervals emitted."""
    n = done = 0
    while polls is None or done < polls:
        for row, revised in feed.poll():
            emit(row, revised)
            n += 1
        done += 1
        if polls is None or done < polls:
            sleep(poll_seconds)
    return n


@crev.command("report")
@click.option("--member", required=True, metavar="ADDRESS", callback=address_callback,
              help="The member (household account) whose intervals to show.")
@click.option("--live", is_flag=True,
              help="Keep following new blocks and print each interval once it settles (and again, marked "
                   "'(revised)', if a late reading or a later C-REV sale or retirement changes it); Ctrl-C ends.")
@click.option("--poll", "poll_seconds", type=click.FloatRange(min=0.05), default=2.0, show_default=True,
              metavar="SECONDS", help="With --live: how often to read new blocks.")
@click.option("--settle-after", type=click.IntRange(min=0), default=60, show_default=True, metavar="SECONDS",
              help="An interval counts as settled once the latest block is this long past its end (readings "
                   "and trades of the interval have arrived by then). Without --live, unsettled intervals are "
                   "shown too, marked '(open)'.")
@click.option("--grid-factor", type=click.FloatRange(min=0, max=2000), default=None, metavar="G_PER_KWH",
              help="Emission factor of energy from the public grid (default: C-REV's DAO-set factor for each "
                   "interval).")
@click.option("--other-factor", type=click.FloatRange(min=0, max=2000), default=None, metavar="G_PER_KWH",
              help="Emission factor of non-renewable or unknown-colour energy bought from neighbours "
                   "(default: the grid factor).")
@click.option("--from-block", type=click.IntRange(min=0), default=None, metavar="N",
              help="First block to read logs from (default: C-REV's deployment block, else 0).")
@click.option("--registry", "registry_address", default=None, metavar="ADDRESS",
              help="MeterRegistry whose readings to use (default: the region's).")
@click.option("--market", "market_address", default=None, metavar="ADDRESS",
              help="EnergyMarket whose trades to use (default: the region's, if it has one).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per interval (C-REV as base units).")
@_crev_options
def report_cmd(member: str, live: bool, poll_seconds: float, settle_after: int, grid_factor: float | None,
               other_factor: float | None, from_block: int | None, registry_address: str | None,
               market_address: str | None, as_json: bool, chain: Chain, crev_address: str | None) -> None:
    """Show MEMBER's carbon view per interval: demand, renewable share, CO2 (and net of retired C-REV),
    average emission factor, and the C-REV earned, kept, retired and claimed.

    Each tonne of C-REV is claimed once: a producer's self-consumption counts as renewable only for
    the C-REV it still holds or that was retired for it; C-REV it sold is claimed by the buyer when
    retired (by the beneficiary address of the retirement, else its holder). Energy of an unknown
    colour is never renewable; the grid participant's is 'grid'. See docs/crev.md.
    """
    c = _open(chain, crev_address)
    registry = _maybe_address(chain, "MeterRegistry", registry_address, "--registry")
    market = _maybe_address(chain, "EnergyMarket", market_address, "--market")
    if registry is None:
        raise click.UsageError("no meter readings to report on: give --registry ADDRESS or --region NAME")
    grid = grid_factor if grid_factor is not None else crev_factor_schedule(chain.w3, c.address)
    feed = CarbonFeed(chain.w3, member, Factors(grid=grid, other=other_factor), registry=registry, market=market,
                      crev=c.address, from_block=c.deploy_block if from_block is None else from_block,
                      settle_after=settle_after, interval_seconds=_interval_seconds(chain, registry))

    def emit(row: CarbonInterval, revised: bool, note: str = "") -> None:
        click.echo(_row_json(row, revised) if as_json else _row_text(row, revised) + note)

    if not live:
        feed.refresh()
        settled = {r.interval_id for r, _ in feed.poll()}
        rows = feed.intervals()
        if not as_json:
            click.echo(f"{member}: {len(rows)} interval(s)")
        for r in rows:
            emit(r, False, "" if r.interval_id in settled else " (open)")
        if not as_json and rows:
            claimed = sum(r.crev_claimed for r in rows)
            demand = sum(r.demand_wh for r in rows)
            renewable = sum(r.renewable_wh for r in rows)
            co2 = sum(r.co2_g for r in rows)
            click.echo(f"total: demand {demand} Wh, renewable {_pct(renewable / demand if demand else math.nan)}, "
                       f"CO2 {co2:,.1f} g (net {sum(r.net_co2_g for r in rows):,.1f} g), "
                       f"C-REV claimed {format_crev(claimed)}")
        return
    if not as_json:
        click.echo(f"following {member} from block {feed.from_block} (Ctrl-C ends)")
    try:
        follow(feed, emit, poll_seconds=poll_seconds)
    except KeyboardInterrupt:
        if not as_json:
            click.echo("stopped")
