"""Clearing engine: a pure function from one interval's orders to trades and a price (no I/O).

Default rule: **uniform-price double auction** (pay-as-clear), priced inside the competitive
equilibrium (issue 18).

1. Volume and price. At a price p, supply S(p) is the Wh of sells with limit ≤ p (S⁻(p): < p) and
   demand D(p) the Wh of buys with limit ≥ p (D⁺(p): > p). The volume is V = max_p min(D, S). The
   **competitive equilibrium interval** is the set of prices with S⁻ ≤ V ≤ S and D⁺ ≤ V ≤ D: they
   clear V with every order strictly in the money filled and none out of the money. It is a closed
   interval [p_lo, p_hi] whose ends are limit prices; the price is its midpoint rounded up,
   ``(p_lo + p_hi + 1) // 2`` (integer base units per kWh; the half unit goes to the sellers).
   Sells 100 Wh @10 and 100 Wh @20 against a buy of 100 Wh @1000 clear at 15 (the old rule, the
   midpoint of the volume-maximising range, gave 505 and left the seller @20 in the money, unfilled).
2. Constraints. No self-trade (the chain refuses it), a buy's required colour, and a counterparty
   named by either side (exclusive: ``EnergyMarket._checkTrade`` refuses any other partner) are
   hard. The engine finds the **largest volume at the price under all of them**: the orders fall
   into groups of interchangeable orders (the open book, i.e. every order without a constraint, is
   one group; constrained orders are grouped by (maker if it matters, colour, counterparty)) and a
   maximum flow (Dinic, exact Python ints) runs over the groups, strictly-in-the-money Wh of both
   sides first, then at-the-money. When the constraints cost volume at the midpoint, every limit
   price inside the equilibrium interval is tried (nearest the midpoint first, at most 64) and the one clearing most
   is taken (ties: nearest the midpoint, then the higher).
   Ranked preferred partners (``BookOrder.prefer``, unsigned) are a preference, not a constraint:
   the flow opens preferred edges first, rank by rank, then every edge, so they never cost volume.
3. Makers on both sides (a battery household, an aggregator) stay in the open book: its trades are
   paired by merging the two priority queues, and a self-trade A→A is swapped with another trade
   X→Y into A→Y and X→A. That is possible iff A's filled sells + buys ≤ the volume; when not, A
   gets its own groups in the flow, which then finds the maximum (never less).
4. Rationing. Within a group, orders fill in priority order: price, then time (``seq``), then id.
5. Fill-or-kill orders that would be filled partially are removed and the interval is cleared again
   (lowest priority first, at most once per such order).

Option ``mode="pay_as_bid"``: same volume and fills, each trade priced at the buyer's limit.

Speed: the orders are read once per field into numpy arrays; sorting, the equilibrium and the
pairing are vectorised (O(n log n)); the flow runs over groups, not orders; trades are kept as
columns (:class:`TradeList`) and a :class:`Fill` is built when read. Sums are exact: int64 while the
book's total Wh is below 2^62, Python ints beyond. Energy is conserved exactly: every trade's Wh
leave one seller and reach one buyer. No trade moves zero money (wh ≥ 1 and price ≥ 1; a price
of 0 clears nothing). Money is rounded per order, as the contract does it (issue 16): an order's
value is ``Σ wh × price`` over its trades, a seller receives its floor / 1000 and a buyer pays its
ceiling / 1000 (:meth:`ClearingResult.split`, :func:`gridcoop_sdk.orders.split_money`), so a seller
never receives less than ``floor(sold × limit / 1000)``; the keeper checks this before sending
(:func:`keeper.settlement.check_money`).
"""

from __future__ import annotations

import gc
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import attrgetter
from typing import NamedTuple

import numpy as np

from gridcoop_sdk.orders import MoneySplit, split_money

UNIFORM = "uniform"
PAY_AS_BID = "pay_as_bid"
MODES = (UNIFORM, PAY_AS_BID)
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ZERO_COLOUR = b"\x00" * 32
_MAX_AMOUNT = 2**96  # the contract's packed trade holds wh in 96 bits; sums are exact (Python ints when int64 could wrap)


class ClearingError(ValueError):
    """The clearing input is malformed (the message names the order and field)."""


@dataclass(frozen=True)
class BookOrder:
    """What the clearing engine needs to know of an order."""

    id: str
    maker: str
    side: str  # "sell" | "buy"
    amount_wh: int
    limit_price: int
    seq: int = 0  # arrival order (time); lower is earlier
    partially_fillable: bool = True
    payment_token: str = ZERO_ADDRESS
    colour: bytes = ZERO_COLOUR
    counterparty: str = ZERO_ADDRESS
    # Ranked preferred partners (makers), best first: not signed and not checked on chain, so a
    # preference, not a constraint — matched first at the uniform price, the rest through the open book.
    prefer: tuple[str, ...] = ()

    @property
    def constrained(self) -> bool:
        return self.counterparty != ZERO_ADDRESS or (self.side == "buy" and self.colour != ZERO_COLOUR)


class Fill(NamedTuple):
    """One seller→buyer trade (a named tuple: a million of them are built per clearing)."""

    sell_id: str
    buy_id: str
    seller: str
    buyer: str
    wh: int
    price: int
    payment_token: str

    @property
    def money(self) -> int:
        """``floor(wh × price / 1000)``: this trade's value rounded down, for display only. The
        chain rounds per order, not per trade: what an order moves is in :meth:`ClearingResult.split`."""
        return self.wh * self.price // 1000


class TradeList(Sequence):
    """The trades of a clearing as columns (order positions, Wh, prices), a :class:`Fill` built
    when one is read: settlement reads one batch of at most ``max_batch`` trades, so a million-order
    interval does not build 600,000 objects it never uses. Behaves as a read-only list of Fills."""

    def __init__(self) -> None:
        self._parts: list[tuple] = []  # (orders, token, si, bi, wh, price | per-trade prices)
        self._ends: list[int] = []
        self._cache: list[Fill] | None = None

    def _add(self, book: list[BookOrder], token: str, si: np.ndarray, bi: np.ndarray, wh: np.ndarray,
             price) -> None:
        if len(wh):
            self._parts.append((book, token, si, bi, wh, price))
            self._ends.append((self._ends[-1] if self._ends else 0) + len(wh))
            self._cache = None

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    @property
    def volume_wh(self) -> int:
        return sum(int(p[4].sum()) for p in self._parts)

    def _build(self, part: tuple, lo: int, hi: int) -> list[Fill]:
        book, token, si, bi, wh, price = part
        sells = [book[i] for i in si[lo:hi].tolist()]
        buys = [book[i] for i in bi[lo:hi].tolist()]
        wh_l = [int(w) for w in wh[lo:hi].tolist()]
        n = hi - lo
        prices = repeat(price, n) if isinstance(price, int) else price[lo:hi]
        return list(map(tuple.__new__, repeat(Fill), zip(  # Fill(...) without its Python-level __new__
            map(_ID, sells), map(_ID, buys), map(_MAKER, sells), map(_MAKER, buys), wh_l, prices,
            repeat(token, n), strict=False)))

    def _all(self) -> list[Fill]:
        if self._cache is None:
            out: list[Fill] = []
            for part in self._parts:
                out += self._build(part, 0, len(part[4]))
            self._cache = out
        return self._cache

    def __getitem__(self, k):
        if self._cache is not None:
            return self._cache[k]
        if isinstance(k, slice):
            start, stop, step = k.indices(len(self))
            if step != 1:
                return self._all()[k]
            out: list[Fill] = []
            base = 0
            for part, end in zip(self._parts, self._ends, strict=True):
                lo, hi = max(start, base), min(stop, end)
                if lo < hi:
                    out += self._build(part, lo - base, hi - base)
                base = end
            return out
        n = len(self)
        if k < 0:
            k += n
        if not 0 <= k < n:
            raise IndexError("trade index out of range")
        j = bisect_right(self._ends, k)
        base = self._ends[j - 1] if j else 0
        return self._build(self._parts[j], k - base, k - base + 1)[0]

    def __iter__(self):
        return iter(self._all())

    def __eq__(self, other) -> bool:
        return list(self) == list(other) if isinstance(other, Sequence) else NotImplemented

    def __repr__(self) -> str:
        return f"TradeList({self._all()!r})"


@dataclass
class ClearingResult:
    trades: Sequence[Fill] = field(default_factory=list)
    prices: dict[str, int] = field(default_factory=dict)  # clearing price per payment token
    removed_fill_or_kill: list[str] = field(default_factory=list)

    @property
    def volume_wh(self) -> int:
        if isinstance(self.trades, TradeList):
            return self.trades.volume_wh
        return sum(t.wh for t in self.trades)

    def split(self) -> MoneySplit:
        """The money of these trades, per order and per trade, to the base unit as the chain moves
        it (sellers the floor, buyers the ceiling of their orders' values)."""
        return split_money((t.sell_id, t.buy_id, t.wh, t.price) for t in self.trades)

    @property
    def money(self) -> int:
        """What the buyers pay (the contract's ``IntervalSettled.volume``)."""
        return sum(self.split().paid.values())

    def fills(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.trades:
            out[t.sell_id] = out.get(t.sell_id, 0) + t.wh
            out[t.buy_id] = out.get(t.buy_id, 0) + t.wh
        return out

    @property
    def price(self) -> int | None:
        """The clearing price when the interval has a single payment token."""
        return next(iter(self.prices.values())) if len(self.prices) == 1 else None


# --------------------------------------------------------------------------- price rule


def _equilibrium(sr: np.ndarray, scum: np.ndarray, br_neg: np.ndarray, bcum: np.ndarray,
                 m: int) -> tuple[int, int, int]:
    """``(volume, lo, hi)`` over price ranks ``0..m-1``: the largest volume any price clears and the
    ranks bounding the competitive equilibrium interval (``volume == 0``: nothing crosses).

    ``sr`` are the sells' price ranks ascending with ``scum`` their cumulative Wh (leading 0);
    ``br_neg`` the buys' ranks negated, ascending (so bids high→low), with ``bcum``. At rank r:
    supply S(r) = Σ sells ≤ r, S⁻(r) = Σ sells < r, demand D(r) = Σ buys ≥ r, D⁺(r) = Σ buys > r.
    The volume is V = max min(D, S); r is an equilibrium price iff S⁻ ≤ V ≤ S and D⁺ ≤ V ≤ D — it
    clears V with every order strictly in the money filled and none out of the money. Those prices
    form a closed interval whose ends are limit prices."""
    r = np.arange(m, dtype=np.int64)
    s_le = scum[np.searchsorted(sr, r, "right")]
    s_lt = scum[np.searchsorted(sr, r, "left")]
    d_ge = bcum[np.searchsorted(br_neg, -r, "right")]
    d_gt = bcum[np.searchsorted(br_neg, -r, "left")]
    vol = np.minimum(d_ge, s_le)
    volume = vol.max() if m else 0
    if volume <= 0:
        return 0, 0, 0
    ok = np.flatnonzero((s_lt <= volume) & (s_le >= volume) & (d_gt <= volume) & (d_ge >= volume))
    if ok.size == 0:  # cannot happen (step functions always cross); the volume range is the fallback
        ok = np.flatnonzero(vol == volume)
    return int(volume), int(ok[0]), int(ok[-1])


def _midpoint(a: int, b: int) -> int:
    """The price inside ``[a, b]``: its midpoint rounded up (half a base unit towards the sellers)."""
    return (a + b + 1) // 2


# --------------------------------------------------------------------------- array kernel


def clear_arrays(
    is_buy: np.ndarray,
    limit: np.ndarray,
    amount: np.ndarray,
    seq: np.ndarray | None = None,
    key: np.ndarray | None = None,
    mode: str = UNIFORM,
    values: Sequence[int] | None = None,
) -> tuple[int | None, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised core on plain arrays (no preferences, no fill-or-kill, no self-trade check).

    Returns ``(price, sell_idx, buy_idx, wh, trade_price)``; indices refer to the input arrays.
    ``key`` breaks ties after ``seq`` (default: the index). With ``values`` (sorted distinct
    prices), ``limit`` holds ranks into it — how prices beyond int64 (18-decimal tokens) are
    cleared exactly: only the order of prices matters, and the midpoint is taken in Python ints.
    The price is the midpoint (rounded up) of the competitive equilibrium interval, as in :func:`clear`.
    """
    if mode not in MODES:
        raise ClearingError(f"mode must be one of {MODES}, got {mode!r}")
    n = len(limit)
    is_buy = np.asarray(is_buy, dtype=bool)
    limit = np.asarray(limit, dtype=np.int64)
    amount = np.asarray(amount, dtype=np.int64)
    seq = np.zeros(n, dtype=np.int64) if seq is None else np.asarray(seq, dtype=np.int64)
    key = np.arange(n, dtype=np.int64) if key is None else np.asarray(key, dtype=np.int64)
    empty = np.zeros(0, dtype=np.int64)
    live = amount > 0
    if values is None:
        vals, rank = np.unique(limit, return_inverse=True)
        values = vals.tolist()
        rank = rank.astype(np.int64)
    else:
        rank = limit
    s = np.flatnonzero(~is_buy & live)
    b = np.flatnonzero(is_buy & live)
    if b.size == 0 or s.size == 0:
        return None, empty, empty, empty, empty
    s = s[np.lexsort((key[s], seq[s], rank[s]))]
    b = b[np.lexsort((key[b], seq[b], -rank[b]))]
    scum = np.concatenate(([0], np.cumsum(amount[s])))
    bcum = np.concatenate(([0], np.cumsum(amount[b])))
    volume, lo, hi = _equilibrium(rank[s], scum, -rank[b], bcum, len(values))
    if volume <= 0:
        return None, empty, empty, empty, empty
    price = _midpoint(int(values[lo]), int(values[hi]))
    es = s[rank[s] <= bisect_right(values, price) - 1]
    eb = b[rank[b] >= bisect_left(values, price)]
    si, bi, wh = _merge(es, _ration(amount[es], volume), eb, _ration(amount[eb], volume))
    if mode == UNIFORM:
        tp = np.full(wh.shape, price, dtype=np.int64 if price < 2**63 else object)
    else:
        tp = np.array([int(values[r]) for r in rank[bi].tolist()], dtype=object)
    return price, si, bi, wh, tp


def _ration(amounts: np.ndarray, volume: int) -> np.ndarray:
    """Fill ``amounts`` in their order up to ``volume`` in total."""
    cum = np.cumsum(amounts)
    return np.minimum(np.maximum(volume - (cum - amounts), 0), amounts)


def _merge(si: np.ndarray, sf: np.ndarray, bi: np.ndarray, bf: np.ndarray):
    """Pair two queues of fills with equal totals: ``(sell_idx, buy_idx, wh)``, one segment per
    (sell, buy) pair that the two cumulative queues overlap on (at most len(si) + len(bi) − 1)."""
    ks, kb = sf > 0, bf > 0
    si, sf, bi, bf = si[ks], sf[ks], bi[kb], bf[kb]
    if si.size == 0 or bi.size == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e, e
    sc, bc = np.cumsum(sf), np.cumsum(bf)
    cuts = np.union1d(sc, bc)
    starts = np.concatenate((np.zeros(1, dtype=cuts.dtype), cuts[:-1]))
    return si[np.searchsorted(sc, starts, "right")], bi[np.searchsorted(bc, starts, "right")], cuts - starts


# --------------------------------------------------------------------------- max-flow


class _Flow:
    """Dinic's maximum flow on a small graph with Python-int capacities (exact)."""

    def __init__(self, n: int) -> None:
        self.g: list[list[list]] = [[] for _ in range(n)]  # edge: [to, cap, rev_index]

    def add(self, u: int, v: int, cap) -> list:
        e = [v, cap, len(self.g[v])]
        self.g[u].append(e)
        self.g[v].append([u, 0, len(self.g[u]) - 1])
        return e

    def run(self, s: int, t: int) -> int:
        total = 0
        g = self.g
        while True:
            level = [-1] * len(g)
            level[s] = 0
            q = [s]
            for u in q:
                for v, cap, _ in g[u]:
                    if cap > 0 and level[v] < 0:
                        level[v] = level[u] + 1
                        q.append(v)
            if level[t] < 0:
                return total
            it = [0] * len(g)

            def dfs(u: int, f, it=it, level=level):
                if u == t:
                    return f
                while it[u] < len(g[u]):
                    e = g[u][it[u]]
                    v, cap, rev = e
                    if cap > 0 and level[v] == level[u] + 1:
                        d = dfs(v, min(f, cap))
                        if d > 0:
                            e[1] -= d
                            g[v][rev][1] += d
                            return d
                    it[u] += 1
                return 0

            while True:
                f = dfs(s, float("inf"))
                if f <= 0:
                    break
                total += f


# --------------------------------------------------------------------------- order-level API


def clear(orders: Iterable[BookOrder], mode: str = UNIFORM) -> ClearingResult:
    """Clear one interval's orders (all payment tokens; each token is its own book)."""
    if mode not in MODES:
        raise ClearingError(f"mode must be one of {MODES}, got {mode!r}")
    book = orders if isinstance(orders, list) else list(orders)
    enabled = gc.isenabled()
    gc.disable()  # the engine allocates ~one object per trade and no cycles: skip the collector's passes
    try:
        return _clear(book, mode)
    finally:
        if enabled:
            gc.enable()


def _clear(book: list[BookOrder], mode: str) -> ClearingResult:
    cols = _columns(book)
    _validate(book, cols)
    result = ClearingResult(trades=TradeList())
    tokens = set(map(attrgetter("payment_token"), book))
    for token in sorted(tokens):
        active = book if len(tokens) == 1 else [o for o in book if o.payment_token == token]
        while True:
            eng = _Book(active, cols if active is book else _columns(active))
            price, cleared = eng.clear(mode)
            broken = []
            if price is not None and False in set(map(attrgetter("partially_fillable"), active)):
                si, bi, wh, _ = cleared
                fills: dict[int, int] = {}
                for i, w in zip(np.concatenate((si, bi)).tolist(), np.concatenate((wh, wh)).tolist(), strict=True):
                    fills[i] = fills.get(i, 0) + int(w)
                broken = [o for i, o in enumerate(active)
                          if not o.partially_fillable and 0 < fills.get(i, 0) < o.amount_wh]
            if not broken:
                break
            # Remove the lowest-priority broken fill-or-kill order and clear again.
            victim = max(broken, key=_priority_key)
            result.removed_fill_or_kill.append(victim.id)
            active = [o for o in active if o.id != victim.id]
        if price is not None and len(cleared[2]):
            result.prices[token] = price
            si, bi, wh, prices = cleared
            result.trades._add(active, token, si, bi, wh, prices)
    return result


def _priority_key(o: BookOrder) -> tuple:
    p = o.limit_price if o.side == "sell" else -o.limit_price
    return (p, o.seq, o.id)


_FIELDS = ("side", "amount_wh", "limit_price", "seq")  # id and maker are read where needed
_ID, _MAKER = attrgetter("id"), attrgetter("maker")


def _columns(book: Sequence[BookOrder]) -> dict[str, list]:
    """The orders' fields as lists (one C-level pass per field); counterparty and colour only
    when some order sets them."""
    cols = {f: list(map(attrgetter(f), book)) for f in _FIELDS}
    for f, zero in (("counterparty", ZERO_ADDRESS), ("colour", ZERO_COLOUR), ("prefer", ())):
        cols[f] = None if set(map(attrgetter(f), book)) <= {zero} else list(map(attrgetter(f), book))
    return cols


def _validate(book: Sequence[BookOrder], cols: dict[str, list] | None = None) -> None:
    """Refuse malformed orders, naming the first culprit (C-level passes when all is well)."""
    cols = _columns(book) if cols is None else cols
    amounts, limits = cols["amount_wh"], cols["limit_price"]
    if len(set(map(_ID, book))) != len(book):
        seen: set[str] = set()
        for i in map(_ID, book):
            if i in seen:
                raise ClearingError(f"order {i}: duplicate id")
            seen.add(i)
    sides = cols["side"]
    if (sides.count("buy") + sides.count("sell") == len(sides) and (not book or (
            min(amounts) > 0 and max(amounts) < _MAX_AMOUNT and min(limits) >= 0 and max(limits) < 2**256))):
        return
    for o in book:
        if o.side not in ("sell", "buy"):
            raise ClearingError(f"order {o.id}: side must be 'sell' or 'buy', got {o.side!r}")
        if not (0 < o.amount_wh < _MAX_AMOUNT):
            raise ClearingError(f"order {o.id}: amount_wh must be in 1..{_MAX_AMOUNT - 1}, got {o.amount_wh}")
        if not (0 <= o.limit_price < 2**256):
            raise ClearingError(f"order {o.id}: limit_price out of range: {o.limit_price}")


_MAX_PRICE_CANDIDATES = 64  # limit prices tried inside the equilibrium interval when constraints bind
_FREE = (None, None, None, None)  # group key: (maker if it matters, colour, counterparty, preferences)


class _Book:
    """One payment token's orders as arrays, in priority order per side."""

    def __init__(self, book: list[BookOrder], cols: dict[str, list]) -> None:
        self.book = book
        n = self.n = len(book)
        # sides are validated to be "buy" or "sell": their lengths (3 or 4) tell them apart in C
        self.is_buy = np.frombuffer(bytes(map(len, cols["side"])), dtype=np.uint8) == 3
        amounts = cols["amount_wh"]
        # Exact sums: int64 while the book's total fits with room to spare, Python ints beyond.
        self.exact = sum(amounts) < 2**62
        self.amount = (np.fromiter(amounts, dtype=np.int64, count=n) if self.exact
                       else np.array(amounts, dtype=object))
        limits = cols["limit_price"]
        self.rank, self.values = _ranks(limits)
        seq = np.fromiter(cols["seq"], dtype=np.int64, count=n)
        s = np.flatnonzero(~self.is_buy)
        b = np.flatnonzero(self.is_buy)
        self.s = _priority(s, self.rank[s], seq[s], book)
        self.b = _priority(b, -self.rank[b], seq[b], book)
        self.sr = self.rank[self.s]
        self.br_neg = -self.rank[self.b]
        zero = np.zeros(1, dtype=self.amount.dtype)
        self.scum = np.concatenate((zero, np.cumsum(self.amount[self.s])))
        self.bcum = np.concatenate((zero, np.cumsum(self.amount[self.b])))
        # Constraints: colour (buy: required), counterparty (either side), makers on both sides.
        self._makers: list[str] | None = None
        buy_l = self.is_buy.tolist()
        cps, colours = cols["counterparty"], cols["colour"]
        named = set(cps) - {ZERO_ADDRESS} if cps is not None else set()
        makers = self.makers if (cps is not None or cols["prefer"] is not None) else None
        required = set(compress(colours, buy_l)) - {ZERO_COLOUR} if colours is not None else set()
        special = np.zeros(n, dtype=bool)
        if named:
            special |= np.array([c != ZERO_ADDRESS or m in named for c, m in zip(cps, makers, strict=True)], dtype=bool)
        if required:
            special |= np.array([c in required for c in colours], dtype=bool)  # sells offering, buys requiring
        prefs = cols["prefer"]
        self.preferred: set[str] = set()
        if prefs is not None:  # orders with preferences, and their preferred makers' orders, get own nodes
            for p in set(prefs):
                self.preferred.update(p)
            pf = self.preferred
            special |= np.array([bool(p) or m in pf for p, m in zip(prefs, makers, strict=True)], dtype=bool)
        self.named, self.required, self.special = named, required, special
        self.flagged: set[str] = set(named) | self.preferred
        # makers as int64 hashes: self-trades are found by comparing them (and confirmed on the strings)
        self.h = np.fromiter(map(hash, map(_MAKER, book)), dtype=np.int64, count=n)
        # Makers kept apart in the flow (their own nodes): those named as a counterparty, and makers
        # on both sides with a constrained order; more join when swaps cannot undo their self-trades.
        if special.any():
            sp = np.flatnonzero(special)
            on_sells = np.isin(self.h[sp], self.h[~self.is_buy])
            on_buys = np.isin(self.h[sp], self.h[self.is_buy])
            two = np.flatnonzero(np.where(self.is_buy[sp], on_sells, on_buys)).tolist()
            self.flagged |= {book[sp[k]].maker for k in two}
        self._flag_cache: tuple[int, np.ndarray] | None = None

    @property
    def makers(self) -> list[str]:
        """Every order's maker (read from the orders the first time it is needed)."""
        if self._makers is None:
            self._makers = list(map(_MAKER, self.book))
        return self._makers

    def _flag_mask(self) -> np.ndarray:
        if self._flag_cache is None or self._flag_cache[0] != len(self.flagged):
            fl = self.flagged
            self._flag_cache = (len(fl), np.array([m in fl for m in self.makers], dtype=bool))
        return self._flag_cache[1]

    # ------------------------------------------------------------------ per price
    def clear(self, mode: str) -> tuple[int | None, tuple | None]:
        """``(price, (sell_idx, buy_idx, wh, price or per-trade prices))`` or ``(None, None)``."""
        if self.s.size == 0 or self.b.size == 0:
            return None, None
        volume, lo, hi = _equilibrium(self.sr, self.scum, self.br_neg, self.bcum, len(self.values))
        if volume <= 0:
            return None, None
        mid = _midpoint(int(self.values[lo]), int(self.values[hi]))
        if mid <= 0:
            return None, None  # a price of 0 would move no money (limits of 0 cannot be signed through the keeper)
        best = (self._at(mid), mid)
        if best[0][0] < volume:  # constraints bind: try the limit prices inside the interval
            cands = sorted(range(lo, hi + 1), key=lambda r: (abs(2 * int(self.values[r]) - 2 * mid), -r))
            for r in cands[:_MAX_PRICE_CANDIDATES]:
                p = int(self.values[r])
                if p <= 0 or p == mid:
                    continue
                got = self._at(p)
                if got[0] > best[0][0]:
                    best = (got, p)
                    if got[0] == volume:
                        break
        (vol, si, bi, wh), price = best
        if vol <= 0:
            return None, None
        return price, (si, bi, wh, self._prices(bi, price, mode))

    def _prices(self, bi: np.ndarray, price: int, mode: str):
        """The trades' price: the uniform price, or (pay-as-bid) each buyer's limit."""
        return price if mode == UNIFORM else [self.values[r] for r in self.rank[bi].tolist()]

    def _at(self, price: int):
        """``(volume, sell_idx, buy_idx, wh)``: the largest volume at ``price`` under every
        constraint, orders filled in priority order within each group of interchangeable orders."""
        ks = bisect_right(self.values, price)  # sells with rank < ks are eligible
        kb = bisect_left(self.values, price)  # buys with rank >= kb
        es = self.s[: int(np.searchsorted(self.sr, ks - 1, "right"))]
        eb = self.b[: int(np.searchsorted(self.br_neg, -kb, "right"))]
        # at-the-money: rank equal to the price's own rank (only when the price is a limit price)
        at_s = ks - 1 if ks and self.values[ks - 1] == price else None
        at_b = kb if kb < len(self.values) and self.values[kb] == price else None
        for _ in range(self.n + 2):  # each round flags at least one more maker
            out, bad = self._flow(es, eb, at_s, at_b)
            if not bad:
                return out
            self.flagged |= bad  # makers whose self-trades no swap can undo: own nodes, flow again
        return self._flow(es, eb, at_s, at_b)[0]

    def _key(self, i: int) -> tuple:
        o = self.book[i]
        m = o.maker if o.maker in self.flagged else None
        cp = o.counterparty if o.counterparty != ZERO_ADDRESS else None
        if o.side == "buy":
            col = o.colour if o.colour != ZERO_COLOUR else None
        else:
            col = o.colour if o.colour in self.required else None
        return (m, col, cp, o.prefer or None)

    def _flow(self, es: np.ndarray, eb: np.ndarray, at_s, at_b):
        amount = self.amount
        spec_s = self.special[es]
        spec_b = self.special[eb]
        if self.flagged:
            fm = self._flag_mask()
            spec_s = spec_s | fm[es]
            spec_b = spec_b | fm[eb]
        # groups of interchangeable orders, each a queue in priority order; _FREE is the open book
        gs: dict[tuple, list[int]] = {}
        gb: dict[tuple, list[int]] = {}
        for i in es[spec_s].tolist():
            gs.setdefault(self._key(i), []).append(i)
        for i in eb[spec_b].tolist():
            gb.setdefault(self._key(i), []).append(i)
        fs, fb = es[~spec_s], eb[~spec_b]
        queues_s = [(_FREE, fs)] if fs.size else []
        queues_b = [(_FREE, fb)] if fb.size else []
        queues_s += [(k, np.array(v, dtype=np.int64)) for k, v in gs.items()]
        queues_b += [(k, np.array(v, dtype=np.int64)) for k, v in gb.items()]
        e = np.zeros(0, dtype=np.int64)
        if not queues_s or not queues_b:
            return (0, e, e, e), set()
        rank = self.rank
        # maximum flow over the groups: strictly-in-the-money Wh first, then at-the-money
        ns, nb = len(queues_s), len(queues_b)
        src, snk = ns + nb, ns + nb + 1

        def caps(q, at):
            tot = int(amount[q].sum())
            strict = tot if at is None else int(amount[q[rank[q] != at]].sum())
            return strict, tot

        cs = [caps(q, at_s) for _, q in queues_s]
        cb = [caps(q, at_b) for _, q in queues_b]
        with_prefs = bool(self.preferred)
        compat = [(i, j, _pref_rank(ks, kb) if with_prefs else None)
                  for i, (ks, _) in enumerate(queues_s) for j, (kb, _) in enumerate(queues_b) if _compatible(ks, kb)]

        def solve(first_full: str):
            """Strict Wh on both sides, then the at-the-money Wh of one side (``first_full``), then
            of both; within each round preferred edges by rank first, then every edge (later rounds
            only re-route flow where that raises the volume). Source and sink edges never lose flow."""
            f = _Flow(ns + nb + 2)
            es_src = [f.add(src, i, c[0]) for i, c in enumerate(cs)]
            eb_snk = [f.add(ns + j, snk, c[0]) for j, c in enumerate(cb)]
            pair_edges = []
            levels: dict[int, list] = {}  # preference rank -> edges (_ANY: not preferred)
            for i, j, r in compat:
                ed = f.add(i, ns + j, 0 if with_prefs else float("inf"))
                pair_edges.append((i, j, ed))
                levels.setdefault(_ANY if r is None else r, []).append(ed)
            second = "buys" if first_full == "sells" else "sells"
            for rnd in (None, first_full, second):
                if rnd == "sells":
                    for ed, c in zip(es_src, cs, strict=True):
                        ed[1] += c[1] - c[0]
                elif rnd == "buys":
                    for ed, c in zip(eb_snk, cb, strict=True):
                        ed[1] += c[1] - c[0]
                for lvl in sorted(levels):
                    for ed in levels[lvl]:
                        if ed[1] == 0 and not f.g[ed[0]][ed[2]][1]:  # closed and unused: open it
                            ed[1] = float("inf")
                    f.run(src, snk)
            flow_s = [c[1] - ed[1] for ed, c in zip(es_src, cs, strict=True)]
            flow_b = [c[1] - ed[1] for ed, c in zip(eb_snk, cb, strict=True)]
            strict = (sum(min(x, c[0]) for x, c in zip(flow_s, cs, strict=True))
                      + sum(min(x, c[0]) for x, c in zip(flow_b, cb, strict=True)))
            return strict, f, pair_edges, flow_s, flow_b

        # the order that fills more strictly-in-the-money Wh (both only when both sides have some at the money)
        tries = [solve("sells")]
        if any(c[0] < c[1] for c in cs) and any(c[0] < c[1] for c in cb):
            tries.append(solve("buys"))
        _, f, pair_edges, flow_s, flow_b = max(tries, key=lambda t: t[0])
        # fills per group in priority order, then each group edge takes its slice of both queues
        fill_s = [_ration(amount[q], fl) for (_, q), fl in zip(queues_s, flow_s, strict=True)]
        fill_b = [_ration(amount[q], fl) for (_, q), fl in zip(queues_b, flow_b, strict=True)]
        pos_s, pos_b = [0] * ns, [0] * nb
        out_s, out_b, out_w = [], [], []
        bad: set[str] = set()
        # the open book's own edge first (its slices start at the queues' heads)
        pair_edges.sort(key=lambda x: (queues_s[x[0]][0] != _FREE or queues_b[x[1]][0] != _FREE))
        for i, j, ed in pair_edges:
            used = f.g[ns + j][ed[2]][1]  # reverse edge capacity = flow on i→j
            if used <= 0:
                continue
            a_s, a_f = _slice(queues_s[i][1], fill_s[i], pos_s[i], used)
            b_s, b_f = _slice(queues_b[j][1], fill_b[j], pos_b[j], used)
            pos_s[i] += used
            pos_b[j] += used
            si, bi, wh = _merge(a_s, a_f, b_s, b_f)
            if queues_s[i][0] == _FREE and queues_b[j][0] == _FREE:
                si, bi, wh, bad_here = self._unself(si, bi, wh)
                bad |= bad_here
            out_s.append(si)
            out_b.append(bi)
            out_w.append(wh)
        if bad:
            return None, bad
        if not out_s:
            return (0, e, e, e), set()
        si, bi, wh = np.concatenate(out_s), np.concatenate(out_b), np.concatenate(out_w)
        return (int(sum(flow_s)), si, bi, wh), set()

    def _unself(self, si, bi, wh):
        """Swap self-trades (A→A) of the open book with other segments (X→Y, neither A) into A→Y and
        X→A. Possible for maker A iff A's sells + buys in these segments ≤ their volume (then the
        segments clean of A carry at least A's self-traded Wh, and a swap never creates another
        self-trade); a maker for whom it is not comes back in ``bad`` (it then gets its own flow nodes)."""
        cs, cb = self.h[si], self.h[bi]
        selfm = cs == cb
        if not selfm.any():
            return si, bi, wh, set()
        book = self.book
        first: dict[int, str] = {}
        for k in np.flatnonzero(selfm).tolist():
            seller = book[si[k]].maker
            if seller != book[bi[k]].maker:  # equal hashes of different makers: not a self-trade
                selfm[k] = False
            else:
                first.setdefault(int(cs[k]), seller)
        if not selfm.any():
            return si, bi, wh, set()
        total = int(wh.sum())
        selfs = np.flatnonzero(selfm).tolist()
        load: dict[int, int] = {}
        for c in set(cs[selfm].tolist()):
            load[c] = int(wh[cs == c].sum()) + int(wh[cb == c].sum()) if len(load) < 64 else None
        if any(v is None for v in load.values()):  # many makers: one pass in Python
            load = dict.fromkeys(load, 0)
            for a_, b_, w in zip(cs.tolist(), cb.tolist(), wh.tolist(), strict=True):
                if a_ in load:
                    load[a_] += w
                if b_ in load:
                    load[b_] += w
        bad = {first[c] for c, v in load.items() if v > total}
        if bad:
            return si, bi, wh, bad
        W = wh.copy()
        # trades made by swaps: [sell, buy, wh, seller hash, buyer hash]; candidates too (a maker's
        # Wh clean of it is invariant under swaps and at least its self-traded Wh: the pool of old
        # and new trades never runs dry while the load condition holds)
        made: list[list[int]] = []
        n = len(W)
        ptr = 0
        for k in selfs:
            a = int(cs[k])
            w = int(W[k])
            W[k] = 0
            j = ptr
            q = 0
            while w > 0:
                if j < n:
                    if W[j] > 0 and cs[j] != a and cb[j] != a:  # another maker's self-trade is fine too
                        take = min(w, int(W[j]))
                        W[j] -= take
                        w -= take
                        made.append([int(si[k]), int(bi[j]), take, a, int(cb[j])])
                        made.append([int(si[j]), int(bi[k]), take, int(cs[j]), a])
                    j += 1
                elif q < len(made):
                    m = made[q]
                    if m[2] > 0 and m[3] != a and m[4] != a:
                        take = min(w, m[2])
                        m[2] -= take
                        w -= take
                        made.append([int(si[k]), m[1], take, a, m[4]])
                        made.append([m[0], int(bi[k]), take, m[3], a])
                    q += 1
                else:  # cannot happen while the load condition holds
                    return si, bi, wh, {first[a]}
            while ptr < n and W[ptr] == 0:
                ptr += 1
        keep = W > 0
        made = [m for m in made if m[2] > 0]
        return (np.concatenate((si[keep], np.array([m[0] for m in made], dtype=np.int64))),
                np.concatenate((bi[keep], np.array([m[1] for m in made], dtype=np.int64))),
                np.concatenate((W[keep], np.array([m[2] for m in made], dtype=W.dtype))), set())


def _slice(q: np.ndarray, fill: np.ndarray, pos, n):
    """The part ``[pos, pos + n)`` of a queue's cumulative fills: ``(indices, amounts)``."""
    cum = np.cumsum(fill)
    start = cum - fill
    lo = np.maximum(start, pos)
    hi = np.minimum(cum, pos + n)
    take = hi - lo
    k = take > 0
    return q[k], take[k]


def _ranks(limits: list[int]) -> tuple[np.ndarray, list[int]]:
    """Each price's rank among the distinct prices, and those prices (sorted Python ints)."""
    try:
        arr = np.array(limits, dtype=np.int64)
    except OverflowError:  # prices beyond int64: ranks into the sorted distinct Python ints
        values = sorted(set(limits))
        pos = {v: i for i, v in enumerate(values)}
        return np.array([pos[p] for p in limits], dtype=np.int64), values
    if arr.size == 0:
        return arr, []
    lo, hi = int(arr.min()), int(arr.max())
    if hi - lo <= 4 * arr.size + 1024:  # a table over the price range: O(n), no sort
        present = np.zeros(hi - lo + 1, dtype=np.int64)
        present[arr - lo] = 1
        table = np.cumsum(present) - 1
        return table[arr - lo], (np.flatnonzero(present) + lo).tolist()
    vals, rank = np.unique(arr, return_inverse=True)
    return rank.astype(np.int64), vals.tolist()


def _priority(idx: np.ndarray, price_key: np.ndarray, seq: np.ndarray, book: list[BookOrder]) -> np.ndarray:
    """``idx`` sorted by price key, then time (seq), then order id (only where the first two tie)."""
    order = np.lexsort((seq, price_key))
    out, pk, sq = idx[order], price_key[order], seq[order]
    tie = np.flatnonzero((pk[1:] == pk[:-1]) & (sq[1:] == sq[:-1]))
    if tie.size:
        key = np.zeros(len(idx), dtype=np.int64)
        members = np.union1d(tie, tie + 1)
        ranked = sorted(members.tolist(), key=lambda k: book[out[k]].id)
        key[ranked] = np.arange(len(ranked))
        out = out[np.lexsort((key, sq, pk))]
    return out


_ANY = 1 << 30  # preference level of edges that no order prefers


def _pref_rank(sk: tuple, bk: tuple) -> int | None:
    """The best rank either side gives the other (0 = first choice), or None."""
    ranks = []
    if bk[3] and sk[0] is not None and sk[0] in bk[3]:
        ranks.append(bk[3].index(sk[0]))
    if sk[3] and bk[0] is not None and bk[0] in sk[3]:
        ranks.append(sk[3].index(bk[0]))
    return min(ranks) if ranks else None


def _compatible(sk: tuple, bk: tuple) -> bool:
    sm, scol, scp, _ = sk
    bm, bcol, bcp, _ = bk
    if sm is not None and sm == bm:
        return False  # no self-trade
    if bcol is not None and scol != bcol:
        return False  # the buyer's required colour
    if bcp is not None and sm != bcp:
        return False  # the buyer's counterparty (exclusive: the chain refuses anyone else)
    return not (scp is not None and bm != scp)
