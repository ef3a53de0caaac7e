"""Carbon report: renewable ratio, CO2 from the public grid, average emission factor, and C-REV
earned and retired — per participant and per 15-minute interval.

Pure part (:func:`carbon_report`) takes DataFrames; :func:`load_readings`, :func:`load_trades`
and :func:`load_crev_flows` build them from chain logs by event signature, so the report works on
whatever the meter registry, the market and C-REV emitted.

Definitions (per participant p and interval i):

- ``demand_wh`` = ``consumption_wh`` of p's readings.
- ``self_consumed_wh`` = self-consumed energy of readings whose colour is renewable.
- ``renewable_bought_wh`` = energy p bought in i from sellers whose colour is renewable.
- ``renewable_ratio`` = min(1, (self-consumed + renewable bought) / demand); NaN when demand is 0.
- ``grid_wh`` = energy drawn from the public grid = max(0, import − everything bought from
  neighbours in i) (P2P purchases arrive through the same connection as grid imports).
- ``co2_g`` = grid_wh × grid factor / 1000 + non-renewable P2P purchases × ``other_factor`` / 1000
  (``other_factor`` defaults to the grid factor: the origin of, say, battery discharge is unknown).
- ``avg_emission_factor_g_per_kwh`` = co2_g / (demand_wh / 1000); NaN when demand is 0.
- ``crev_earned_base_units`` / ``crev_retired_base_units`` (1e18 = 1 t-CO2e): from C-REV's
  ``LotIssued`` and ``Retired`` events when given, else earned = self-consumed Wh × ``crev_factor``
  × 1e9. Exact Python ints in ``object`` columns, summed with :mod:`keeper.reports.amounts` (never
  int64 or float: C-REV base units pass 2**63 at 9.22 t-CO2e); :func:`write_csv` adds
  ``crev_earned_t`` / ``crev_retired_t`` (exact t-CO2e) beside them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from eth_utils import event_abi_to_log_topic
from pydantic import BaseModel, ConfigDict, Field
from web3 import Web3

from gridcoop_sdk.config import load_model

from .amounts import display_series, for_csv, sum_by, total, units_series

READING_COLUMNS = ["owner", "interval_id", "generation_wh", "consumption_wh", "export_wh", "import_wh",
                   "self_consumed_wh", "colour"]
TRADE_COLUMNS = ["interval_id", "seller", "buyer", "wh", "seller_colour"]
FLOW_COLUMNS = ["account", "interval_id", "amount"]
REPORT_COLUMNS = [
    "participant", "interval_id", "demand_wh", "generation_wh", "self_consumed_wh", "bought_wh",
    "renewable_bought_wh", "grid_wh", "renewable_ratio", "co2_g", "avg_emission_factor_g_per_kwh",
    "crev_earned_base_units", "crev_retired_base_units",
]
CREV_COLUMNS = ("crev_earned_base_units", "crev_retired_base_units")
CREV_DECIMALS = 18

DEFAULT_RENEWABLE = ("solar", "wind", "hydro", "biomass", "geothermal")
UNITS_PER_WH_G_PER_KWH = 10**9

READING_ACCEPTED = (
    "ReadingAccepted(bytes32 indexed meterId, uint64 indexed sequence, address indexed owner, "
    "uint64 intervalStart, uint64 generationWh, uint64 consumptionWh, uint64 exportWh, uint64 importWh, "
    "uint64 selfConsumedWh, uint32 frequencyMHz)"
)
TRADE = (
    "Trade(uint64 indexed intervalId, address indexed seller, address indexed buyer, uint256 wh, "
    "uint256 pricePerKwh, address paymentToken, bytes32 tradeId, bytes32 colour)"
)
LOT_ISSUED = "LotIssued(uint256 indexed lotId, bytes32 indexed meterId, uint64 indexed intervalId, address owner, uint256 amount)"
RETIRED = (
    "Retired(uint256 indexed certificateId, address indexed holder, address indexed beneficiary, uint256 amount, "
    "string beneficiaryName, string message, uint64 periodStart, uint64 periodEnd, address retiredBy)"
)


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
    crev_issued: pd.DataFrame | None = None,
    crev_retired: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per (participant, interval) with the columns in :data:`REPORT_COLUMNS`.

    ``readings``: :data:`READING_COLUMNS`; ``trades``: :data:`TRADE_COLUMNS`; ``crev_issued`` and
    ``crev_retired``: :data:`FLOW_COLUMNS` (``account`` = lot owner / retiring holder; ``amount`` in
    base units, any integer type: they are summed exactly).
    """
    _require(readings, READING_COLUMNS, "readings")
    renewable = {c.lower() for c in config.renewable_colours}
    other_factor = config.grid_factor_g_per_kwh if config.other_factor_g_per_kwh is None \
        else config.other_factor_g_per_kwh

    r = readings.copy()
    r["owner"] = r["owner"].astype(str)
    r["is_renewable"] = r["colour"].astype(str).str.lower().isin(renewable)
    r["renewable_self_wh"] = r["self_consumed_wh"].where(r["is_renewable"], 0)
    base = (
        r.groupby(["owner", "interval_id"], as_index=False)
        .agg(demand_wh=("consumption_wh", "sum"), generation_wh=("generation_wh", "sum"),
             import_wh=("import_wh", "sum"), self_consumed_wh=("renewable_self_wh", "sum"))
        .rename(columns={"owner": "participant"})
    )

    if trades is not None and len(trades):
        _require(trades, TRADE_COLUMNS, "trades")
        t = trades.copy()
        t["buyer"] = t["buyer"].astype(str)
        t["renewable_wh"] = t["wh"].where(t["seller_colour"].astype(str).str.lower().isin(renewable), 0)
        bought = (
            t.groupby(["buyer", "interval_id"], as_index=False)
            .agg(bought_wh=("wh", "sum"), renewable_bought_wh=("renewable_wh", "sum"))
            .rename(columns={"buyer": "participant"})
        )
        base = base.merge(bought, on=["participant", "interval_id"], how="outer")
    else:
        base["bought_wh"] = 0
        base["renewable_bought_wh"] = 0

    num_cols = ["demand_wh", "generation_wh", "import_wh", "self_consumed_wh", "bought_wh", "renewable_bought_wh"]
    base[num_cols] = base[num_cols].fillna(0).astype("int64")
    base["grid_wh"] = (base["import_wh"] - base["bought_wh"]).clip(lower=0)
    demand = base["demand_wh"].astype(float)
    ratio = (base["self_consumed_wh"] + base["renewable_bought_wh"]) / demand.where(demand > 0)
    base["renewable_ratio"] = ratio.clip(upper=1.0)
    non_renewable_bought = base["bought_wh"] - base["renewable_bought_wh"]
    base["co2_g"] = (base["grid_wh"] * config.grid_factor_g_per_kwh + non_renewable_bought * other_factor) / 1000.0
    base["avg_emission_factor_g_per_kwh"] = base["co2_g"] / (demand.where(demand > 0) / 1000.0)

    def _flows(df: pd.DataFrame | None, name: str) -> pd.DataFrame:
        if df is None or not len(df):
            return pd.DataFrame(columns=["participant", "interval_id", name])
        _require(df, FLOW_COLUMNS, name)
        sums = sum_by(df.assign(account=df["account"].astype(str)), ["account", "interval_id"], "amount", name)
        return sums.rename(columns={"account": "participant"})

    if crev_issued is not None:
        base = base.merge(_flows(crev_issued, "crev_earned_base_units"), on=["participant", "interval_id"],
                          how="outer")
    else:
        base["crev_earned_base_units"] = units_series(
            (int(w) * int(round(config.crev_factor_g_per_kwh)) * UNITS_PER_WH_G_PER_KWH
             for w in base["self_consumed_wh"]), index=base.index)
    base = base.merge(_flows(crev_retired, "crev_retired_base_units"), on=["participant", "interval_id"], how="outer")
    for c in num_cols + ["grid_wh"]:
        base[c] = base[c].fillna(0).astype("int64")
    for c in CREV_COLUMNS:  # Python ints: 18-decimal amounts overflow int64
        base[c] = units_series((0 if pd.isna(v) else v for v in base[c]), index=base.index)
    base["co2_g"] = base["co2_g"].fillna(0.0)
    base = base.sort_values(["participant", "interval_id"]).reset_index(drop=True)
    return base[REPORT_COLUMNS]


def participant_summary(report: pd.DataFrame) -> pd.DataFrame:
    """Totals per participant over all intervals (ratio and factor recomputed from the sums)."""
    sums = report.groupby("participant").agg(
        demand_wh=("demand_wh", "sum"), self_consumed_wh=("self_consumed_wh", "sum"),
        renewable_bought_wh=("renewable_bought_wh", "sum"), grid_wh=("grid_wh", "sum"),
        co2_g=("co2_g", "sum"),
    )
    for c in CREV_COLUMNS:  # exact Python ints, never a pandas sum (int64 wraps past 9.22 t-CO2e)
        per = sum_by(report, ["participant"], c).set_index("participant")[c]
        sums[c] = pd.Series([per[p] for p in sums.index], index=sums.index, dtype=object)
    demand = sums["demand_wh"].astype(float).where(sums["demand_wh"] > 0)
    sums["renewable_ratio"] = ((sums["self_consumed_wh"] + sums["renewable_bought_wh"]) / demand).clip(upper=1.0)
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
    """Exact C-REV totals of a report (base units): ``crev_earned_base_units``, ``crev_retired_base_units``."""
    return {c: total(report[c]) for c in CREV_COLUMNS}


def write_csv(report: pd.DataFrame, path: str | Path) -> Path:
    """Write the report (or a :func:`participant_summary`) with exact base units and t-CO2e columns."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    for_csv(with_display(report)).to_csv(p, index=False)
    return p


# ------------------------------------------------------------------------------ chain loaders


def event_abi(signature: str) -> dict[str, Any]:
    """Build an ABI event entry from its signature text, e.g. ``"Trade(uint64 indexed intervalId, …)"``."""
    name, _, rest = signature.strip().partition("(")
    params = [p.strip() for p in rest.rstrip(")").split(",") if p.strip()]
    inputs = []
    for p in params:
        parts = p.split()
        indexed = "indexed" in parts
        parts = [x for x in parts if x != "indexed"]
        if len(parts) != 2:
            raise ValueError(f"cannot parse event parameter {p!r} in {signature!r}")
        inputs.append({"type": parts[0], "name": parts[1], "indexed": indexed})
    return {"type": "event", "name": name, "anonymous": False, "inputs": inputs}


def _logs(w3: Web3, address: str | Iterable[str], signature: str, from_block: int,
          to_block: int | str) -> list[dict[str, Any]]:
    abi = event_abi(signature)
    addrs = [address] if isinstance(address, str) else list(address)
    contract = w3.eth.contract(abi=[abi])
    event = getattr(contract.events, abi["name"])()
    raw = w3.eth.get_logs({
        "address": [Web3.to_checksum_address(a) for a in addrs],
        "topics": ["0x" + event_abi_to_log_topic(abi).hex()],
        "fromBlock": from_block, "toBlock": to_block,
    })
    out = []
    for log in raw:
        ev = event.process_log(log)
        out.append({**dict(ev["args"]), "_block": ev["blockNumber"]})
    return out


def load_readings(w3: Web3, registry: str, *, colours: dict[bytes, str] | None = None,
                  default_colour: str = "solar", from_block: int = 0,
                  to_block: int | str = "latest") -> pd.DataFrame:
    """Readings from MeterRegistry ``ReadingAccepted`` logs (colour per meter id, default ``solar``)."""
    colours = colours or {}
    rows = [{
        "owner": e["owner"], "interval_id": int(e["intervalStart"]) // 900,
        "generation_wh": int(e["generationWh"]), "consumption_wh": int(e["consumptionWh"]),
        "export_wh": int(e["exportWh"]), "import_wh": int(e["importWh"]),
        "self_consumed_wh": int(e["selfConsumedWh"]),
        "colour": colours.get(bytes(e["meterId"]), default_colour),
    } for e in _logs(w3, registry, READING_ACCEPTED, from_block, to_block)]
    return pd.DataFrame(rows, columns=READING_COLUMNS)


def load_trades(w3: Web3, market: str, *, colours: dict[str, str] | None = None,
                default_colour: str = "solar", from_block: int = 0,
                to_block: int | str = "latest") -> pd.DataFrame:
    """Trades from EnergyMarket ``Trade`` logs (seller colour by seller address, default ``solar``)."""
    colours = {Web3.to_checksum_address(k): v for k, v in (colours or {}).items()}
    rows = [{
        "interval_id": int(e["intervalId"]), "seller": e["seller"], "buyer": e["buyer"], "wh": int(e["wh"]),
        "seller_colour": colours.get(e["seller"], default_colour),
    } for e in _logs(w3, market, TRADE, from_block, to_block)]
    return pd.DataFrame(rows, columns=TRADE_COLUMNS)


def load_crev_flows(w3: Web3, crev: str, *, from_block: int = 0,
                    to_block: int | str = "latest") -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(issued, retired)`` from C-REV ``LotIssued`` / ``Retired`` logs (``amount``: base units as
    Python ints). A retirement's interval is the interval of its block's timestamp."""
    issued = pd.DataFrame([{"account": e["owner"], "interval_id": int(e["intervalId"]), "amount": int(e["amount"])}
                           for e in _logs(w3, crev, LOT_ISSUED, from_block, to_block)], columns=FLOW_COLUMNS)
    issued["amount"] = units_series(issued["amount"], index=issued.index)  # base units: Python ints
    rows = []
    stamps: dict[int, int] = {}
    for e in _logs(w3, crev, RETIRED, from_block, to_block):
        b = e["_block"]
        if b not in stamps:
            stamps[b] = int(w3.eth.get_block(b)["timestamp"])
        rows.append({"account": e["holder"], "interval_id": stamps[b] // 900, "amount": int(e["amount"])})
    retired = pd.DataFrame(rows, columns=FLOW_COLUMNS)
    retired["amount"] = units_series(retired["amount"], index=retired.index)
    return issued, retired
