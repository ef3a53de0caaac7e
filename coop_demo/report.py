"""The demo's report folder: CSV tables, PNG plots and one HTML page that holds them.

Pure over pandas DataFrames (no chain access), so it can be tested and re-run on saved CSVs:

- ``intervals``: one row per interval — ``interval, time, price_base_units, price_per_kwh,
  volume_wh, trades, orders, gas_used, tx, battery_soc_wh, fees_base_units, fees_tsl, …``
- ``households``: one row per (interval, household) — ``interval, household, kind,
  generation_wh, consumption_wh, import_wh, export_wh, self_consumed_wh, bought_wh, sold_wh,
  renewable_ratio, co2_g``
- ``balances``: one row per household with its final token balances (``<token>_base_units`` and
  the same amount in whole tokens)
- ``fees``: ``payee, role, fee_base_units, fee_tsl`` (owners…, marketing, platform)

Token amounts are exact: ``…_base_units`` columns hold Python ints, display columns (``fee_tsl``,
``price_per_kwh``, ``TSL`` …) exact Decimals written in fixed point; shares and totals are computed
from the ints, and a float appears only inside a plot (see :mod:`keeper.reports.amounts`).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from keeper.reports.amounts import fmt, for_csv, ratio, to_display, total  # noqa: E402

TSL_DECIMALS = 18


@dataclass
class DemoReport:
    region: str
    intervals: pd.DataFrame
    households: pd.DataFrame
    balances: pd.DataFrame
    fees: pd.DataFrame
    summary: dict[str, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _time_axis(df: pd.DataFrame) -> pd.Series:
    return df["time"] if "time" in df else df["interval"]


def plot_price_volume(rep: DemoReport, path: Path) -> None:
    df = rep.intervals
    fig, ax1 = plt.subplots(figsize=(10, 4))
    x = range(len(df))
    ax1.bar(x, df["volume_wh"] / 1000, color="#9ecae1", label="traded kWh")
    ax1.set_ylabel("volume (kWh)")
    ax2 = ax1.twinx()
    price = [float("nan") if p is None or pd.isna(p) else float(p) for p in df["price_per_kwh"]]  # plot only
    ax2.plot(x, price, color="#d62728", marker=".", label="clearing price")
    ax2.set_ylabel("price (currency units / kWh)")
    ax1.set_xticks(list(x)[:: max(1, len(df) // 12)])
    ax1.set_xticklabels(list(_time_axis(df))[:: max(1, len(df) // 12)], rotation=45)
    ax1.set_title(f"{rep.region}: clearing price and traded volume per 15 minutes")
    fig.legend(loc="upper left", bbox_to_anchor=(0.08, 0.9))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_households(rep: DemoReport, path: Path) -> None:
    hh = rep.households
    names = list(dict.fromkeys(hh["household"]))
    cols = 4
    rows = max(1, -(-len(names) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(14, 2.4 * rows), sharex=True, squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        d = hh[hh["household"] == name]
        x = range(len(d))
        ax.plot(x, d["generation_wh"], color="#ff7f0e", label="generation")
        ax.plot(x, d["consumption_wh"], color="#1f77b4", label="consumption")
        ax.fill_between(x, 0, d["export_wh"], color="#2ca02c", alpha=0.3, label="export")
        ax.fill_between(x, 0, -d["import_wh"], color="#7f7f7f", alpha=0.3, label="import (−)")
        kind = d["kind"].iloc[0] if len(d) else ""
        ax.set_title(f"{name} ({kind})", fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.suptitle(f"{rep.region}: each household's Wh per interval")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_battery(rep: DemoReport, path: Path) -> None:
    df = rep.intervals
    fig, ax = plt.subplots(figsize=(10, 3.5))
    x = range(len(df))
    ax.plot(x, df["battery_soc_wh"] / 1000, color="#9467bd", label="stored energy (on chain)")
    if "battery_meter_soc_wh" in df:
        ax.plot(x, df["battery_meter_soc_wh"] / 1000, "--", color="#8c564b", label="battery meter SoC")
    ax.set_ylabel("kWh")
    ax.set_xticks(list(x)[:: max(1, len(df) // 12)])
    ax.set_xticklabels(list(_time_axis(df))[:: max(1, len(df) // 12)], rotation=45)
    ax.set_title(f"{rep.region}: community battery state of charge")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fee_shares(fees: pd.DataFrame) -> list[tuple[str, Decimal, Decimal]]:
    """``(payee, TSL, percent of all fees)`` per row of ``fees``, from the exact base units (the
    percentages are exact fractions of the integer total, rounded only for display)."""
    whole = total(fees["fee_base_units"])
    out = []
    for payee, units in zip(fees["payee"], fees["fee_base_units"], strict=True):
        share = ratio(units, whole)
        pct = Decimal(0) if share is None else Decimal(share.numerator * 100) / Decimal(share.denominator)
        out.append((str(payee), to_display(units, TSL_DECIMALS), pct))
    return out


def plot_fees(rep: DemoReport, path: Path) -> None:
    fees = rep.fees
    shares = fee_shares(fees)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar([p for p, _, _ in shares], [float(t) for _, t, _ in shares],  # float only for drawing
           color=["#2ca02c"] * (len(fees) - 2) + ["#ff7f0e", "#1f77b4"])
    for i, (_, tsl, pct) in enumerate(shares):
        ax.text(i, float(tsl), f"{tsl.quantize(Decimal('0.0001'))}\n({pct.quantize(Decimal('0.1'))}%)",
                ha="center", va="bottom", fontsize=8)
    ax.margins(y=0.15)  # room for the labels above the tallest bar
    ax.set_ylabel("TSL")
    whole = to_display(total(fees["fee_base_units"]), TSL_DECIMALS)
    ax.set_title(f"{rep.region}: battery fee split (total {whole.quantize(Decimal('0.0001'))} TSL)")
    plt.setp(ax.get_xticklabels(), rotation=20, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_renewable_co2(rep: DemoReport, path: Path) -> None:
    hh = rep.households
    per = hh.groupby("interval").agg(
        consumption_wh=("consumption_wh", "sum"),
        renewable_wh=("renewable_wh", "sum") if "renewable_wh" in hh else ("self_consumed_wh", "sum"),
        co2_g=("co2_g", "sum"),
    )
    ratio = (per["renewable_wh"] / per["consumption_wh"].where(per["consumption_wh"] > 0)).fillna(0)
    fig, ax1 = plt.subplots(figsize=(10, 3.5))
    x = range(len(per))
    ax1.plot(x, ratio * 100, color="#2ca02c", label="renewable ratio (%)")
    ax1.set_ylabel("renewable ratio (%)")
    ax1.set_ylim(0, 105)
    ax2 = ax1.twinx()
    ax2.bar(x, per["co2_g"] / 1000, color="#7f7f7f", alpha=0.4, label="CO2 from grid imports (kg)")
    ax2.set_ylabel("kg CO2")
    ax1.set_title(f"{rep.region}: community renewable ratio and CO2 emitted")
    fig.legend(loc="upper left", bbox_to_anchor=(0.08, 0.9))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


PLOTS = {
    "price_volume.png": ("Clearing price and volume", plot_price_volume),
    "households.png": ("Households: generation, consumption, import, export", plot_households),
    "battery_soc.png": ("Community battery state of charge", plot_battery),
    "fee_split.png": ("Battery fee split (80/10/10)", plot_fees),
    "renewable_co2.png": ("Renewable ratio and CO2", plot_renewable_co2),
}


def write_report(rep: DemoReport, folder: Path) -> Path:
    """Write CSVs, PNGs and ``index.html`` into ``folder``; returns the HTML path."""
    folder.mkdir(parents=True, exist_ok=True)
    for_csv(rep.intervals).to_csv(folder / "intervals.csv", index=False)
    rep.households.to_csv(folder / "households.csv", index=False)
    for_csv(rep.balances).to_csv(folder / "balances.csv", index=False)
    for_csv(rep.fees).to_csv(folder / "fees.csv", index=False)
    for fname, (_, fn) in PLOTS.items():
        fn(rep, folder / fname)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>gridcoop demo — {html.escape(rep.region)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;"
        "text-align:right}th{background:#eee}img{max-width:100%;border:1px solid #ddd}</style>",
        "</head><body>",
        f"<h1>gridcoop — a co-op day in {html.escape(rep.region)}</h1>",
    ]
    if rep.summary:
        parts.append("<h2>Summary</h2><table>")
        for k, v in rep.summary.items():
            text = fmt(v) if isinstance(v, Decimal) else str(v)
            parts.append(f"<tr><th style='text-align:left'>{html.escape(str(k))}</th><td>{html.escape(text)}</td></tr>")
        parts.append("</table>")
    for note in rep.notes:
        parts.append(f"<p>{html.escape(note)}</p>")
    for fname, (title, _) in PLOTS.items():
        parts.append(f"<h2>{html.escape(title)}</h2><img src='{fname}' alt='{html.escape(title)}'>")
    parts.append("<h2>Household balances at the end of the day</h2>")
    parts.append(for_csv(rep.balances).to_html(index=False, float_format=lambda v: f"{v:,.4f}"))
    parts.append("<h2>Data</h2><ul>")
    for f in ("intervals.csv", "households.csv", "balances.csv", "fees.csv"):
        parts.append(f"<li><a href='{f}'>{f}</a></li>")
    parts.append("</ul></body></html>")
    out = folder / "index.html"
    out.write_text("\n".join(parts))
    return out
