"""Clearing engine: textbook cases and Hypothesis properties (limits, maximal volume, conservation,
independence of input order)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper.clearing import PAY_AS_BID, BookOrder, ClearingError, ClearingResult, Fill, clear, clear_arrays

A, B, C, D = "0xA", "0xB", "0xC", "0xD"


def o(id, maker, side, wh, price, seq=0, **kw):
    return BookOrder(id=id, maker=maker, side=side, amount_wh=wh, limit_price=price, seq=seq, **kw)


def test_no_overlap_no_trade():
    r = clear([o("1", A, "sell", 100, 30), o("2", B, "buy", 100, 20)])
    assert r.trades == [] and r.prices == {}


def test_one_crossing_at_midpoint():
    r = clear([o("1", A, "sell", 100, 20), o("2", B, "buy", 100, 30)])
    assert [(t.sell_id, t.buy_id, t.wh, t.price) for t in r.trades] == [("1", "2", 100, 25)]


def test_many_crossings_with_partial_fills():
    book = [o("s1", A, "sell", 500, 10), o("s2", B, "sell", 500, 20), o("s3", C, "sell", 500, 35),
            o("b1", D, "buy", 600, 40), o("b2", "0xE", "buy", 600, 25)]
    r = clear(book)
    # supply at 20: 1000, demand at 20..25: 1200 -> 1000 Wh trade. Any price in [20, 25) leaves b2
    # (limit 25) strictly in the money yet short 200 Wh: the only equilibrium price is 25, where b2 is
    # at the money and rationed (issue 18; the old rule took the midpoint 22 of the volume range).
    assert r.price == 25 and r.volume_wh == 1000
    assert r.fills() == {"s1": 500, "s2": 500, "b1": 600, "b2": 400}


def test_equal_prices_tie_break_by_time_then_id():
    book = [o("s", A, "sell", 100, 20), o("b2", B, "buy", 100, 20, seq=2), o("b1", C, "buy", 100, 20, seq=1),
            o("b0", D, "buy", 100, 20, seq=2)]
    r = clear(book)
    assert r.price == 20 and [(t.buy_id, t.wh) for t in r.trades] == [("b1", 100)]
    book[2] = o("b1", C, "buy", 100, 20, seq=3)
    assert [(t.buy_id, t.wh) for t in clear(book).trades] == [("b0", 100)]


def test_pay_as_bid_prices_each_trade_at_the_bid():
    r = clear([o("s", A, "sell", 200, 10), o("b1", B, "buy", 100, 40), o("b2", C, "buy", 100, 30)], PAY_AS_BID)
    assert sorted((t.buy_id, t.price) for t in r.trades) == [("b1", 40), ("b2", 30)]


def test_no_self_trade():
    r = clear([o("s", A, "sell", 100, 10), o("b", A, "buy", 100, 40), o("b2", B, "buy", 50, 40, seq=1)])
    assert all(t.seller != t.buyer for t in r.trades)
    assert r.fills().get("b2") == 50


def test_colour_and_counterparty_preferences():
    solar = b"solar".ljust(32, b"\0")
    book = [o("s1", A, "sell", 100, 10), o("s2", B, "sell", 100, 12, colour=solar),
            o("b1", C, "buy", 100, 40, colour=solar), o("b2", D, "buy", 100, 40, counterparty=A)]
    r = clear(book)
    pairs = {(t.sell_id, t.buy_id) for t in r.trades}
    assert pairs == {("s2", "b1"), ("s1", "b2")}


def test_fill_or_kill_is_never_partial():
    book = [o("s", A, "sell", 100, 10), o("b1", B, "buy", 150, 40, partially_fillable=False),
            o("b2", C, "buy", 80, 30)]
    r = clear(book)
    assert r.fills().get("b1", 0) in (0, 150)
    assert r.removed_fill_or_kill == ["b1"] and r.fills()["b2"] == 80


def test_bad_input_is_refused():
    with pytest.raises(ClearingError, match="amount_wh"):
        clear([o("1", A, "sell", 0, 10)])
    with pytest.raises(ClearingError, match="duplicate"):
        clear([o("1", A, "sell", 1, 10), o("1", B, "buy", 1, 10)])


orders_st = st.lists(
    st.tuples(st.sampled_from(["sell", "buy"]), st.integers(1, 5000), st.integers(1, 100), st.integers(0, 5)),
    min_size=0, max_size=40)


def _book(rows):
    return [o(f"{i:03d}", f"0x{i:040x}", side, wh, p, seq) for i, (side, wh, p, seq) in enumerate(rows)]


def _max_volume(book) -> int:
    best = 0
    for p in {b.limit_price for b in book}:
        d = sum(b.amount_wh for b in book if b.side == "buy" and b.limit_price >= p)
        s = sum(b.amount_wh for b in book if b.side == "sell" and b.limit_price <= p)
        best = max(best, min(d, s))
    return best


@settings(max_examples=200, deadline=None)
@given(orders_st, st.sampled_from(["uniform", "pay_as_bid"]))
def test_properties_limits_volume_conservation(rows, mode):
    book = _book(rows)
    r = clear(book, mode)
    by_id = {b.id: b for b in book}
    for t in r.trades:
        s, b = by_id[t.sell_id], by_id[t.buy_id]
        assert s.side == "sell" and b.side == "buy"
        assert s.limit_price <= t.price <= b.limit_price  # no trade outside a limit
        assert t.wh > 0 and t.seller != t.buyer
    fills = r.fills()
    for oid, f in fills.items():
        assert f <= by_id[oid].amount_wh
    # energy conserved: sold == bought
    sold = sum(f for oid, f in fills.items() if by_id[oid].side == "sell")
    bought = sum(f for oid, f in fills.items() if by_id[oid].side == "buy")
    assert sold == bought == r.volume_wh
    # money rounded per order as on chain: paid == received + dust, under one unit per order; no
    # seller below floor(fill × limit / 1000), no buyer above ceil(fill × limit / 1000)
    split = r.split()
    assert set(split.received) | set(split.paid) == set(fills)
    value = {oid: 0 for oid in fills}
    for t in r.trades:
        value[t.sell_id] += t.wh * t.price
        value[t.buy_id] += t.wh * t.price
    for oid, got in split.received.items():
        assert got == value[oid] // 1000 >= fills[oid] * by_id[oid].limit_price // 1000
    for oid, paid in split.paid.items():
        assert paid == -(-value[oid] // 1000) <= -(-fills[oid] * by_id[oid].limit_price // 1000)
    assert sum(split.paid.values()) == sum(split.received.values()) + split.dust == r.money
    assert 0 <= split.dust < max(1, len(fills))
    assert sum(split.trade_paid) == r.money and sum(split.trade_received) == sum(split.received.values())
    assert r.volume_wh == _max_volume(book)  # traded volume is maximal


@settings(max_examples=100, deadline=None)
@given(orders_st, st.randoms())
def test_result_does_not_depend_on_input_order(rows, rnd):
    book = _book(rows)
    shuffled = list(book)
    rnd.shuffle(shuffled)
    a, b = clear(book), clear(shuffled)
    assert a.prices == b.prices
    assert sorted(a.trades, key=repr) == sorted(b.trades, key=repr)


def test_array_kernel_matches_object_api():
    rng = random.Random(3)
    rows = [(rng.choice(["sell", "buy"]), rng.randint(1, 999), rng.randint(1, 60), i) for i in range(300)]
    book = _book(rows)
    r = clear(book)
    price, si, bi, wh, tp = clear_arrays(np.array([s == "buy" for s, *_ in rows]),
                                         np.array([p for _, _, p, _ in rows]),
                                         np.array([w for _, w, _, _ in rows]),
                                         np.array([q for *_, q in rows]))
    assert price == r.price and int(wh.sum()) == r.volume_wh


def test_prices_beyond_int64_clear_exactly():
    e18 = 10**18
    r = clear([o("s", A, "sell", 1000, 25 * e18), o("b", B, "buy", 1000, 30 * e18 + 1)])
    # the midpoint rounded up (issue 18: half a base unit goes to the sellers, never against them)
    assert r.price == (25 * e18 + 30 * e18 + 1 + 1) // 2 and r.trades[0].money == r.price == r.money  # 1 kWh
    r = clear([o("s", A, "sell", 10, 2**200), o("b", B, "buy", 10, 2**200)], PAY_AS_BID)
    assert r.trades[0].price == 2**200


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(1, 40), st.integers(1, 60)),
                min_size=1, max_size=40))
def test_split_money_per_order_whatever_the_split(rows):
    """However trades are split (any pieces, any order, repeated pairs), an order's money is the
    floor (sell) / ceiling (buy) of its whole value, and the per-trade shares add up to it exactly."""
    from gridcoop_sdk.orders import split_money

    trades = [(f"s{s}", f"b{b}", wh, p) for s, b, wh, p in rows]
    split = split_money(trades)
    for oid in {t[0] for t in trades}:
        v = sum(wh * p for s, _, wh, p in trades if s == oid)
        assert split.received[oid] == v // 1000
        assert sum(g for (s, *_), g in zip(trades, split.trade_received, strict=True) if s == oid) == v // 1000
    for oid in {t[1] for t in trades}:
        v = sum(wh * p for _, b, wh, p in trades if b == oid)
        assert split.paid[oid] == -(-v // 1000)
        assert sum(g for (_, b, *_), g in zip(trades, split.trade_paid, strict=True) if b == oid) == -(-v // 1000)
    assert 0 <= split.dust < len({t[0] for t in trades}) + len({t[1] for t in trades})


def test_split_attack_pays_the_seller_per_order():
    """Issue 16: 1,000 Wh at 30/kWh as 31 trades of <= 33 Wh pays each trade 0 when rounded per
    trade; per order the seller receives 30 and the buyer pays 30."""
    r_trades = [Fill("s", "b", A, B, wh, 30, "0xT") for wh in [33] * 30 + [10]]
    r = ClearingResult(trades=r_trades)
    assert all(t.money == 0 for t in r.trades)
    assert r.split().received == {"s": 30} and r.split().paid == {"b": 30} and r.money == 30
