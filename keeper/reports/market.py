"""Market reports (pandas) from the keeper's database: price and volume per interval, and each
participant's energy and money.

Money and prices are payment-token base units (``…_base_units``) held as exact Python ints in
``object`` columns and summed with :mod:`keeper.reports.amounts`: an 18-decimal currency passes
2**63 base units at 9.22 whole units, so an int64 column would wrap and a float would round.

>>> from keeper.db import Database
>>> db = Database("sqlite:///keeper.db")
>>> intervals_frame(db)        # interval_id, state, price_base_units, volume_wh, money_base_units, trades, …
>>> participants_frame(db)     # address, sold_wh, bought_wh, received_base_units, paid_base_units, …
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
from sqlalchemy import select

from ..db import Database, IntervalRow, TradeRow
from .amounts import exact, for_csv, sum_by, units_series

TRADE_COLUMNS = ["interval_id", "seller", "buyer", "wh", "price_base_units", "money_base_units", "payment_token",
                 "tx_hash"]
INTERVAL_COLUMNS = ["interval_id", "start", "state", "price_base_units", "volume_wh", "money_base_units", "trades",
                    "orders", "gas_used", "gas_per_trade", "tx_hash"]
PARTICIPANT_COLUMNS = ["address", "sold_wh", "bought_wh", "received_base_units", "paid_base_units", "net_wh",
                       "net_money_base_units", "avg_sell_price_base_units", "avg_buy_price_base_units"]


def trades_frame(db: Database) -> pd.DataFrame:
    """Every settled trade; ``price_base_units`` (per kWh) and ``money_base_units`` are Python ints."""
    with db.session() as s:
        rows = [(t.interval_id, t.seller, t.buyer, t.wh, exact(t.price), exact(t.money), t.payment_token, t.tx_hash)
                for t in s.scalars(select(TradeRow).order_by(TradeRow.interval_id, TradeRow.id))]
    df = pd.DataFrame(rows, columns=TRADE_COLUMNS)
    for c in ("price_base_units", "money_base_units"):
        df[c] = units_series((r[TRADE_COLUMNS.index(c)] for r in rows), index=df.index)
    return df


def intervals_frame(db: Database) -> pd.DataFrame:
    """One row per interval the keeper handled (``price_base_units`` is None when nothing cleared)."""
    with db.session() as s:
        rows = [(iv.interval_id, pd.Timestamp(iv.interval_id * 900, unit="s", tz="UTC"), iv.state,
                 None if iv.price is None else exact(iv.price),
                 iv.volume_wh, exact(iv.money or 0), iv.n_trades, iv.n_orders, iv.gas_used,
                 (iv.gas_used / iv.n_trades) if iv.gas_used and iv.n_trades else None, iv.tx_hash)
                for iv in s.scalars(select(IntervalRow).order_by(IntervalRow.interval_id))]
    df = pd.DataFrame(rows, columns=INTERVAL_COLUMNS)
    df["price_base_units"] = pd.Series([r[3] for r in rows], index=df.index, dtype=object)
    df["money_base_units"] = units_series((r[5] for r in rows), index=df.index)
    return df


def _avg_price(money: int, wh: int) -> Decimal | None:
    """Average price in base units per kWh (exact Decimal quotient; None without energy)."""
    return None if wh == 0 else Decimal(money * 1000) / Decimal(wh)


def participants_frame(db: Database) -> pd.DataFrame:
    """Energy sold/bought and money received/paid per address, over all settled trades; money in
    exact base units (``…_base_units``, Python ints), average prices as Decimal base units per kWh."""
    t = trades_frame(db)
    if t.empty:
        return pd.DataFrame(columns=PARTICIPANT_COLUMNS)
    sold = sum_by(t, ["seller"], "wh", "sold_wh").merge(
        sum_by(t, ["seller"], "money_base_units", "received_base_units"), on="seller").rename(
        columns={"seller": "address"})
    bought = sum_by(t, ["buyer"], "wh", "bought_wh").merge(
        sum_by(t, ["buyer"], "money_base_units", "paid_base_units"), on="buyer").rename(columns={"buyer": "address"})
    df = sold.merge(bought, on="address", how="outer")
    for c in ("sold_wh", "bought_wh", "received_base_units", "paid_base_units"):  # absent side: 0, still exact
        df[c] = units_series((0 if pd.isna(v) else v for v in df[c]), index=df.index)
    df["net_wh"] = [b - s for b, s in zip(df["bought_wh"], df["sold_wh"], strict=True)]
    df["net_money_base_units"] = units_series(
        (r - p for r, p in zip(df["received_base_units"], df["paid_base_units"], strict=True)), index=df.index)
    df["avg_sell_price_base_units"] = pd.Series(
        [_avg_price(m, w) for m, w in zip(df["received_base_units"], df["sold_wh"], strict=True)],
        index=df.index, dtype=object)
    df["avg_buy_price_base_units"] = pd.Series(
        [_avg_price(m, w) for m, w in zip(df["paid_base_units"], df["bought_wh"], strict=True)],
        index=df.index, dtype=object)
    for c in ("sold_wh", "bought_wh", "net_wh"):  # energy in Wh: int64 is safe
        df[c] = df[c].astype("int64")
    return df[PARTICIPANT_COLUMNS].sort_values("address").reset_index(drop=True)


def write_csv(db: Database, directory: str | Path) -> list[Path]:
    """Write market_intervals.csv, market_participants.csv and market_trades.csv."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for name, frame in (("market_intervals", intervals_frame(db)), ("market_participants", participants_frame(db)),
                        ("market_trades", trades_frame(db))):
        p = d / f"{name}.csv"
        for_csv(frame).to_csv(p, index=False)
        out.append(p)
    return out
