"""Market reports (pandas) from the keeper's database: price and volume per interval, and each
participant's energy and money.

Money is rounded per order on chain, not per trade (issue 16): a sell order receives
``floor(Σ wh × price / 1000)`` over its trades, a buy order pays the ceiling, and the difference
stays in the market as rounding dust. The reports compute exactly that from the stored trades
(:func:`keeper.settlement.rows_money`), so every figure here equals what moved on chain to the
base unit; amounts are Python ints (``object`` columns), never int64 or float.

>>> from keeper.db import Database
>>> db = Database("sqlite:///keeper.db")
>>> intervals_frame(db)        # interval_id, state, price, volume_wh, money, rounding_dust, trades, gas_used, tx_hash
>>> participants_frame(db)     # address, sold_wh, bought_wh, received, paid, net_wh, net_money
>>> trades_frame(db)           # … wh, price, money (display), seller_received, buyer_paid …
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import select

from ..db import Database, IntervalRow, TradeRow
from ..settlement import rows_money

INTERVAL_COLUMNS = ["interval_id", "start", "state", "price", "volume_wh", "money", "rounding_dust", "trades",
                    "orders", "gas_used", "gas_per_trade", "tx_hash"]
PARTICIPANT_COLUMNS = ["address", "sold_wh", "bought_wh", "received", "paid", "net_wh", "net_money",
                       "avg_sell_price", "avg_buy_price"]
TRADE_COLUMNS = ["interval_id", "seller", "buyer", "wh", "price", "money", "seller_received", "buyer_paid",
                 "payment_token", "tx_hash"]
_MONEY = ("money", "seller_received", "buyer_paid", "received", "paid", "net_money", "rounding_dust")


def _trade_rows(db: Database) -> list[TradeRow]:
    with db.session() as s:
        return list(s.scalars(select(TradeRow).order_by(TradeRow.interval_id, TradeRow.id)))


def _frame(rows: list, columns: list[str]) -> pd.DataFrame:
    """A frame whose money columns hold Python ints (``object`` dtype: exact beyond 2^63)."""
    df = pd.DataFrame(rows, columns=columns)
    for c in columns:
        if c in _MONEY:
            df[c] = pd.Series([int(v) for v in df[c]], index=df.index, dtype=object)
    return df


def trades_frame(db: Database) -> pd.DataFrame:
    """One row per settled trade. ``money`` is the trade's value rounded down (display only);
    ``seller_received``/``buyer_paid`` are the trade's shares of what its sell and buy orders moved
    (the running floor/ceiling of each order's value): summed per order they are exactly the
    chain's transfers."""
    rows = _trade_rows(db)
    split = rows_money(rows)
    out = [(t.interval_id, t.seller, t.buyer, t.wh, int(t.price), int(t.money), got, paid, t.payment_token, t.tx_hash)
           for t, got, paid in zip(rows, split.trade_received, split.trade_paid, strict=True)]
    return _frame(out, TRADE_COLUMNS)


def intervals_frame(db: Database) -> pd.DataFrame:
    """One row per interval the keeper handled; ``money`` is what the buyers paid, of which the
    sellers received all but ``rounding_dust``."""
    dust: dict[int, int] = {}
    for t, got, paid in _with_shares(_trade_rows(db)):
        dust[t.interval_id] = dust.get(t.interval_id, 0) + paid - got
    with db.session() as s:
        rows = [(iv.interval_id, pd.Timestamp(iv.interval_id * 900, unit="s", tz="UTC"), iv.state,
                 None if iv.price is None else int(iv.price),
                 iv.volume_wh, int(iv.money or 0), dust.get(iv.interval_id, 0), iv.n_trades, iv.n_orders,
                 iv.gas_used, (iv.gas_used / iv.n_trades) if iv.gas_used and iv.n_trades else None, iv.tx_hash)
                for iv in s.scalars(select(IntervalRow).order_by(IntervalRow.interval_id))]
    return _frame(rows, INTERVAL_COLUMNS)


def _with_shares(rows: list[TradeRow]):
    split = rows_money(rows)
    return zip(rows, split.trade_received, split.trade_paid, strict=True)


def participants_frame(db: Database) -> pd.DataFrame:
    """Energy sold/bought and money received/paid per address, over all settled trades, exactly
    as the chain moved it (per-order rounding)."""
    acc: dict[str, list[int]] = {}
    for t, got, paid in _with_shares(_trade_rows(db)):
        seller = acc.setdefault(t.seller, [0, 0, 0, 0])
        seller[0] += t.wh
        seller[2] += got
        buyer = acc.setdefault(t.buyer, [0, 0, 0, 0])
        buyer[1] += t.wh
        buyer[3] += paid
    rows = []
    for address in sorted(acc):
        sold, bought, received, paid = acc[address]
        rows.append((address, sold, bought, received, paid, bought - sold, received - paid,
                     received * 1000 / sold if sold else None, paid * 1000 / bought if bought else None))
    return _frame(rows, PARTICIPANT_COLUMNS)


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
