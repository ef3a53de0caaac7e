"""Market report money past int64: exact Python ints from the keeper's database to the CSV (issue 17)."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from keeper.db import Database, IntervalRow, TradeRow
from keeper.reports.market import intervals_frame, participants_frame, trades_frame, write_csv

E18 = 10**18
TOKEN = "0x" + "ab" * 20


def _db(db_url, trades: list[tuple[int, str, str, int, int]]) -> Database:
    """trades: (interval, seller, buyer, wh, price per kWh in base units); money = wh × price // 1000.
    ``db_url``: SQLite and PostgreSQL (the fixture runs each test on both)."""
    db = Database(db_url)
    with db.session() as s:
        per: dict[int, list] = {}
        for n, (iid, seller, buyer, wh, price) in enumerate(trades):
            money = wh * price // 1000
            s.add(TradeRow(interval_id=iid, seller=seller, buyer=buyer, sell_hash=f"s{n}", buy_hash=f"b{n}", wh=wh,
                           price=str(price), money=str(money), payment_token=TOKEN, tx_hash=f"0x{iid:064x}"))
            per.setdefault(iid, []).append((wh, price, money))
        for iid, rows in per.items():
            s.add(IntervalRow(interval_id=iid, state="settled", price=str(rows[0][1]),
                              volume_wh=sum(r[0] for r in rows), money=str(sum(r[2] for r in rows)),
                              n_trades=len(rows), n_orders=2 * len(rows), tx_hash=f"0x{iid:064x}", gas_used=100_000))
    return db


def test_money_totals_are_exact_past_int64(tmp_path, db_url):
    # ten trades of 8.2 units each (within int64) and one of 3 × 2**64 base units: every sum passes 2**64
    trades = [(100 + i, "alice", "bob", 1000, 8_200_000_000_000_000_123) for i in range(10)]
    trades.append((111, "alice", "carol", 1000, 3 * 2**64 + 7))
    db = _db(db_url, trades)
    money = [wh * p // 1000 for _, _, _, wh, p in trades]

    t = trades_frame(db)
    assert list(t["money_base_units"]) == money and all(type(m) is int for m in t["money_base_units"])

    people = participants_frame(db).set_index("address")
    assert people.loc["alice", "received_base_units"] == sum(money) > 2**65
    assert people.loc["bob", "paid_base_units"] == sum(money[:10]) > 2**64
    assert people.loc["carol", "paid_base_units"] == money[10]
    assert people.loc["alice", "net_money_base_units"] == sum(money)
    assert people.loc["bob", "net_money_base_units"] == -sum(money[:10])
    assert sum(people["net_money_base_units"]) == 0
    assert people.loc["alice", "sold_wh"] == 11_000 and people.loc["bob", "net_wh"] == 10_000
    assert people.loc["alice", "avg_sell_price_base_units"] == Decimal(sum(money) * 1000) / 11_000
    assert people.loc["bob", "avg_buy_price_base_units"] == 8_200_000_000_000_000_123
    assert people.loc["alice", "avg_buy_price_base_units"] is None

    iv = intervals_frame(db)
    assert sum(iv["money_base_units"]) == sum(money) and iv["price_base_units"].iloc[-1] == 3 * 2**64 + 7

    paths = {p.name: p for p in write_csv(db, tmp_path / "out")}
    back = pd.read_csv(paths["market_participants.csv"], dtype=str).set_index("address")
    assert int(back.loc["alice", "received_base_units"]) == sum(money)
    assert int(back.loc["bob", "net_money_base_units"]) == -sum(money[:10])
    back_iv = pd.read_csv(paths["market_intervals.csv"], dtype=str)
    assert [int(m) for m in back_iv["money_base_units"]] == list(iv["money_base_units"])
    back_t = pd.read_csv(paths["market_trades.csv"], dtype=str)
    assert [int(m) for m in back_t["money_base_units"]] == money


def test_empty_database_gives_empty_frames(tmp_path, db_url):
    db = _db(db_url, [])
    assert participants_frame(db).empty and trades_frame(db).empty and intervals_frame(db).empty
