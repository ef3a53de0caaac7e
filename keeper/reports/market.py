"""Market reports (pandas) from the keeper's database: price and volume per interval, and each
participant's energy and money.

>>> from keeper.db import Database
>>> db = Database("sqlite:///keeper.db")
>>> intervals_frame(db)        # interval_id, state, price, volume_wh, money, trades, gas_used, tx_hash
>>> participants_frame(db)     # address, sold_wh, bought_wh, received, paid, net_wh, net_money
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import select

from ..db import Database, IntervalRow, TradeRow

INTERVAL_COLUMNS = ["interval_id", "start", "state", "price", "volume_wh", "money", "trades", "orders",
                    "gas_used", "gas_per_trade", "tx_hash"]
PARTICIPANT_COLUMNS = ["address", "sold_wh", "bought_wh", "received", "paid", "net_wh", "net_money",
                       "avg_sell_price", "avg_buy_price"]


def trades_frame(db: Database) -> pd.DataFrame:
    with db.session() as s:
        rows = [(t.interval_id, t.seller, t.buyer, t.wh, int(t.price), int(t.money), t.payment_token, t.tx_hash)
                for t in s.scalars(select(TradeRow).order_by(TradeRow.interval_id, TradeRow.id))]
    return pd.DataFrame(rows, columns=["interval_id", "seller", "buyer", "wh", "price", "money",
                                       "payment_token", "tx_hash"])


def intervals_frame(db: Database) -> pd.DataFrame:
    """One row per interval the keeper handled."""
    with db.session() as s:
        rows = [(iv.interval_id, pd.Timestamp(iv.interval_id * 900, unit="s", tz="UTC"), iv.state,
                 None if iv.price is None else int(iv.price),
                 iv.volume_wh, int(iv.money or 0), iv.n_trades, iv.n_orders, iv.gas_used,
                 (iv.gas_used / iv.n_trades) if iv.gas_used and iv.n_trades else None, iv.tx_hash)
                for iv in s.scalars(select(IntervalRow).order_by(IntervalRow.interval_id))]
    return pd.DataFrame(rows, columns=INTERVAL_COLUMNS)


def participants_frame(db: Database) -> pd.DataFrame:
    """Energy sold/bought and money received/paid per address, over all settled trades."""
    t = trades_frame(db)
    if t.empty:
        return pd.DataFrame(columns=PARTICIPANT_COLUMNS)
    sold = t.groupby("seller").agg(sold_wh=("wh", "sum"), received=("money", "sum"))
    bought = t.groupby("buyer").agg(bought_wh=("wh", "sum"), paid=("money", "sum"))
    df = sold.join(bought, how="outer").fillna(0).astype("int64")
    df.index.name = "address"
    df = df.reset_index()
    df["net_wh"] = df["bought_wh"] - df["sold_wh"]
    df["net_money"] = df["received"] - df["paid"]
    df["avg_sell_price"] = (df["received"] * 1000 / df["sold_wh"]).where(df["sold_wh"] > 0)
    df["avg_buy_price"] = (df["paid"] * 1000 / df["bought_wh"]).where(df["bought_wh"] > 0)
    return df[PARTICIPANT_COLUMNS].sort_values("address").reset_index(drop=True)


def write_csv(db: Database, directory: str | Path) -> list[Path]:
    """Write market_intervals.csv, market_participants.csv and market_trades.csv."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for name, frame in (("market_intervals", intervals_frame(db)), ("market_participants", participants_frame(db)),
                        ("market_trades", trades_frame(db))):
        p = d / f"{name}.csv"
        frame.to_csv(p, index=False)
        out.append(p)
    return out
