"""Market reports (pandas) from the keeper's database: price and volume per interval, and each
participant's energy and money.

Money is rounded per order on chain, not per trade (issue 16): a sell order receives
``floor(Σ wh × price / 1000)`` over its trades, a buy order pays the ceiling, and the difference
stays in the market as rounding dust. The reports compute exactly that from the stored trades
(:func:`keeper.settlement.rows_money`), so every figure here equals what moved on chain to the
base unit. Money and prices are payment-token base units (``…_base_units``) held as exact Python
ints in ``object`` columns and summed with :mod:`keeper.reports.amounts`: an 18-decimal currency
passes 2**63 base units at 9.22 whole units, so an int64 column would wrap and a float would round.

>>> from keeper.db import Database
>>> db = Database("sqlite:///keeper.db")
>>> intervals_frame(db)    # interval_id, state, price_base_units, volume_wh, money_base_units, rounding_dust_base_units, …
>>> participants_frame(db) # address, sold_wh, bought_wh, received_base_units, paid_base_units, net_wh, net_money_base_units, …
>>> trades_frame(db)       # … wh, price_base_units, money_base_units (display), seller_received_base_units, buyer_paid_base_units …
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
from sqlalchemy import select

from ..db import Database, IntervalRow, TradeRow
from ..settlement import rows_money
from .amounts import exact, for_csv

INTERVAL_COLUMNS = ["interval_id", "start", "state", "price_base_units", "volume_wh", "money_base_units",
                    "network_fees_base_units", "rounding_dust_base_units", "trades", "orders", "gas_used",
                    "gas_per_trade", "tx_hash"]
PARTICIPANT_COLUMNS = ["address", "sold_wh", "bought_wh", "received_base_units", "paid_base_units", "net_wh",
                       "net_money_base_units", "avg_sell_price_base_units", "avg_buy_price_base_units"]
TRADE_COLUMNS = ["interval_id", "seller", "buyer", "wh", "price_base_units", "money_base_units",
                 "seller_received_base_units", "buyer_paid_base_units", "payment_token", "tx_hash"]
#: Columns of token base units: Python ints (``object`` dtype), exact beyond 2^63.
_UNITS = {"price_base_units", "money_base_units", "seller_received_base_units", "buyer_paid_base_units",
          "received_base_units", "paid_base_units", "net_money_base_units", "rounding_dust_base_units",
          "network_fees_base_units"}


def _trade_rows(db: Database) -> list[TradeRow]:
    with db.session() as s:
        return list(s.scalars(select(TradeRow).order_by(TradeRow.interval_id, TradeRow.id)))


def _with_shares(rows: list[TradeRow]):
    split = rows_money(rows)
    return zip(rows, split.trade_received, split.trade_paid, strict=True)


def _frame(rows: list, columns: list[str]) -> pd.DataFrame:
    """A frame whose base-unit columns hold Python ints (``object`` dtype; None stays None)."""
    df = pd.DataFrame(rows, columns=columns)
    for c in columns:
        if c in _UNITS:
            df[c] = pd.Series([None if v is None else exact(v) for v in (r[columns.index(c)] for r in rows)],
                              index=df.index, dtype=object)
    return df


def _avg_price(money: int, wh: int) -> Decimal | None:
    """Average price in base units per kWh (exact Decimal quotient; None without energy)."""
    return None if wh == 0 else Decimal(money * 1000) / Decimal(wh)


def trades_frame(db: Database) -> pd.DataFrame:
    """One row per settled trade. ``money_base_units`` is the trade's value rounded down (display
    only); ``seller_received_base_units``/``buyer_paid_base_units`` are the trade's shares of what its
    sell and buy orders moved (the running floor/ceiling of each order's value): summed per order they
    are exactly the chain's transfers."""
    out = [(t.interval_id, t.seller, t.buyer, t.wh, exact(t.price), exact(t.money), got, paid, t.payment_token,
            t.tx_hash) for t, got, paid in _with_shares(_trade_rows(db))]
    return _frame(out, TRADE_COLUMNS)


def intervals_frame(db: Database) -> pd.DataFrame:
    """One row per interval the keeper handled; ``money_base_units`` is what the buyers paid, of
    which the sellers received all but ``rounding_dust_base_units`` (``price_base_units`` is None
    when nothing cleared)."""
    dust: dict[int, int] = {}
    fees: dict[int, int] = {}
    rows = _trade_rows(db)
    buy_interval = {t.buy_hash: t.interval_id for t in rows}
    for h, f in rows_money(rows).fees.items():  # each buy order's network fee, rounded down once
        fees[buy_interval[h]] = fees.get(buy_interval[h], 0) + f
    for t, got, paid in _with_shares(rows):
        dust[t.interval_id] = dust.get(t.interval_id, 0) + paid - got
    for iid, f in fees.items():
        dust[iid] -= f
    with db.session() as s:
        rows = [(iv.interval_id, pd.Timestamp(iv.interval_id * 900, unit="s", tz="UTC"), iv.state,
                 None if iv.price is None else exact(iv.price),
                 iv.volume_wh, exact(iv.money or 0), fees.get(iv.interval_id, 0), dust.get(iv.interval_id, 0),
                 iv.n_trades, iv.n_orders,
                 iv.gas_used, (iv.gas_used / iv.n_trades) if iv.gas_used and iv.n_trades else None, iv.tx_hash)
                for iv in s.scalars(select(IntervalRow).order_by(IntervalRow.interval_id))]
    return _frame(rows, INTERVAL_COLUMNS)


def participants_frame(db: Database) -> pd.DataFrame:
    """Energy sold/bought and money received/paid per address over all settled trades, exactly as
    the chain moved it (per-order rounding); average prices as Decimal base units per kWh."""
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
                     _avg_price(received, sold), _avg_price(paid, bought)))
    df = _frame(rows, PARTICIPANT_COLUMNS)
    for c in ("sold_wh", "bought_wh", "net_wh"):  # energy in Wh: int64 is safe
        df[c] = df[c].astype("int64")
    return df


def grid_figures(db: Database, grid_account: str) -> dict[str, int]:
    """What the grid participant (``grid_account``) traded in the market, exactly as the chain moved
    it: ``sold_wh``/``paid_base_units`` (households bought from the grid and paid it),
    ``bought_wh``/``received_base_units`` (the grid bought households' WATT and paid them), and the
    trades between households (``local_wh``, ``local_paid_base_units``: what their buyers paid,
    network fees included; ``local_received_base_units``: what their sellers received)."""
    g = grid_account.lower()
    out = dict.fromkeys(("sold_wh", "paid_base_units", "bought_wh", "received_base_units", "local_wh",
                         "local_paid_base_units", "local_received_base_units"), 0)
    for t, got, paid in _with_shares(_trade_rows(db)):
        if t.seller.lower() == g:
            out["sold_wh"] += t.wh
            out["paid_base_units"] += paid
        elif t.buyer.lower() == g:
            out["bought_wh"] += t.wh
            out["received_base_units"] += got
        else:
            out["local_wh"] += t.wh
            out["local_paid_base_units"] += paid
            out["local_received_base_units"] += got
    return out


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
