"""From an interval's stored orders to a checked ``EnergyMarket.settle`` call.

:func:`build_batch` clears the orders (pure engine) with the market's terms (:class:`MarketTerms`:
the grid participant and the network fee, read from the chain before each settlement) and packs
the trades; :func:`simulate` runs
the batch with ``eth_call``/gas estimation as the keeper; :func:`culprits` names the orders that
made a simulation fail (the market's errors carry the order index; token errors are traced back
to makers whose balance or allowance is short) so they can be dropped and the rest re-cleared.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError

from gridcoop_sdk import grid as grid_sdk
from gridcoop_sdk.exceptions import TransactionFailed
from gridcoop_sdk.orders import MoneySplit, SignedOrder, colour_bytes, pack_trade, split_money
from gridcoop_sdk.tx import revert_from_exception
from gridcoop_sdk.units import WATT_PER_WH

from .clearing import UNIFORM, BookOrder, ClearingResult, Fill, clear
from .db import OrderRow, TradeRow

ORDER_INDEX_ERRORS = {
    "MarketInvalidSignature", "MarketOrderExpired", "MarketWrongInterval", "MarketOrderIsCancelled",
    "MarketOverfill", "MarketFillOrKill", "MarketInvalidSide",
}
TOKEN_ERRORS = {
    "ERC20InsufficientBalance", "ERC20InsufficientAllowance", "SafeERC20FailedOperation",
    "MarketImbalancedBatch",
}


GRID_SELL = "grid:sell"  # the grid participant's standing offer (at the retail price)
GRID_BUY = "grid:buy"  # its standing bid (at the feed-in price)
GRID_IDS = (GRID_SELL, GRID_BUY)
_GRID_SEQ = 2**62  # the grid comes last among equal prices: households trade with each other first
_MAX_WH = 2**96 - 1


@dataclass(frozen=True)
class MarketTerms:
    """What the market charges and who stands behind the book, read from the chain before each
    settlement (the DAO may change them between intervals).

    How the keeper clears with them (docs/market.md, "The grid" and "Network fee"):

    - A buy order's limit covers price *and* network fee, so the engine sees a buyer's limit less
      the token's full fee (``fee_reserve``); a trade inside one feeder then pays the lower rate.
    - The grid is two more orders of its token, each larger than the whole other side (so it is
      never short): a sell at the retail price less the fee reserve (a buyer pays retail for grid
      energy, as it pays price + fee for a neighbour's; the grid pays no fee: its tariffs include
      the network) and a buy at the feed-in price. A grid sale's price on chain is the uniform
      price plus the fee reserve (at least retail); a grid purchase's is the uniform price.
    """

    grid: grid_sdk.GridTerms = grid_sdk.NO_GRID
    fees: dict = field(default_factory=dict)  # token (lower case) -> NetworkFee
    feeders: dict = field(default_factory=dict)  # maker (lower case) -> feeder id (bytes)

    @classmethod
    def read(cls, market: Contract, rows: list[OrderRow]) -> MarketTerms:
        grid = grid_sdk.grid_terms(market)
        fees = {}
        for token in {r.payment_token for r in rows}:
            f = grid_sdk.network_fee(market, token)
            if f.per_kwh:
                fees[token.lower()] = f
        feeders = {}
        if any(f.per_kwh != f.intra_feeder_per_kwh for f in fees.values()):
            feeders = {a.lower(): v for a, v in grid_sdk.feeders_of(market, {r.maker for r in rows}).items()}
        return cls(grid, fees, feeders)

    def fee_reserve(self, token: str) -> int:
        f = self.fees.get(token.lower())
        return f.per_kwh if f else 0

    def fee_rate(self, token: str, seller: str, buyer: str) -> int:
        """The network fee per kWh of a trade (0 with the grid on either side)."""
        f = self.fees.get(token.lower())
        if not f or self.is_grid(seller) or self.is_grid(buyer):
            return 0
        a, b = self.feeders.get(seller.lower()), self.feeders.get(buyer.lower())
        return f.intra_feeder_per_kwh if a is not None and a == b else f.per_kwh

    def is_grid(self, maker: str) -> bool:
        return self.grid.active and maker.lower() == self.grid.account.lower()

    def grid_sell_limit(self) -> int:
        """The grid's offer as the engine sees it (retail less the fee reserve, above feed-in)."""
        g = self.grid
        return max(g.retail_price - self.fee_reserve(g.token), g.feed_in_price + 1)

    def chain_price(self, fill: Fill) -> int:
        """A trade's price on chain: a grid sale's is the uniform price plus the fee reserve."""
        return fill.price + self.fee_reserve(fill.payment_token) if fill.sell_id == GRID_SELL else fill.price

    def book(self, rows: list[OrderRow]) -> list[BookOrder]:
        """The engine's book: every stored order (buy limits less the fee reserve) and the grid."""
        book = [book_order(r, self.fee_reserve(r.payment_token)) for r in rows]
        g = self.grid
        if not g.active:
            return book
        token = g.token.lower()
        mine = [o for o in book if o.payment_token.lower() == token]
        buys = sum(o.amount_wh for o in mine if o.side == "buy")
        sells = sum(o.amount_wh for o in mine if o.side == "sell")
        if buys:
            book.append(BookOrder(id=GRID_SELL, maker=g.account, side="sell", amount_wh=min(buys + 1, _MAX_WH),
                                  limit_price=self.grid_sell_limit(), seq=_GRID_SEQ, payment_token=mine[0].payment_token,
                                  colour=grid_sdk.GRID_COLOUR))
        if sells:
            book.append(BookOrder(id=GRID_BUY, maker=g.account, side="buy", amount_wh=min(sells + 1, _MAX_WH),
                                  limit_price=g.feed_in_price, seq=_GRID_SEQ, payment_token=mine[0].payment_token))
        return book


NO_TERMS = MarketTerms()


@dataclass
class Batch:
    interval_id: int
    signed: list[SignedOrder]
    hashes: list[str]
    trades: list[Fill]  # prices as on chain (a grid sale's includes the fee reserve)
    packed: list[int]
    result: ClearingResult
    dropped: dict[str, str] = field(default_factory=dict)
    fees: list[int] = field(default_factory=list)  # network fee per kWh of each trade

    def money(self) -> MoneySplit:
        """What this batch moves in money, per order id and per trade, exactly as ``settle`` does."""
        fees = self.fees or [0] * len(self.trades)
        return split_money((t.sell_id, t.buy_id, t.wh, t.price, f) for t, f in zip(self.trades, fees, strict=True))

    def call(self, market: Contract):
        return market.functions.settle(self.interval_id, [s.order.as_tuple() for s in self.signed],
                                       [s.signature for s in self.signed], self.packed)

    def to_json(self) -> str:
        return json.dumps({
            "interval_id": self.interval_id,
            "hashes": self.hashes,
            "prices": self.result.prices,
            "trades": [[t.sell_id, t.buy_id, t.seller, t.buyer, t.wh, t.price, t.payment_token]
                       for t in self.trades],
            "fees": self.fees,
        })


def rows_money(rows: list[TradeRow]) -> MoneySplit:
    """The money of stored trades (one interval's, or several intervals', in their stored order),
    per order hash and per trade, to the base unit as the market moved it: each sell order
    received ``floor(Σ wh × price / 1000)``, each buy order paid the ceiling (its network fees
    included)."""
    return split_money((r.sell_hash, r.buy_hash, int(r.wh), int(r.price), int(r.fee_per_kwh or 0)) for r in rows)


def book_order(row: OrderRow, fee_reserve: int = 0) -> BookOrder:
    limit = int(row.limit_price)
    if row.side == "buy" and fee_reserve:
        limit = max(limit - fee_reserve, 0)  # the limit covers price and network fee
    return BookOrder(id=row.hash, maker=row.maker, side=row.side, amount_wh=row.amount_wh,
                     limit_price=limit, seq=row.seq, partially_fillable=row.partially_fillable,
                     payment_token=row.payment_token, colour=colour_bytes(row.colour),
                     counterparty=row.counterparty, prefer=tuple(json.loads(row.prefer)) if row.prefer else ())


def build_batch(interval_id: int, rows: list[OrderRow], mode: str = UNIFORM, max_batch: int = 1024,
                terms: MarketTerms = NO_TERMS) -> Batch | None:
    """Clear ``rows`` under ``terms`` and pack the result; ``None`` when nothing trades."""
    by_hash = {r.hash: r for r in rows}
    result = clear(terms.book(rows), mode)
    if not result.trades:
        return None
    trades = [t._replace(price=terms.chain_price(t)) if t.sell_id == GRID_SELL else t
              for t in result.trades[:max_batch]]
    used: list[str] = []
    index: dict[str, int] = {}

    def need(t: Fill) -> list[str]:
        return [h for h in dict.fromkeys((t.sell_id, t.buy_id)) if h not in index and h not in GRID_IDS]

    keep = []
    for t in trades:  # keep whole trades whose orders fit
        new = need(t)
        if len(used) + len(new) > max_batch:
            break
        for h in new:
            index[h] = len(used)
            used.append(h)
        keep.append(t)
    trades = keep
    fees = [terms.fee_rate(t.payment_token, t.seller, t.buyer) for t in trades]
    check_money(trades, by_hash, fees, terms)
    packed = [pack_trade(index.get(t.sell_id, grid_sdk.GRID_INDEX), index.get(t.buy_id, grid_sdk.GRID_INDEX),
                         t.wh, t.price) for t in trades]
    signed = [SignedOrder.from_json(by_hash[h].signed_json) for h in used]
    return Batch(interval_id, signed, used, trades, packed, result, fees=fees)


class BatchCheckFailed(ValueError):
    """The keeper's own batch breaks a money rule (a bug in the engine: the batch is never sent)."""


def check_money(trades: list[Fill], rows: dict[str, OrderRow], fees: list[int] | None = None,
                terms: MarketTerms = NO_TERMS) -> MoneySplit:
    """The pre-send money check (issue 18, item 7), with the chain's per-order rounding: no trade
    moves nothing (``wh × price > 0``), every price (a buyer's: price + network fee) is within both
    limits (the grid's: its retail and feed-in prices), and each seller receives at least
    ``floor(soldWh × limitPrice / 1000)`` and each buyer pays at most
    ``ceil(boughtWh × limitPrice / 1000)`` — rounding never takes from a seller."""
    fees = fees or [0] * len(trades)
    g = terms.grid
    limits = {GRID_SELL: g.retail_price, GRID_BUY: g.feed_in_price}
    sold: dict[str, int] = {}
    bought: dict[str, int] = {}
    for k, (t, fee) in enumerate(zip(trades, fees, strict=True)):
        lo = limits[t.sell_id] if t.sell_id in GRID_IDS else int(rows[t.sell_id].limit_price)
        hi = limits[t.buy_id] if t.buy_id in GRID_IDS else int(rows[t.buy_id].limit_price)
        if t.wh <= 0 or t.price <= 0:
            raise BatchCheckFailed(f"trade {k} ({t.sell_id[:10]}→{t.buy_id[:10]}) moves no money: {t.wh} Wh at {t.price}")
        if not (lo <= t.price and t.price + fee <= hi):
            raise BatchCheckFailed(f"trade {k} price {t.price} (+ fee {fee}) outside the limits {lo}..{hi}")
        if t.sell_id not in GRID_IDS:
            sold[t.sell_id] = sold.get(t.sell_id, 0) + t.wh
        if t.buy_id not in GRID_IDS:
            bought[t.buy_id] = bought.get(t.buy_id, 0) + t.wh
    money = split_money((t.sell_id, t.buy_id, t.wh, t.price, f) for t, f in zip(trades, fees, strict=True))
    for h, wh in sold.items():
        floor = wh * int(rows[h].limit_price) // 1000
        if money.received[h] < floor:
            raise BatchCheckFailed(f"sell order {h[:10]} would receive {money.received[h]} < {floor} at its limit")
    for h, wh in bought.items():
        ceil = -(-wh * int(rows[h].limit_price) // 1000)
        if money.paid[h] > ceil:
            raise BatchCheckFailed(f"buy order {h[:10]} would pay {money.paid[h]} > {ceil} at its limit")
    return money


def simulate(w3: Web3, market: Contract, keeper: str, batch: Batch) -> int:
    """Gas the batch needs, or :class:`TransactionFailed` naming the market's (or token's) error."""
    fn = batch.call(market)
    try:
        return int(fn.estimate_gas({"from": keeper}))
    except (ContractLogicError, ContractCustomError, ContractPanicError) as exc:
        raise revert_from_exception("EnergyMarket.settle", exc) from exc
    except ValueError as exc:  # some nodes report reverts as JSON-RPC errors with data
        if getattr(exc, "data", None) or "revert" in str(exc).lower():
            raise revert_from_exception("EnergyMarket.settle", exc) from exc
        raise  # a node/network problem: not the orders' fault; the caller retries later


def culprits(w3: Web3, market: Contract, watt: Contract, batch: Batch, err: TransactionFailed) -> dict[str, str]:
    """Orders to drop for the failure ``err``: ``{order hash: reason}`` (empty when unknown)."""
    name = err.error_name or ""
    if name in ORDER_INDEX_ERRORS and "orderIndex" in err.error_args:
        i = int(err.error_args["orderIndex"])
        if 0 <= i < len(batch.hashes):
            args = ", ".join(f"{k}={v}" for k, v in err.error_args.items() if k != "orderIndex")
            return {batch.hashes[i]: f"{name}({args})" if args else name}
    if name in TOKEN_ERRORS or not name:
        return short_makers(w3, market, watt, batch)
    return {}


def short_makers(w3: Web3, market: Contract, watt: Contract, batch: Batch) -> dict[str, str]:
    """Orders whose maker lacks the balance or allowance their fills need (a buy order needs the
    ceiling of its value, as the contract pulls it)."""
    need_wh: dict[str, int] = {}
    for t in batch.trades:
        need_wh[t.sell_id] = need_wh.get(t.sell_id, 0) + t.wh
    need_money = batch.money().paid
    out: dict[str, str] = {}
    erc20_abi = watt.abi
    for h, s in zip(batch.hashes, batch.signed, strict=True):
        o = s.order
        if o.is_sell:
            token, amount, what = watt, need_wh.get(h, 0) * WATT_PER_WH, "WATT"
        else:
            token = w3.eth.contract(address=o.payment_token, abi=erc20_abi)
            amount, what = need_money.get(h, 0), "payment token"
        if amount == 0:
            continue
        bal = token.functions.balanceOf(o.maker).call()
        allowance = token.functions.allowance(o.maker, market.address).call()
        if bal < amount:
            out[h] = f"maker {o.maker} holds {bal} {what} base units, needs {amount}"
        elif allowance < amount:
            out[h] = f"maker {o.maker} allows the market {allowance} {what} base units, needs {amount}"
    return out


def grid_shortfall(w3: Web3, market: Contract, watt: Contract, batch: Batch, terms: MarketTerms) -> str | None:
    """Why the grid's side of ``batch`` cannot be paid (its account's balance or allowance of the
    grid token is short of what its purchases cost), or None. The grid cannot be dropped like an
    order: the operator must fund the utility's account (or the DAO change the grid)."""
    need = batch.money().paid.get(GRID_BUY, 0)
    if not need or not terms.grid.active:
        return None
    g = terms.grid
    token = w3.eth.contract(address=g.token, abi=watt.abi)
    bal = token.functions.balanceOf(g.account).call()
    allowance = token.functions.allowance(g.account, market.address).call()
    if bal < need:
        return f"the grid account {g.account} holds {bal} base units of {g.token}, its purchases need {need}: fund it"
    if allowance < need:
        return (f"the grid account {g.account} allows the market {allowance} base units of {g.token}, its purchases "
                f"need {need}: approve the market")
    return None
