"""Issue 18: the clearing price lies in the competitive equilibrium interval, the volume is maximal at
that price under every constraint (no self-trade, required colour, exclusive counterparty), nothing
trades out of the money, money is conserved per order and never rounds against a seller. Checked
against an independent order-level max-flow on random books (makers on both sides, colours,
counterparties) and the issue's examples."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper.clearing import BookOrder, Fill, clear
from keeper.settlement import NO_TERMS, BatchCheckFailed, check_money

Z = "0x0000000000000000000000000000000000000000"
NO_COLOUR = b"\x00" * 32
SOLAR = b"solar".ljust(32, b"\0")
WIND = b"wind".ljust(32, b"\0")
MAKERS = ["0xA", "0xB", "0xC", "0xD", "0xE"]


def o(id, maker, side, wh, price, seq=0, **kw):
    return BookOrder(id=id, maker=maker, side=side, amount_wh=wh, limit_price=price, seq=seq, **kw)


# --------------------------------------------------------------------------- reference (independent)


def equilibrium_interval(book):
    """[lo, hi] of prices (integers) at which the maximal volume clears with every order strictly in
    the money filled and none out of the money: brute force over every integer price."""
    sells = [b for b in book if b.side == "sell"]
    buys = [b for b in book if b.side == "buy"]
    if not sells or not buys:
        return None
    top = max(b.limit_price for b in book)

    def curves(p):
        s_le = sum(x.amount_wh for x in sells if x.limit_price <= p)
        s_lt = sum(x.amount_wh for x in sells if x.limit_price < p)
        d_ge = sum(x.amount_wh for x in buys if x.limit_price >= p)
        d_gt = sum(x.amount_wh for x in buys if x.limit_price > p)
        return s_le, s_lt, d_ge, d_gt

    volume = max(min(c[0], c[2]) for c in map(curves, range(top + 1)))
    if volume == 0:
        return None
    ok = [p for p in range(top + 1)
          if (c := curves(p))[1] <= volume <= c[0] and c[3] <= volume <= c[2]]
    return volume, min(ok), max(ok)


def accepts(s, b):
    if s.maker == b.maker:
        return False
    if b.colour != NO_COLOUR and b.colour != s.colour:
        return False
    if b.counterparty != Z and b.counterparty != s.maker:
        return False
    return not (s.counterparty != Z and s.counterparty != b.maker)


def max_flow_at(book, p):
    """Largest volume at price p honouring every constraint: order-level Edmonds–Karp."""
    sells = [x for x in book if x.side == "sell" and x.limit_price <= p]
    buys = [x for x in book if x.side == "buy" and x.limit_price >= p]
    n = 2 + len(sells) + len(buys)
    cap = [[0] * n for _ in range(n)]
    for i, s in enumerate(sells):
        cap[0][2 + i] = s.amount_wh
        for j, b in enumerate(buys):
            if accepts(s, b):
                cap[2 + i][2 + len(sells) + j] = 10**30
    for j, b in enumerate(buys):
        cap[2 + len(sells) + j][1] = b.amount_wh
    flow = 0
    while True:
        prev = [-1] * n
        prev[0] = 0
        q = [0]
        for u in q:
            for v in range(n):
                if cap[u][v] > 0 and prev[v] < 0:
                    prev[v] = u
                    q.append(v)
        if prev[1] < 0:
            return flow
        f, v = 10**30, 1
        while v:
            f = min(f, cap[prev[v]][v])
            v = prev[v]
        v = 1
        while v:
            cap[prev[v]][v] -= f
            cap[v][prev[v]] += f
            v = prev[v]
        flow += f


# --------------------------------------------------------------------------- strategies

row = st.tuples(
    st.sampled_from(["sell", "buy"]), st.sampled_from(MAKERS), st.integers(1, 60), st.integers(1, 60),
    st.sampled_from([NO_COLOUR, NO_COLOUR, SOLAR, WIND]), st.sampled_from([Z, Z, Z, Z, "0xA", "0xB"]),
    st.integers(0, 3))


def make_book(rows, colours=True, counterparties=True):
    out = []
    for i, (side, maker, wh, price, colour, cp, seq) in enumerate(rows):
        out.append(o(f"{i:03d}", maker, side, wh, price, seq, colour=colour if colours else NO_COLOUR,
                     counterparty=cp if counterparties and cp != maker else Z))
    return out


def check(book, r, terms=None):
    by_id = {b.id: b for b in book}
    eq = equilibrium_interval(book)
    fills = r.fills()
    for t in r.trades:
        s, b = by_id[t.sell_id], by_id[t.buy_id]
        assert s.side == "sell" and b.side == "buy"
        assert accepts(s, b)  # no self-trade; colour and counterparty honoured
        assert s.limit_price <= t.price <= b.limit_price  # nothing out of the money
        assert t.wh > 0 and t.wh * t.price > 0  # no trade that moves nothing
    for oid, f in fills.items():
        assert f <= by_id[oid].amount_wh
    if eq is None:
        assert r.volume_wh == 0
        return
    volume, lo, hi = eq
    if r.volume_wh:
        assert lo <= r.price <= hi  # inside the competitive equilibrium interval
        assert r.volume_wh == max_flow_at(book, r.price)  # maximal at that price under every constraint
    # and no price inside the interval would clear more (the engine tries the interval's limit prices)
    best = max(max_flow_at(book, p) for p in {lo, hi, (lo + hi + 1) // 2} | {
        x.limit_price for x in book if lo <= x.limit_price <= hi})
    assert r.volume_wh == best
    # money per order as on chain: the seller's floor is never below its sale at its own limit
    split = r.split()
    for oid, got in split.received.items():
        assert got >= fills[oid] * by_id[oid].limit_price // 1000
    for oid, paid in split.paid.items():
        assert paid <= -(-fills[oid] * by_id[oid].limit_price // 1000)
    assert sum(split.paid.values()) == sum(split.received.values()) + split.dust
    # the keeper's pre-send check agrees
    check_money(list(r.trades), {b.id: SimpleNamespace(limit_price=str(b.limit_price)) for b in book},
                terms=terms or NO_TERMS)
    return volume


@settings(max_examples=200, deadline=None)
@given(st.lists(row, max_size=12))
def test_random_books_with_every_constraint(rows):
    book = make_book(rows)
    check(book, clear(book))


@settings(max_examples=200, deadline=None)
@given(st.lists(row, max_size=14))
def test_makers_on_both_sides_never_lose_volume(rows):
    """Self-trade is the only constraint: the volume is the unconstrained maximum whenever a
    self-trade-free pairing of it exists (every maker's sells + buys ≤ volume), else the max-flow."""
    book = make_book(rows, colours=False, counterparties=False)
    r = clear(book)
    volume = check(book, r)
    if volume and r.price is not None:
        sells = {b.maker: 0 for b in book}
        buys = dict(sells)
        p = r.price
        for b in book:  # every order eligible at p (a rationing may fill any of them)
            if b.side == "sell" and b.limit_price <= p:
                sells[b.maker] += b.amount_wh
            if b.side == "buy" and b.limit_price >= p:
                buys[b.maker] += b.amount_wh
        if all(sells[m] + buys[m] <= volume for m in sells) and r.volume_wh == volume:
            # an equilibrium without self-trade: every order strictly in the money is filled
            fills = r.fills()
            for b in book:
                strictly_in = b.limit_price < p if b.side == "sell" else b.limit_price > p
                if strictly_in:
                    assert fills.get(b.id, 0) == b.amount_wh


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["sell", "buy"]), st.integers(1, 5000), st.integers(1, 100),
                          st.integers(0, 5)), max_size=30))
def test_unconstrained_books_are_in_equilibrium(rows):
    """Distinct makers, no preferences: every order strictly in the money is filled, none out of the
    money is, at-the-money orders are rationed by time then id."""
    book = [o(f"{i:03d}", f"0x{i:040x}", side, wh, p, seq) for i, (side, wh, p, seq) in enumerate(rows)]
    r = clear(book)
    volume = check(book, r)
    assert r.volume_wh == (volume or 0)
    fills = r.fills()
    for b in book:
        f = fills.get(b.id, 0)
        if r.price is None:
            assert f == 0
        elif (b.side == "sell" and b.limit_price < r.price) or (b.side == "buy" and b.limit_price > r.price):
            assert f == b.amount_wh
        elif b.limit_price != r.price:
            assert f == 0


# --------------------------------------------------------------------------- the issue's examples


def test_outlier_bid_does_not_set_the_price():
    r = clear([o("s1", "0xA", "sell", 100, 10), o("s2", "0xB", "sell", 100, 20), o("b", "0xC", "buy", 100, 1000)])
    assert 10 <= r.price <= 20 and r.price == 15 and r.volume_wh == 100
    assert r.fills() == {"s1": 100, "b": 100}


def test_maker_on_both_sides_swaps_instead_of_losing_volume():
    book = [o("1", "A", "sell", 1, 16), o("2", "B", "sell", 1, 30), o("3", "A", "buy", 1, 41), o("4", "C", "buy", 1, 37)]
    r = clear(book)
    assert r.volume_wh == 2 and 30 <= r.price <= 37
    assert sorted((t.seller, t.buyer) for t in r.trades) == [("A", "C"), ("B", "A")]


def test_maker_on_both_sides_trades_with_the_other_seller():
    r = clear([o("1", "A", "sell", 1, 21), o("2", "A", "buy", 1, 31), o("3", "B", "sell", 1, 24)])
    assert [(t.seller, t.buyer, t.wh) for t in r.trades] == [("B", "A", 1)] and r.price == 24


def test_colour_is_hard_but_the_matching_is_maximal():
    # greedy in priority order would give b1 (solar or wind) the solar seller and leave b2 (solar
    # only) empty; the max-flow gives b1 the wind and b2 the solar.
    book = [o("s1", "0xA", "sell", 100, 10, colour=SOLAR), o("s2", "0xB", "sell", 100, 11, colour=WIND),
            o("b1", "0xC", "buy", 100, 50, seq=0), o("b2", "0xD", "buy", 100, 50, seq=1, colour=SOLAR)]
    r = clear(book)
    assert r.volume_wh == 200
    assert {(t.sell_id, t.buy_id) for t in r.trades} == {("s1", "b2"), ("s2", "b1")}


def test_counterparty_orders_do_not_wall_off_the_rest_of_the_book():
    # b names A (exclusive, as the chain enforces it); A's other 100 Wh reach the open book
    book = [o("s", "0xA", "sell", 200, 10), o("b", "0xB", "buy", 100, 40, counterparty="0xA"),
            o("c", "0xC", "buy", 100, 40)]
    r = clear(book)
    assert r.fills() == {"s": 200, "b": 100, "c": 100}


def test_totals_beyond_int64_are_exact():
    """1,025 orders of 2^53 − 1 Wh per side: the sums pass 2^63 and are summed exactly."""
    big = 2**53 - 1
    book = [o(f"s{i}", f"0xS{i}", "sell", big, 10) for i in range(1025)]
    book += [o(f"b{i}", f"0xB{i}", "buy", big, 20) for i in range(1025)]
    r = clear(book)
    assert r.volume_wh == 1025 * big and r.price == 15
    assert all(f == big for f in r.fills().values()) and len(r.fills()) == 2050


def test_pre_send_check_refuses_zero_money_and_limit_breaks():
    rows = {"s": SimpleNamespace(limit_price="10"), "b": SimpleNamespace(limit_price="20")}
    with pytest.raises(BatchCheckFailed, match="moves no money"):
        check_money([Fill("s", "b", "0xA", "0xB", 5, 0, "0xT")], rows)
    with pytest.raises(BatchCheckFailed, match="outside the limits"):
        check_money([Fill("s", "b", "0xA", "0xB", 5, 9, "0xT")], rows)
    # split into pieces that each round to nothing, the seller still gets its floor per order
    money = check_money([Fill("s", "b", "0xA", "0xB", 33, 15, "0xT")] * 30 + [Fill("s", "b", "0xA", "0xB", 10, 15, "0xT")], rows)
    assert money.received == {"s": 15} and money.paid == {"b": 15}


# --------------------------------------------------------------------------- ranked preferences


def test_preferred_partner_first_then_the_open_book():
    book = [o("s1", "A", "sell", 100, 10), o("s2", "B", "sell", 50, 10, seq=1),
            o("c1", "C", "buy", 100, 50, prefer=("B", "Z")), o("c2", "D", "buy", 50, 50, seq=1)]
    r = clear(book)
    # C gets all of its first choice B (50 Wh), Z is absent, the other 50 Wh come from the open book
    assert sorted((t.seller, t.buyer, t.wh) for t in r.trades) == [("A", "C", 50), ("A", "D", 50), ("B", "C", 50)]
    assert r.price == clear([b if b.id != "c1" else o("c1", "C", "buy", 100, 50) for b in book]).price


def test_preference_for_an_absent_maker_still_trades():
    r = clear([o("s1", "A", "sell", 100, 10), o("c1", "C", "buy", 100, 50, prefer=("E",))])
    assert [(t.seller, t.buyer, t.wh) for t in r.trades] == [("A", "C", 100)]


@settings(max_examples=200, deadline=None)
@given(st.lists(row, max_size=12), st.lists(st.lists(st.sampled_from(MAKERS), max_size=3, unique=True), max_size=12))
def test_preferences_never_cost_volume_or_move_the_price(rows, prefs):
    """Preferences only choose partners: same price and volume as without them, every rule kept."""
    plain = make_book(rows)
    book = [BookOrder(**{**b.__dict__, "prefer": tuple(prefs[i]) if i < len(prefs) else ()})
            for i, b in enumerate(plain)]
    r, r0 = clear(book), clear(plain)
    check(book, r)
    assert r.prices == r0.prices and r.volume_wh == r0.volume_wh


def test_keeper_refuses_an_order_limit_the_chain_cannot_carry():
    """Item 6 at intake: the engine sums exactly, but a trade's wh is 96 bits on chain; the keeper's
    per-order limit must stay below that (checked before it touches the chain)."""
    from keeper.service import Keeper

    with pytest.raises(ValueError, match="max_order_wh"):
        Keeper(None, None, None, "sqlite://", max_order_wh=2**96)


# --------------------------------------------------------------------------- the grid participant

GRID_ACCOUNT = "0x6"
TOKEN = "0x0000000000000000000000000000000000000007"


def _rows(rows, colours=True):
    """Stored-order stand-ins (what :meth:`MarketTerms.book` reads) for ``row`` tuples."""
    out = []
    for i, (side, maker, wh, price, colour, cp, seq) in enumerate(rows):
        out.append(SimpleNamespace(hash=f"{i:03d}", maker=maker, side=side, amount_wh=wh, limit_price=str(price),
                                   seq=seq, partially_fillable=True, payment_token=TOKEN,
                                   colour="0x" + (colour if colours else NO_COLOUR).hex(),
                                   counterparty=cp if cp != maker else Z, prefer=None))
    return out


def _terms(feed_in, retail, fee=0, intra=0, feeders=None):
    from gridcoop_sdk.grid import GridTerms, NetworkFee
    from keeper.settlement import MarketTerms

    fees = {TOKEN.lower(): NetworkFee(fee, intra)} if fee else {}
    return MarketTerms(GridTerms(GRID_ACCOUNT, TOKEN, feed_in, retail, Z), fees,
                       {k.lower(): v for k, v in (feeders or {}).items()})


@settings(max_examples=150, deadline=None)
@given(st.lists(row, max_size=10), st.integers(1, 30), st.integers(1, 30))
def test_the_grid_bounds_the_price_and_takes_what_neighbours_leave(rows, feed_in, spread):
    """With the grid in the book every property of a plain book holds (the grid is two more orders),
    the price lies in [feed-in, retail], every sell below feed-in is sold and every buy above retail
    that may take grid energy is served — for makers on one side of the book (a maker on both sides
    may be left with its own order across the price: it cannot trade with itself, and the uniform
    price cannot be at the grid's bid and its offer at once). The last two hold for books without
    colour or counterparty constraints: the price is chosen inside the equilibrium interval of the
    unconstrained curves, where constraints may cost volume that a price outside it would not."""
    retail = feed_in + spread
    terms = _terms(feed_in, retail)
    book = terms.book(_rows(rows))
    r = clear(book)
    check(book, r, terms)  # every constraint, grid included
    stored = _rows([(*x[:4], NO_COLOUR, Z, x[6]) for x in rows], colours=False)
    r = clear(terms.book(stored))
    if not r.trades:
        return
    assert feed_in <= r.price <= retail
    fills = r.fills()
    sides: dict[str, set] = {}
    for s in stored:
        sides.setdefault(s.maker, set()).add(s.side)
    for s in stored:
        if len(sides[s.maker]) > 1:
            continue
        lim, f = int(s.limit_price), fills.get(s.hash, 0)
        if s.side == "sell" and lim < feed_in:
            assert f == s.amount_wh  # strictly in the money against the grid's bid: never left unsold
        if s.side == "buy" and lim > retail:
            assert f == s.amount_wh  # the grid's offer serves it in full


@settings(max_examples=150, deadline=None)
@given(st.lists(row, max_size=10), st.integers(1, 30), st.integers(2, 30), st.integers(0, 5), st.data())
def test_network_fee_stays_inside_every_buyers_limit(rows, feed_in, spread, fee, data):
    """Buyers' limits cover price and fee (intra-feeder or not), grid trades at its tariff, and the
    money per order (fees included) passes the keeper's pre-send check exactly as the chain rounds."""
    retail = feed_in + spread
    fee = min(fee, spread - 1)
    intra = data.draw(st.integers(0, fee))
    feeders = {m: data.draw(st.sampled_from([b"", b"north", b"south"])).ljust(32, b"\0") for m in MAKERS}
    feeders = {m: f for m, f in feeders.items() if f.strip(b"\0")}
    terms = _terms(feed_in, retail, fee, intra, feeders)
    stored = _rows(rows, colours=False)
    by_hash = {s.hash: s for s in stored}
    r = clear(terms.book(stored))
    trades = [t._replace(price=terms.chain_price(t)) if t.sell_id == "grid:sell" else t for t in r.trades]
    rates = [terms.fee_rate(t.payment_token, t.seller, t.buyer) for t in trades]
    money = check_money(trades, by_hash, rates, terms)
    for t, rate in zip(trades, rates, strict=True):
        if t.sell_id == "grid:sell":
            assert rate == 0 and t.price >= retail
        elif t.buy_id == "grid:buy":
            assert rate == 0 and t.price <= feed_in
        else:
            same = feeders.get(t.seller) is not None and feeders.get(t.seller) == feeders.get(t.buyer)
            assert rate == (intra if same else fee)
        if t.buy_id in by_hash:
            assert t.price + rate <= int(by_hash[t.buy_id].limit_price)
    assert sum(money.paid.values()) == sum(money.received.values()) + sum(money.fees.values()) + money.dust
    assert money.dust >= 0


def test_issue_example_surplus_goes_to_the_grid_at_feed_in():
    stored = _rows([("sell", "0xA", 1000, 10, NO_COLOUR, Z, 0), ("sell", "0xB", 500, 25, NO_COLOUR, Z, 0),
                    ("buy", "0xC", 200, 30, NO_COLOUR, Z, 0)])
    r = clear(_terms(10, 40).book(stored))
    assert r.price == 10 and r.fills() == {"000": 1000, "002": 200, "grid:buy": 800}


def test_solar_buyer_is_not_served_by_the_grid():
    stored = _rows([("buy", "0xC", 200, 50, SOLAR, Z, 0), ("buy", "0xD", 100, 50, NO_COLOUR, Z, 0)])
    r = clear(_terms(10, 40).book(stored))
    assert r.fills() == {"001": 100, "grid:sell": 100}
