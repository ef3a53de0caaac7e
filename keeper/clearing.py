"""Clearing engine: a pure function from one interval's orders to trades and a price (no I/O).

Default rule: **uniform-price double auction** (pay-as-clear).

1. Price formation. For every candidate price *p* (each distinct limit price), demand D(p) is
   the Wh of buy orders with limit ≥ p and supply S(p) the Wh of sell orders with limit ≤ p.
   Traded volume V = max_p min(D(p), S(p)) — the maximal volume any single price can clear. The
   prices achieving V form a range [p_lo, p_hi]; the clearing price is its midpoint
   ``(p_lo + p_hi) // 2`` (an integer in payment-token base units per kWh).
2. Rationing. Buy orders with limit ≥ price are filled high→low, sell orders with limit ≤ price
   low→high, ties by price, then time (``seq``), then order id, each side up to V.
3. Pairing. The two rationed queues are merged so that every Wh has one seller and one buyer
   (seller→buyer pairs, as the chain needs them).

Option ``mode="pay_as_bid"``: same volume and rationing, but each trade is priced at the buyer's
limit (the seller gets it too; it is ≥ the seller's limit because the buyer's limit ≥ price).

Preferences: a buy order may require a source colour, and either side may name a counterparty.
Such orders are matched first, greedily in priority order, against the eligible orders they
accept; the rest is cleared by the vectorised merge. Self-trades (same maker on both sides) are
never produced. Fill-or-kill orders that would be filled partially are removed and the interval is
cleared again (at most once per such order).

Complexity: O(n log n) — sorts plus ``searchsorted``/``cumsum`` in numpy; no loops over price
levels. Energy is conserved exactly: every trade's Wh leave one seller and reach one buyer. Money
is rounded per order, as the contract does it (issue 16): an order's value is ``Σ wh × price``
over its trades, a seller receives its floor / 1000 and a buyer pays its ceiling / 1000
(:meth:`ClearingResult.split`, :func:`gridcoop_sdk.orders.split_money`); what the buyers pay is
what the sellers receive plus the rounding dust, under one base unit per order, which the market
keeps for the DAO.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from gridcoop_sdk.orders import MoneySplit, split_money

UNIFORM = "uniform"
PAY_AS_BID = "pay_as_bid"
MODES = (UNIFORM, PAY_AS_BID)
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ZERO_COLOUR = b"\x00" * 32
_MAX_AMOUNT = 2**53  # keep int64 cumulative sums exact for up to ~10^6 orders


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

    @property
    def constrained(self) -> bool:
        return self.counterparty != ZERO_ADDRESS or (self.side == "buy" and self.colour != ZERO_COLOUR)


@dataclass(frozen=True)
class Fill:
    """One seller→buyer trade."""

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


@dataclass
class ClearingResult:
    trades: list[Fill] = field(default_factory=list)
    prices: dict[str, int] = field(default_factory=dict)  # clearing price per payment token
    removed_fill_or_kill: list[str] = field(default_factory=list)

    @property
    def volume_wh(self) -> int:
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
    b = np.flatnonzero(is_buy & (amount > 0))
    s = np.flatnonzero(~is_buy & (amount > 0))
    if b.size == 0 or s.size == 0:
        return None, empty, empty, empty, empty
    bl, sl = limit[b], limit[s]
    ob = np.argsort(bl, kind="stable")
    os_ = np.argsort(sl, kind="stable")
    bl_s, sl_s = bl[ob], sl[os_]
    bcum = np.concatenate(([0], np.cumsum(amount[b][ob])))
    scum = np.concatenate(([0], np.cumsum(amount[s][os_])))
    cand = np.unique(np.concatenate((bl, sl)))
    demand = bcum[-1] - bcum[np.searchsorted(bl_s, cand, "left")]
    supply = scum[np.searchsorted(sl_s, cand, "right")]
    vol = np.minimum(demand, supply)
    volume = int(vol.max())
    if volume <= 0:
        return None, empty, empty, empty, empty
    opt = np.flatnonzero(vol == volume)
    lo, hi = int(cand[opt[0]]), int(cand[opt[-1]])
    if values is None:
        price = (lo + hi) // 2
        buy_from, sell_to = price, price
    else:
        price = (int(values[lo]) + int(values[hi])) // 2
        buy_from = bisect_left(values, price)  # ranks whose value >= price
        sell_to = bisect_right(values, price) - 1  # ranks whose value <= price

    eb = b[limit[b] >= buy_from]
    es = s[limit[s] <= sell_to]
    eb = eb[np.lexsort((key[eb], seq[eb], -limit[eb]))]
    es = es[np.lexsort((key[es], seq[es], limit[es]))]
    bfill = _ration(amount[eb], volume)
    sfill = _ration(amount[es], volume)
    eb, bfill = eb[bfill > 0], bfill[bfill > 0]
    es, sfill = es[sfill > 0], sfill[sfill > 0]
    bc, sc = np.cumsum(bfill), np.cumsum(sfill)
    cuts = np.union1d(bc, sc)
    starts = np.concatenate(([0], cuts[:-1]))
    bi = eb[np.searchsorted(bc, starts, "right")]
    si = es[np.searchsorted(sc, starts, "right")]
    wh = cuts - starts
    if values is None:
        tp = np.full(wh.shape, price, dtype=np.int64) if mode == UNIFORM else limit[bi]
    else:
        tp = np.array([price if mode == UNIFORM else int(values[r]) for r in limit[bi].tolist()], dtype=object)
    return price, si, bi, wh, tp


def _ration(amounts: np.ndarray, volume: int) -> np.ndarray:
    cum = np.cumsum(amounts)
    return np.clip(volume - (cum - amounts), 0, amounts)


# --------------------------------------------------------------------------- order-level API


def clear(orders: Iterable[BookOrder], mode: str = UNIFORM) -> ClearingResult:
    """Clear one interval's orders (all payment tokens; each token is its own book)."""
    if mode not in MODES:
        raise ClearingError(f"mode must be one of {MODES}, got {mode!r}")
    book = list(orders)
    _validate(book)
    result = ClearingResult()
    by_token: dict[str, list[BookOrder]] = {}
    for o in book:
        by_token.setdefault(o.payment_token, []).append(o)
    for token in sorted(by_token):
        active = sorted(by_token[token], key=lambda o: o.id)
        while True:
            price, trades = _clear_token(active, mode)
            fills: dict[str, int] = {}
            for t in trades:
                fills[t.sell_id] = fills.get(t.sell_id, 0) + t.wh
                fills[t.buy_id] = fills.get(t.buy_id, 0) + t.wh
            broken = [o for o in active
                      if not o.partially_fillable and 0 < fills.get(o.id, 0) < o.amount_wh]
            if not broken:
                break
            # Remove the lowest-priority broken fill-or-kill order and clear again.
            victim = max(broken, key=_priority_key)
            result.removed_fill_or_kill.append(victim.id)
            active = [o for o in active if o.id != victim.id]
        if trades and price is not None:
            result.prices[token] = price
            result.trades.extend(trades)
    return result


def _priority_key(o: BookOrder) -> tuple:
    p = o.limit_price if o.side == "sell" else -o.limit_price
    return (p, o.seq, o.id)


def _validate(book: Sequence[BookOrder]) -> None:
    seen: set[str] = set()
    for o in book:
        if o.id in seen:
            raise ClearingError(f"order {o.id}: duplicate id")
        seen.add(o.id)
        if o.side not in ("sell", "buy"):
            raise ClearingError(f"order {o.id}: side must be 'sell' or 'buy', got {o.side!r}")
        if not (0 < o.amount_wh < _MAX_AMOUNT):
            raise ClearingError(f"order {o.id}: amount_wh must be in 1..{_MAX_AMOUNT - 1}, got {o.amount_wh}")
        if not (0 <= o.limit_price < 2**256):
            raise ClearingError(f"order {o.id}: limit_price out of range: {o.limit_price}")


def _accepts(buy: BookOrder, sell: BookOrder) -> bool:
    if buy.maker == sell.maker:
        return False
    if buy.counterparty != ZERO_ADDRESS and buy.counterparty != sell.maker:
        return False
    if sell.counterparty != ZERO_ADDRESS and sell.counterparty != buy.maker:
        return False
    return not (buy.colour != ZERO_COLOUR and buy.colour != sell.colour)


def _clear_token(book: list[BookOrder], mode: str) -> tuple[int | None, list[Fill]]:
    n = len(book)
    if n == 0:
        return None, []
    is_buy = np.fromiter((o.side == "buy" for o in book), dtype=bool, count=n)
    values = sorted({o.limit_price for o in book})  # prices as ranks: exact for any uint256 price
    rank = {v: i for i, v in enumerate(values)}
    limit = np.fromiter((rank[o.limit_price] for o in book), dtype=np.int64, count=n)
    amount = np.fromiter((o.amount_wh for o in book), dtype=np.int64, count=n)
    seq = np.fromiter((o.seq for o in book), dtype=np.int64, count=n)
    key = np.arange(n, dtype=np.int64)  # book is sorted by id

    price, *_ = clear_arrays(is_buy, limit, amount, seq, key, UNIFORM, values)
    if price is None:
        return None, []
    remaining = amount.copy()
    trades: list[Fill] = []

    def emit(si: int, bi: int, wh: int) -> None:
        s, b = book[si], book[bi]
        p = price if mode == UNIFORM else b.limit_price
        trades.append(Fill(s.id, b.id, s.maker, b.maker, int(wh), int(p), s.payment_token))
        remaining[si] -= wh
        remaining[bi] -= wh

    # 1. Orders with preferences first, greedily in priority order.
    eligible = [i for i, o in enumerate(book)
                if (o.side == "buy" and o.limit_price >= price) or (o.side == "sell" and o.limit_price <= price)]
    eligible.sort(key=lambda i: (_priority_key(book[i]), i))
    sells = [i for i in eligible if book[i].side == "sell"]
    buys = [i for i in eligible if book[i].side == "buy"]
    constrained = [i for i in eligible if book[i].constrained]
    for i in constrained:
        o = book[i]
        others = sells if o.side == "buy" else buys
        for j in others:
            if remaining[i] == 0:
                break
            if remaining[j] == 0:
                continue
            bi, si = (i, j) if o.side == "buy" else (j, i)
            if not _accepts(book[bi], book[si]):
                continue
            emit(si, bi, int(min(remaining[i], remaining[j])))

    # 2. Everyone else through the vectorised merge (self-trades separated below).
    free = np.array([i for i in eligible if not book[i].constrained and remaining[i] > 0], dtype=np.int64)
    if free.size:
        sub_amount = remaining[free]
        _, si, bi, wh, _ = clear_arrays(is_buy[free], limit[free], sub_amount, seq[free], free, UNIFORM, values)
        makers = [o.maker for o in book]
        pending_self: list[tuple[int, int, int]] = []
        for s_local, b_local, w in zip(si.tolist(), bi.tolist(), wh.tolist(), strict=True):
            s_i, b_i = int(free[s_local]), int(free[b_local])
            if makers[s_i] == makers[b_i]:
                pending_self.append((s_i, b_i, w))
                continue
            emit(s_i, b_i, w)
        # A self-crossing segment is re-matched with any other eligible counter-order that has room.
        for s_i, _b_i, w in pending_self:
            left = w
            for j in buys:
                if left == 0:
                    break
                if remaining[j] > 0 and _accepts(book[j], book[s_i]):
                    take = int(min(left, remaining[j], remaining[s_i]))
                    if take:
                        emit(s_i, j, take)
                        left -= take
    return price, trades
