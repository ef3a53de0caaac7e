"""Battery report (pandas, from chain events): use per battery and slot, fees and their split per
payee, and reconciliation of the battery meter's state of charge against on-chain stored energy.

The pure functions take event records (``list[dict]`` as :func:`fetch_events` returns them) so they
can be tested and re-run offline; :func:`battery_report` fetches and builds everything in one call.

- :func:`battery_use` — per battery and slot: Wh charged, discharged (out), lost (burnt), net, the
  stored Wh at the end of the slot and cumulative equivalent full cycles (discharged ÷ capacity).
- :func:`fee_split` — per battery and payee: TSL earned (owners by share, marketing, platform) in
  exact base units (Python ints, never int64/float: see :mod:`keeper.reports.amounts`) and as a
  Decimal for display, with an exact check that the parts add up to the fees paid.
- :func:`reconcile_soc` — the meter's state-of-charge series vs on-chain stored energy at the same
  moments: discrepancy and a ``mismatch`` flag beyond a tolerance (a sign of a faulty or tampered
  battery, or energy moved outside the contract).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from web3 import Web3
from web3.contract import Contract

from .amounts import display_series, exact, for_csv, total, units_series

log = logging.getLogger("gridcoop.keeper.battery")

SLOT_SECONDS = 900
TSL_DECIMALS = 18
EVENT_NAMES = ("Charged", "Discharged", "FeePaid", "OwnerCredited", "Claimed", "WelcomeGrant")


# ----------------------------------------------------------------------------- fetching


def fetch_events(
    w3: Web3, storage: Contract, *, from_block: int = 0, to_block: int | str = "latest"
) -> list[dict[str, Any]]:
    """All storage events of interest as flat records: ``event``, ``block``, ``log_index``,
    ``timestamp`` and the event's arguments (``batteryId`` → ``battery_id`` etc. kept as named)."""
    records: list[dict[str, Any]] = []
    timestamps: dict[int, int] = {}
    for name in EVENT_NAMES:
        for ev in getattr(storage.events, name)().get_logs(from_block=from_block, to_block=to_block):
            block = int(ev["blockNumber"])
            if block not in timestamps:
                timestamps[block] = int(w3.eth.get_block(block)["timestamp"])
            rec = {"event": name, "block": block, "log_index": int(ev["logIndex"]), "timestamp": timestamps[block]}
            rec.update({k: (bytes(v) if isinstance(v, bytes | bytearray) else v) for k, v in ev["args"].items()})
            records.append(rec)
    records.sort(key=lambda r: (r["block"], r["log_index"]))
    log.info("fetched %d storage events from block %s", len(records), from_block)
    return records


def _frame(events: Iterable[Mapping[str, Any]], name: str) -> pd.DataFrame:
    rows = [dict(e) for e in events if e["event"] == name]
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- energy


def stored_changes(events: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Every change of a battery's stored energy: ``battery_id, timestamp, slot, delta_wh, stored_wh``
    (stored after the change), in chain order."""
    rows = []
    for e in events:
        if e["event"] == "Charged":
            delta = int(e["wh"])
        elif e["event"] == "Discharged":
            delta = -(int(e["whOut"]) + int(e["lossWh"]))
        else:
            continue
        rows.append({"battery_id": int(e["batteryId"]), "timestamp": int(e["timestamp"]), "slot": int(e["slot"]),
                     "block": int(e["block"]), "log_index": int(e["log_index"]), "delta_wh": delta})
    df = pd.DataFrame(rows, columns=["battery_id", "timestamp", "slot", "block", "log_index", "delta_wh"])
    df = df.sort_values(["block", "log_index"], kind="stable").reset_index(drop=True)
    df["stored_wh"] = df.groupby("battery_id")["delta_wh"].cumsum() if len(df) else pd.Series(dtype="int64")
    return df


def battery_use(events: Iterable[Mapping[str, Any]], capacities: Mapping[int, int] | None = None) -> pd.DataFrame:
    """Use per battery and slot: ``charged_wh, discharged_wh, loss_wh, net_wh, stored_wh`` (at the end
    of the slot), and with ``capacities`` (battery id → Wh) cumulative equivalent full ``cycles``."""
    events = list(events)
    ch = _frame(events, "Charged")
    dis = _frame(events, "Discharged")
    cols = ["battery_id", "slot", "charged_wh", "discharged_wh", "loss_wh"]
    parts = []
    if len(ch):
        parts.append(pd.DataFrame({"battery_id": ch["batteryId"].astype(int), "slot": ch["slot"].astype(int),
                                   "charged_wh": ch["wh"].astype(int), "discharged_wh": 0, "loss_wh": 0}))
    if len(dis):
        parts.append(pd.DataFrame({"battery_id": dis["batteryId"].astype(int), "slot": dis["slot"].astype(int),
                                   "charged_wh": 0, "discharged_wh": dis["whOut"].astype(int),
                                   "loss_wh": dis["lossWh"].astype(int)}))
    if not parts:
        return pd.DataFrame(columns=[*cols, "net_wh", "stored_wh", "cycles"])
    df = pd.concat(parts).groupby(["battery_id", "slot"], as_index=False)[cols[2:]].sum()
    df = df.sort_values(["battery_id", "slot"]).reset_index(drop=True)
    df["net_wh"] = df["charged_wh"] - df["discharged_wh"] - df["loss_wh"]
    df["stored_wh"] = df.groupby("battery_id")["net_wh"].cumsum()
    if capacities:
        cap = df["battery_id"].map(lambda b: capacities.get(int(b)))
        df["cycles"] = df.groupby("battery_id")["discharged_wh"].cumsum() / cap
    else:
        df["cycles"] = float("nan")
    df["slot_start"] = pd.to_datetime(df["slot"] * SLOT_SECONDS, unit="s", utc=True)
    return df


# ----------------------------------------------------------------------------- fees


def fee_split(
    events: Iterable[Mapping[str, Any]], *, platform: str | None = None, marketing: str | None = None
) -> pd.DataFrame:
    """TSL earned per battery and payee: ``battery_id, payee, role, amount_base_units, amount_tsl,
    check`` where role is ``owner``, ``marketing`` or ``platform`` (payees named when
    ``platform``/``marketing`` addresses are given), plus per battery a ``fees_paid`` row.

    ``amount_base_units`` is an exact Python int (TSL base units pass 2**63 at 9.22 TSL, so no int64
    or float ever holds them); ``amount_tsl`` is the same amount as an exact Decimal for display.
    ``check`` (on the ``fees_paid`` row) is True when, in exact integers, every fee's parts add up to
    the fee, owners + marketing + platform add up to the fees paid, and the owners' credits add up
    to the owners' part.
    """
    events = list(events)
    paid = [e for e in events if e["event"] == "FeePaid"]
    credited = [e for e in events if e["event"] == "OwnerCredited"]
    rows: list[dict[str, Any]] = []
    for bid in dict.fromkeys(int(e["batteryId"]) for e in paid):
        mine = [e for e in paid if int(e["batteryId"]) == bid]
        fees = total(e["amount"] for e in mine)
        owners_part = total(e["ownersPart"] for e in mine)
        mk = total(e["marketingPart"] for e in mine)
        pf = total(e["platformPart"] for e in mine)
        per_owner: dict[str, int] = {}
        for e in credited:
            if int(e["batteryId"]) == bid:
                per_owner[e["owner"]] = per_owner.get(e["owner"], 0) + exact(e["amount"])
        for owner, amount in per_owner.items():
            rows.append({"battery_id": bid, "payee": owner, "role": "owner", "amount_base_units": amount})
        rows.append({"battery_id": bid, "payee": marketing or "marketing", "role": "marketing",
                     "amount_base_units": mk})
        rows.append({"battery_id": bid, "payee": platform or "platform", "role": "platform",
                     "amount_base_units": pf})
        ok = (all(exact(e["ownersPart"]) + exact(e["marketingPart"]) + exact(e["platformPart"]) == exact(e["amount"])
                  for e in mine)
              and owners_part + mk + pf == fees and sum(per_owner.values()) == owners_part)
        if not ok:
            log.warning("battery %s: fee parts do not add up to the %s TSL base units paid", bid, fees)
        rows.append({"battery_id": bid, "payee": "", "role": "fees_paid", "amount_base_units": fees, "check": ok})
    df = pd.DataFrame(rows, columns=["battery_id", "payee", "role", "amount_base_units", "check"])
    df["amount_base_units"] = units_series(df["amount_base_units"], index=df.index)
    df.insert(4, "amount_tsl", display_series(df["amount_base_units"], TSL_DECIMALS, index=df.index))
    return df


# ----------------------------------------------------------------------------- reconciliation


def reconcile_soc(
    soc: pd.DataFrame,
    events: Iterable[Mapping[str, Any]],
    *,
    battery_id: int,
    tolerance_wh: int = 50,
    tolerance_frac: float = 0.05,
) -> pd.DataFrame:
    """Compare the battery meter's state of charge with on-chain stored energy.

    ``soc`` has columns ``timestamp`` (Unix seconds) and ``soc_wh`` (the meter's reading). For each
    reading, ``onchain_wh`` is the stored energy after every charge/discharge mined at or before that
    time. ``discrepancy_wh = soc_wh − onchain_wh``; ``mismatch`` is True when
    ``|discrepancy| > max(tolerance_wh, tolerance_frac × onchain_wh)``.
    """
    if not {"timestamp", "soc_wh"} <= set(soc.columns):
        raise ValueError(f"soc needs columns 'timestamp' and 'soc_wh', got {list(soc.columns)}")
    changes = stored_changes(events)
    changes = changes[changes["battery_id"] == battery_id][["timestamp", "stored_wh"]]
    readings = soc[["timestamp", "soc_wh"]].copy()
    readings["timestamp"] = readings["timestamp"].astype("int64")
    readings = readings.sort_values("timestamp").reset_index(drop=True)
    if len(changes):
        # the last change at or before each reading (several in one block: the last one counts)
        last = changes.groupby("timestamp", as_index=False)["stored_wh"].last().astype("int64")
        out = pd.merge_asof(readings, last, on="timestamp", direction="backward")
        out["onchain_wh"] = out.pop("stored_wh").fillna(0).astype("int64")
    else:
        out = readings.assign(onchain_wh=0)
    out.insert(0, "battery_id", battery_id)
    out["slot"] = out["timestamp"] // SLOT_SECONDS
    out["discrepancy_wh"] = out["soc_wh"] - out["onchain_wh"]
    limit = (out["onchain_wh"] * tolerance_frac).clip(lower=tolerance_wh)
    out["mismatch"] = out["discrepancy_wh"].abs() > limit
    n = int(out["mismatch"].sum())
    if n:
        log.warning("battery %s: %d of %d state-of-charge readings disagree with on-chain storage", battery_id,
                    n, len(out))
    return out


# ----------------------------------------------------------------------------- all together


def battery_report(
    w3: Web3,
    storage: Contract,
    *,
    from_block: int = 0,
    soc: Mapping[int, pd.DataFrame] | None = None,
    tolerance_wh: int = 50,
    tolerance_frac: float = 0.05,
) -> dict[str, pd.DataFrame]:
    """Fetch events and build ``use``, ``fees`` and (with ``soc``: battery id → SoC series)
    ``reconciliation`` frames."""
    events = fetch_events(w3, storage, from_block=from_block)
    count = storage.functions.batteryCount().call()
    capacities = {i: storage.functions.batteries(i).call()[1] for i in range(1, count + 1)}
    report = {
        "use": battery_use(events, capacities),
        "fees": fee_split(events, platform=storage.functions.platformTreasury().call(),
                          marketing=storage.functions.marketing().call()),
    }
    if soc:
        report["reconciliation"] = pd.concat(
            [reconcile_soc(s, events, battery_id=b, tolerance_wh=tolerance_wh, tolerance_frac=tolerance_frac)
             for b, s in soc.items()], ignore_index=True)
    return report


def write_csv(report: Mapping[str, pd.DataFrame], directory: str | Path) -> list[Path]:
    """Write each frame as ``battery_<name>.csv`` into ``directory``; returns the paths."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, df in report.items():
        p = d / f"battery_{name}.csv"
        for_csv(df).to_csv(p, index=False)
        paths.append(p)
    return paths
