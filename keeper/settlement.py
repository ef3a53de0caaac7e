"""From an interval's stored orders to a checked ``EnergyMarket.settle`` call.

:func:`build_batch` clears the orders (pure engine) and packs the trades; :func:`simulate` runs
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


@dataclass
class Batch:
    interval_id: int
    signed: list[SignedOrder]
    hashes: list[str]
    trades: list[Fill]
    packed: list[int]
    result: ClearingResult
    dropped: dict[str, str] = field(default_factory=dict)

    def money(self) -> MoneySplit:
        """What this batch moves in money, per order id and per trade, exactly as ``settle`` does."""
        return split_money((t.sell_id, t.buy_id, t.wh, t.price) for t in self.trades)

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
        })


def rows_money(rows: list[TradeRow]) -> MoneySplit:
    """The money of stored trades (one interval's, or several intervals', in their stored order),
    per order hash and per trade, to the base unit as the market moved it: each sell order
    received ``floor(Σ wh × price / 1000)``, each buy order paid the ceiling."""
    return split_money((r.sell_hash, r.buy_hash, int(r.wh), int(r.price)) for r in rows)


def book_order(row: OrderRow) -> BookOrder:
    return BookOrder(id=row.hash, maker=row.maker, side=row.side, amount_wh=row.amount_wh,
                     limit_price=int(row.limit_price), seq=row.seq, partially_fillable=row.partially_fillable,
                     payment_token=row.payment_token, colour=colour_bytes(row.colour),
                     counterparty=row.counterparty)


def build_batch(interval_id: int, rows: list[OrderRow], mode: str = UNIFORM, max_batch: int = 1024) -> Batch | None:
    """Clear ``rows`` and pack the result; ``None`` when nothing trades."""
    by_hash = {r.hash: r for r in rows}
    result = clear([book_order(r) for r in rows], mode)
    if not result.trades:
        return None
    trades = result.trades[:max_batch]
    used: list[str] = []
    index: dict[str, int] = {}
    for t in trades:
        for h in (t.sell_id, t.buy_id):
            if h not in index:
                index[h] = len(used)
                used.append(h)
    if len(used) > max_batch:  # keep whole trades whose orders fit
        keep, used, index = [], [], {}
        for t in trades:
            need = [h for h in (t.sell_id, t.buy_id) if h not in index]
            if len(used) + len(need) > max_batch:
                break
            for h in need:
                index[h] = len(used)
                used.append(h)
            keep.append(t)
        trades = keep
    check_money(trades, by_hash)
    packed = [pack_trade(index[t.sell_id], index[t.buy_id], t.wh, t.price) for t in trades]
    signed = [SignedOrder.from_json(by_hash[h].signed_json) for h in used]
    return Batch(interval_id, signed, used, trades, packed, result)


class BatchCheckFailed(ValueError):
    """The keeper's own batch breaks a money rule (a bug in the engine: the batch is never sent)."""


def check_money(trades: list[Fill], rows: dict[str, OrderRow]) -> MoneySplit:
    """The pre-send money check (issue 18, item 7), with the chain's per-order rounding: no trade
    moves nothing (``wh × price > 0``), every price is within both limits, and each seller receives
    at least ``floor(soldWh × limitPrice / 1000)`` and each buyer pays at most
    ``ceil(boughtWh × limitPrice / 1000)`` — rounding never takes from a seller."""
    sold: dict[str, int] = {}
    bought: dict[str, int] = {}
    for k, t in enumerate(trades):
        s, b = rows[t.sell_id], rows[t.buy_id]
        if t.wh <= 0 or t.price <= 0:
            raise BatchCheckFailed(f"trade {k} ({t.sell_id[:10]}→{t.buy_id[:10]}) moves no money: {t.wh} Wh at {t.price}")
        if not int(s.limit_price) <= t.price <= int(b.limit_price):
            raise BatchCheckFailed(f"trade {k} price {t.price} outside the limits {s.limit_price}..{b.limit_price}")
        sold[t.sell_id] = sold.get(t.sell_id, 0) + t.wh
        bought[t.buy_id] = bought.get(t.buy_id, 0) + t.wh
    money = split_money((t.sell_id, t.buy_id, t.wh, t.price) for t in trades)
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
