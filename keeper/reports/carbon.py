"""Carbon report: renewable ratio, CO2, average emission factor, and the C-REV each participant
earned, kept, retired and may claim — per participant and per 15-minute interval.

The computation is the SDK's (:func:`gridcoop_sdk.carbon.carbon_intervals`, the one place that
applies the claim rule of docs/crev.md "Who may claim a reduction"); this module turns its rows
into DataFrames, sums, CSV and display columns. :func:`load_readings`, :func:`load_trades` and
:func:`load_ledger` read the inputs from chain logs by event signature.

Definitions (per participant p and interval i), see :class:`gridcoop_sdk.carbon.CarbonInterval`:

- ``demand_wh`` = ``consumption_wh`` of p's readings.
- ``self_consumed_wh`` = self-consumed energy of readings whose colour is renewable;
  ``claimed_self_wh`` the part p may count as renewable (its lot's C-REV held by p or retired for
  p, or no lot at all); ``passed_on_wh`` the part whose C-REV went to someone else.
- ``renewable_bought_wh`` = energy p bought from sellers whose colour is renewable;
  ``unknown_bought_wh`` from sellers of unknown colour (never renewable).
- ``renewable_ratio`` = min(1, (claimed self-consumption + renewable bought) / demand); NaN when demand is 0.
- ``grid_wh`` = max(0, import − everything bought from neighbours in i).
- ``co2_g`` = grid_wh × grid factor / 1000 + non-renewable purchases × ``other_factor`` / 1000 + the
  CO2 of the C-REV passed on (exactly what its holder or retiring buyer claims);
  ``net_co2_g`` = co2_g − the retired C-REV of others' lots claimed by p in i.
- ``avg_emission_factor_g_per_kwh`` = co2_g / (demand_wh / 1000); NaN when demand is 0.
- ``crev_earned_base_units`` (lots issued to p for i), ``crev_kept_base_units`` (of those, held by p
  or retired for p), ``crev_retired_base_units`` (retired in i with p as claimant),
  ``crev_claimed_base_units`` (the reduction p reports in i). Without a ledger, earned = kept =
  self-consumed Wh × ``crev_factor`` × 1e9. Exact Python ints in ``object`` columns (C-REV base
  units pass 2**63 at 9.22 t-CO2e); :func:`write_csv` adds ``…_t`` (exact t-CO2e) beside them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from web3 import Web3

from gridcoop_sdk import carbon as sdk
from gridcoop_sdk.carbon import DEFAULT_RENEWABLE, CrevLedger, event_abi  # noqa: F401 - re-exported
from gridcoop_sdk.config import load_model

from .amounts import display_series, for_csv, sum_by, total, units_series

READING_COLUMNS = ["owner", "interval_id", "generation_wh", "consumption_wh", "export_wh", "import_wh",
                   "self_consumed_wh", "colour"]
"""Required reading columns; an optional ``meter_id`` (bytes) ties a reading to its C-REV lot."""
TRADE_COLUMNS = ["interval_id", "seller", "buyer", "wh", "seller_colour"]
CREV_COLUMNS = ("crev_earned_base_units", "crev_kept_base_units", "crev_retired_base_units",
                "crev_claimed_base_units")
REPORT_COLUMNS = [
    "participant", "interval_id", "demand_wh", "generation_wh", "self_consumed_wh", "claimed_self_wh",
    "passed_on_wh", "bought_wh", "renewable_bought_wh", "unknown_bought_wh", "grid_wh", "renewable_ratio",
    "co2_g", "net_co2_g", "avg_emission_factor_g_per_kwh", *CREV_COLUMNS,
]
CREV_DECIMALS = 18
UNITS_PER_WH_G_PER_KWH = sdk.UNITS_PER_WH_G_PER_KWH


class CarbonReportConfig(BaseModel):
    """``carbon:`` settings (YAML): emission factors in g-CO2/kWh and which colours are renewable."""

    model_config = ConfigDict(extra="forbid")
    grid_factor_g_per_kwh: float = Field(ge=0, le=2000, description="public grid's emission factor")
    other_factor_g_per_kwh: float | None = Field(default=None, ge=0, le=2000,
                                                 description="factor of non-renewable P2P energy (default: grid)")
    crev_factor_g_per_kwh: float = Field(default=0, ge=0, le=2000,
                                         description="factor for C-REV earned when no C-REV events are given")
    renewable_colours: list[str] = Field(default_factory=lambda: list(DEFAULT_RENEWABLE))


class _CarbonFile(BaseModel):
    model_config = ConfigDict(extra="allow")
    carbon: CarbonReportConfig


def load_config(path: str | Path) -> CarbonReportConfig:
    """Read the ``carbon:`` section of a YAML file (errors name the file, key and reason)."""
    return load_model(path, _CarbonFile).carbon


def _require(df: pd.DataFrame, columns: list[str], what: str) -> pd.DataFrame:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} DataFrame lacks column(s) {missing}; needs {columns}")
    return df


def carbon_report(
    readings: pd.DataFrame,
    trades: pd.DataFrame | None,
    config: CarbonReportConfig,
    *,
    ledger: CrevLedger | None = None,
) -> pd.DataFrame:
    """One row per (participant, interval) with the columns in :data:`REPORT_COLUMNS`.

    ``readings``: :data:`READING_COLUMNS` (+ optional ``meter_id``); ``trades``: :data:`TRADE_COLUMNS`;
    ``ledger``: the C-REV ledger (:func:`load_ledger`), which decides who may claim what.
    """
    _require(readings, READING_COLUMNS, "readings")
    has_meter = "meter_id" in readings.columns
    recs = [sdk.Reading(owner=str(r["owner"]), interval_id=int(r["interval_id"]),
                        generation_wh=int(r["generation_wh"]), consumption_wh=int(r["consumption_wh"]),
                        export_wh=int(r["export_wh"]), import_wh=int(r["import_wh"]),
                        self_consumed_wh=int(r["self_consumed_wh"]), colour=str(r["colour"]),
                        meter_id=bytes(r["meter_id"]) if has_meter and r["meter_id"] is not None else None)
            for r in readings.to_dict("records")]
    trade_recs = []
    if trades is not None and len(trades):
        _require(trades, TRADE_COLUMNS, "trades")
        trade_recs = [sdk.Trade(int(t["interval_id"]), str(t["seller"]), str(t["buyer"]), int(t["wh"]),
                                str(t["seller_colour"])) for t in trades.to_dict("records")]
    factors = sdk.Factors(grid=config.grid_factor_g_per_kwh, other=config.other_factor_g_per_kwh,
                          crev=config.crev_factor_g_per_kwh, renewable_colours=tuple(config.renewable_colours))
    rows = sdk.carbon_intervals(recs, trade_recs, factors, ledger)
    out = pd.DataFrame([{
        "participant": r.member, "interval_id": r.interval_id, "demand_wh": r.demand_wh,
        "generation_wh": r.generation_wh, "self_consumed_wh": r.self_consumed_wh,
        "claimed_self_wh": r.claimed_self_wh, "passed_on_wh": r.passed_on_wh, "bought_wh": r.bought_wh,
        "renewable_bought_wh": r.renewable_bought_wh, "unknown_bought_wh": r.unknown_bought_wh,
        "grid_wh": r.grid_wh, "renewable_ratio": r.renewable_ratio, "co2_g": r.co2_g, "net_co2_g": r.net_co2_g,
        "avg_emission_factor_g_per_kwh": r.avg_emission_factor_g_per_kwh,
        "crev_earned_base_units": r.crev_earned, "crev_kept_base_units": r.crev_kept,
        "crev_retired_base_units": r.crev_retired, "crev_claimed_base_units": r.crev_claimed,
    } for r in rows], columns=REPORT_COLUMNS)
    for c in ("demand_wh", "generation_wh", "self_consumed_wh", "bought_wh", "renewable_bought_wh",
              "unknown_bought_wh", "grid_wh"):
        out[c] = out[c].astype("int64")
    for c in ("claimed_self_wh", "passed_on_wh", "renewable_ratio", "co2_g", "net_co2_g",
              "avg_emission_factor_g_per_kwh"):
        out[c] = out[c].astype(float)
    for c in CREV_COLUMNS:  # Python ints: 18-decimal amounts overflow int64
        out[c] = units_series(out[c], index=out.index)
    return out


def participant_summary(report: pd.DataFrame) -> pd.DataFrame:
    """Totals per participant over all intervals (ratio and factor recomputed from the sums)."""
    sums = report.groupby("participant").agg(
        demand_wh=("demand_wh", "sum"), self_consumed_wh=("self_consumed_wh", "sum"),
        claimed_self_wh=("claimed_self_wh", "sum"), passed_on_wh=("passed_on_wh", "sum"),
        renewable_bought_wh=("renewable_bought_wh", "sum"), grid_wh=("grid_wh", "sum"),
        co2_g=("co2_g", "sum"), net_co2_g=("net_co2_g", "sum"),
    )
    for c in CREV_COLUMNS:  # exact Python ints, never a pandas sum (int64 wraps past 9.22 t-CO2e)
        per = sum_by(report, ["participant"], c).set_index("participant")[c]
        sums[c] = pd.Series([per[p] for p in sums.index], index=sums.index, dtype=object)
    demand = sums["demand_wh"].astype(float).where(sums["demand_wh"] > 0)
    sums["renewable_ratio"] = ((sums["claimed_self_wh"] + sums["renewable_bought_wh"]) / demand).clip(upper=1.0)
    sums["avg_emission_factor_g_per_kwh"] = sums["co2_g"] / (demand / 1000.0)
    return sums.reset_index()


def with_display(report: pd.DataFrame) -> pd.DataFrame:
    """The report with ``crev_earned_t`` / ``crev_retired_t`` (exact Decimal t-CO2e) after each
    ``…_base_units`` column."""
    out = report.copy()
    for c in CREV_COLUMNS:
        if c in out:
            out.insert(out.columns.get_loc(c) + 1, c.replace("_base_units", "_t"),
                       display_series(out[c], CREV_DECIMALS, index=out.index))
    return out


def totals(report: pd.DataFrame) -> dict[str, int]:
    """Exact C-REV totals of a report (base units), one per :data:`CREV_COLUMNS` entry."""
    return {c: total(report[c]) for c in CREV_COLUMNS}


def write_csv(report: pd.DataFrame, path: str | Path) -> Path:
    """Write the report (or a :func:`participant_summary`) with exact base units and t-CO2e columns."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    for_csv(with_display(report)).to_csv(p, index=False)
    return p


# ------------------------------------------------------------------------------ chain loaders


def load_readings(w3: Web3, registry: str, *, colours: dict[bytes, str] | None = None,
                  from_block: int = 0, to_block: int | str = "latest") -> pd.DataFrame:
    """Readings from MeterRegistry ``ReadingAccepted`` logs with their ``meter_id``; the colour per meter
    from ``colours``, else its ``MeterRegistered`` event, else ``unknown`` (never assumed solar)."""
    rows = [{"owner": r.owner, "interval_id": r.interval_id, "generation_wh": r.generation_wh,
             "consumption_wh": r.consumption_wh, "export_wh": r.export_wh, "import_wh": r.import_wh,
             "self_consumed_wh": r.self_consumed_wh, "colour": r.colour, "meter_id": r.meter_id}
            for r in sdk.load_readings(w3, registry, colours=colours, from_block=from_block, to_block=to_block)]
    return pd.DataFrame(rows, columns=[*READING_COLUMNS, "meter_id"])


def load_trades(w3: Web3, market: str, *, colours: dict[str, str] | None = None, from_block: int = 0,
                to_block: int | str = "latest") -> pd.DataFrame:
    """Trades from EnergyMarket ``Trade`` logs; the seller's colour from the event when it carries one,
    else ``colours[seller]``, ``grid`` for the grid participant, otherwise ``unknown``."""
    rows = [{"interval_id": t.interval_id, "seller": t.seller, "buyer": t.buyer, "wh": t.wh,
             "seller_colour": t.seller_colour}
            for t in sdk.load_trades(w3, market, colours=colours, from_block=from_block, to_block=to_block)]
    return pd.DataFrame(rows, columns=TRADE_COLUMNS)


def load_ledger(w3: Web3, crev: str, *, from_block: int = 0, to_block: int | str = "latest") -> CrevLedger:
    """The C-REV ledger (lots, holdings, retirements and their claimants) from C-REV's logs."""
    return sdk.load_ledger(w3, crev, from_block=from_block, to_block=to_block)
