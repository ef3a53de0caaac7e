"""The keeper service: accepts signed orders, settles each closed interval exactly once.

>>> k = Keeper(w3, keeper_account, market, "sqlite:///keeper.db")
>>> k.accept_order(signed)                 # checked like the contract will check it
>>> k.settle_interval(iid)                 # clear → eth_call check → persist → send → receipt
SettlementResult(interval_id=…, state='settled', price=27, volume_wh=1533, trades=3, …)
>>> k.run()                                # loop: settle due intervals, watch for reorgs

Crash safety: the interval's state and its signed transaction are in the database before the
transaction is broadcast; on restart an interval in ``sending`` is finished (the same bytes are
re-sent, or the receipt is found), never cleared and sent again. A settlement that disappears from
the chain (reorg) is detected by :meth:`Keeper.check_reorgs` and settled again.

One settler at a time (:mod:`keeper.settler`): on SQLite one keeper per database file (a second
refuses to start); on PostgreSQL any number of keepers serve the API and exactly one of them, the
holder of the market's advisory lock, settles — the others stand by and take over if it dies.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field

from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from sqlalchemy import delete, select
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from gridcoop_sdk.artifacts import abi as artifact_abi
from gridcoop_sdk.exceptions import GridcoopError, TransactionFailed
from gridcoop_sdk.orders import SignedOrder, colour_name, money_for, payment_for, split_money
from gridcoop_sdk.units import WATT_PER_WH

from . import db as D
from . import metrics as M
from .clearing import MODES, UNIFORM
from .clock import Clock
from .settlement import (
    GRID_IDS,
    BatchCheckFailed,
    MarketTerms,
    build_batch,
    culprits,
    grid_shortfall,
    rows_money,
    simulate,
)
from .settler import settler_lock
from .txmanager import TxManager

log = logging.getLogger("gridcoop.keeper")

ERC1271_MAGIC = bytes.fromhex("1626ba7e")


class OrderRejected(GridcoopError, ValueError):
    """An order was refused at intake; ``field`` names what is wrong, ``status`` the HTTP code."""

    def __init__(self, field_name: str, reason: str, status: int = 422):
        self.field = field_name
        self.reason = reason
        self.status = status
        super().__init__(f"{field_name}: {reason}")


@dataclass
class SettlementResult:
    interval_id: int
    state: str
    price: int | None = None
    volume_wh: int = 0
    money: int = 0
    trades: int = 0
    orders: int = 0
    tx_hash: str | None = None
    gas_used: int | None = None
    dropped: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    rounding_dust: int = 0  # what the buyers paid beyond what the sellers received (kept by the market)


class Keeper:
    def __init__(self, w3: Web3, account: LocalAccount, market: Contract, db_url: str, *,
                 clock: Clock = time.time, mode: str = UNIFORM, max_order_wh: int = 10**7,
                 max_price: int = 2**128 - 1, stuck_after: float = 60.0, receipt_timeout: float = 120.0,
                 poll_interval: float = 1.0, check_balances: bool = True) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not 0 < max_order_wh < 2**96:  # the contract's packed trade holds wh in 96 bits
            raise ValueError(f"max_order_wh must be in 1..2^96 - 1, got {max_order_wh}")
        self.w3, self.account, self.market, self.clock, self.mode = w3, account, market, clock, mode
        self.db = D.Database(db_url)
        self.chain_id = w3.eth.chain_id
        try:
            self.settler = settler_lock(self.db, self.chain_id, market.address, on_change=self._settler_changed)
            if self.settler.epoch is not None:  # SQLite: held from the start
                self._settler_changed(True)
        except BaseException:
            self.db.dispose()
            raise
        self.max_order_wh, self.max_price = max_order_wh, max_price
        self.receipt_timeout = receipt_timeout
        self.poll_interval = poll_interval
        self.check_balances = check_balances
        self.watt = w3.eth.contract(address=market.functions.watt().call(), abi=artifact_abi("WattToken"))
        self.txm = TxManager(w3, account, self.db, clock=clock, stuck_after=stuck_after)
        self._allowed: dict[str, bool] = {}
        self._token_units: dict[str, tuple[int, str]] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()

    # ------------------------------------------------------------------ intake
    def closes_at(self, interval_id: int) -> int:
        return int(self.market.functions.closesAt(interval_id).call())

    def _settler_changed(self, held: bool) -> None:
        M.IS_SETTLER.set(1 if held else 0)
        if held:
            M.SETTLER_EPOCH.set(self.settler.epoch or 0)
            M.SETTLER_TAKEOVERS.inc()

    def accept_order(self, signed: SignedOrder, prefer: list[str] | tuple[str, ...] = ()) -> D.OrderRow:
        """Check ``signed`` like the contract will and store it; :class:`OrderRejected` says why not.
        ``prefer``: ranked preferred partners (makers), matched first at the uniform price; the rest
        of the order falls back to the open book (unsigned: a preference, not a constraint)."""
        try:
            row = self._accept_order(signed, prefer)
        except OrderRejected as exc:
            M.ORDERS.labels("refused", exc.field).inc()
            raise
        M.ORDERS.labels("accepted", "").inc()
        return row

    def _accept_order(self, signed: SignedOrder, prefer: list[str] | tuple[str, ...]) -> D.OrderRow:
        o = signed.order
        if signed.chain_id != self.chain_id:
            raise OrderRejected("chain_id", f"order is for chain {signed.chain_id}, this keeper serves {self.chain_id}")
        if signed.market != self.market.address:
            raise OrderRejected("market", f"order is for market {signed.market}, this keeper settles {self.market.address}")
        now = self.clock()
        closes = self.closes_at(o.interval_id)
        if now >= closes:
            raise OrderRejected("order.interval_id", f"interval {o.interval_id} closed for orders at {closes} (now {int(now)})")
        if o.expiry < closes:
            raise OrderRejected("order.expiry", f"expires at {o.expiry}, before the interval can settle ({closes})")
        if o.amount_wh > self.max_order_wh:
            raise OrderRejected("order.amount_wh", f"{o.amount_wh} Wh is above the keeper's limit of {self.max_order_wh}")
        if o.limit_price == 0 or o.limit_price > self.max_price:
            raise OrderRejected("order.limit_price", f"must be between 1 and {self.max_price}")
        if not self._token_allowed(o.payment_token):
            raise OrderRejected("order.payment_token", f"{o.payment_token} is not an allowed payment token")
        if not self._signature_ok(signed):
            raise OrderRejected("signature", f"not a valid signature of this order by {o.maker}")
        if self.market.functions.cancelled("0x" + signed.hash.hex()).call():
            raise OrderRejected("order", "was cancelled on chain", 409)
        if self.check_balances:
            self._check_funds(signed)
        h = "0x" + signed.hash.hex()
        with self._lock, self.db.session() as s:
            if s.scalar(select(D.OrderRow).where(D.OrderRow.hash == h)) is not None:
                raise OrderRejected("order", f"already submitted ({h})", 409)
            iv = self.db.interval(s, o.interval_id)
            if iv.state not in (D.IV_OPEN, D.IV_EMPTY):
                raise OrderRejected("order.interval_id", f"interval {o.interval_id} is {iv.state}", 409)
            row = D.OrderRow(hash=h, interval_id=o.interval_id, maker=o.maker, side=o.side,
                             amount_wh=o.amount_wh, limit_price=str(o.limit_price), payment_token=o.payment_token,
                             partially_fillable=o.partially_fillable, expiry=o.expiry,
                             counterparty=o.counterparty, colour="0x" + o.colour.hex(),
                             signed_json=signed.to_json(), status=D.ORDER_OPEN, received_at=now,
                             prefer=json.dumps(list(prefer)) if prefer else None)
            s.add(row)
            s.flush()
        log.info("order %s accepted: %s %s Wh @ %s for interval %s by %s", h[:10], o.side, o.amount_wh,
                 o.limit_price, o.interval_id, o.maker)
        return row

    def _token_allowed(self, token: str) -> bool:
        if token not in self._allowed:
            self._allowed[token] = bool(self.market.functions.paymentTokenAllowed(token).call())
        return self._allowed[token]

    def _signature_ok(self, signed: SignedOrder) -> bool:
        maker = signed.order.maker
        if self.w3.eth.get_code(maker):
            wallet = self.w3.eth.contract(address=maker, abi=[{
                "type": "function", "name": "isValidSignature", "stateMutability": "view",
                "inputs": [{"name": "h", "type": "bytes32"}, {"name": "s", "type": "bytes"}],
                "outputs": [{"name": "", "type": "bytes4"}]}])
            try:
                return wallet.functions.isValidSignature(signed.hash, signed.signature).call() == ERC1271_MAGIC
            except Exception:
                return False
        return signed.recover_signer() == maker

    def _units(self, token, amount: int) -> str:
        """``amount`` base units of ``token`` as "12500000000000000000 base units (12.5 SKC)"."""
        from decimal import Decimal

        key = token.address
        if key not in self._token_units:
            try:
                self._token_units[key] = (int(token.functions.decimals().call()), str(token.functions.symbol().call()))
            except Exception:  # not an ERC-20 with metadata: base units only
                self._token_units[key] = (0, "base units")
        decimals, symbol = self._token_units[key]
        if symbol == "base units":
            return f"{amount} base units"
        value = Decimal(amount) / (Decimal(10) ** decimals)
        return f"{amount} base units ({format(value.normalize(), 'f') if value else '0'} {symbol})"

    def _check_funds(self, signed: SignedOrder) -> None:
        o = signed.order
        if o.is_sell:
            token, need = self.watt, o.amount_wh * WATT_PER_WH
        else:
            token = self.w3.eth.contract(address=o.payment_token, abi=self.watt.abi)
            # the most a buy order can pay: the ceiling of its whole value (the chain rounds per order)
            need = payment_for(o.amount_wh, o.limit_price)
        if o.is_sell and int.from_bytes(o.colour, "big"):
            self._check_origin(o)
        bal = token.functions.balanceOf(o.maker).call()
        if bal < need:
            raise OrderRejected("order.amount_wh", f"maker holds {self._units(token, bal)}, the order needs "
                                                   f"{self._units(token, need)}")
        allowance = token.functions.allowance(o.maker, self.market.address).call()
        if allowance < need:
            raise OrderRejected("order.maker", f"maker allows the market only {self._units(token, allowance)}, "
                                               f"the order needs {self._units(token, need)}: approve the market first")

    def _check_origin(self, o) -> None:
        """A coloured sell order claims metered origin of its colour (issue 19): the maker must hold
        at least the order's amount of it (the market's origin ledger refuses the batch otherwise)."""
        ledger = self.market.functions.originLedger().call()
        if int(ledger, 16) == 0:
            return
        registry = self.w3.eth.contract(address=ledger, abi=artifact_abi("MeterRegistry"))
        held = registry.functions.originOf(o.maker, o.colour).call()
        if held < o.amount_wh:
            raise OrderRejected("order.colour", f"maker holds {held} Wh of {colour_name(o.colour)!r} origin (metered "
                                                f"as that colour), the order claims {o.amount_wh}")

    def cancel_order(self, order_hash: str, signature: bytes) -> D.OrderRow:
        """Off-chain cancel: ``signature`` is the maker's EIP-191 signature of the order hash bytes."""
        with self._lock, self.db.session() as s:
            row = s.scalar(select(D.OrderRow).where(D.OrderRow.hash == order_hash))
            if row is None:
                raise OrderRejected("hash", f"no order {order_hash}", 404)
            try:
                signer = self.w3.eth.account.recover_message(encode_defunct(bytes.fromhex(order_hash[2:])),
                                                             signature=signature)
            except Exception as exc:
                raise OrderRejected("signature", f"not a signature: {exc}") from exc
            if signer != row.maker:
                raise OrderRejected("signature", f"signed by {signer}, not the maker {row.maker}", 403)
            if row.status != D.ORDER_OPEN:
                raise OrderRejected("hash", f"order is {row.status}, cannot cancel", 409)
            iv = self.db.interval(s, row.interval_id)
            if iv.state == D.IV_SENDING:
                raise OrderRejected("hash", "the interval is being settled; cancel on chain instead", 409)
            row.status = D.ORDER_CANCELLED
            row.reason = "cancelled by maker"
            return row

    # ------------------------------------------------------------------ settlement
    def settle_interval(self, interval_id: int) -> SettlementResult:
        """Settle ``interval_id`` once (idempotent: a settled interval returns its stored result).

        A keeper that is not the settler (another keeper holds the lock) returns state ``standby``."""
        with self._lock:
            if not self.settler.ensure():
                return SettlementResult(interval_id, "standby", error="another keeper is settling this market")
            with self.db.session() as s:
                state = self.db.interval(s, interval_id).state
            if state == D.IV_SETTLED:
                return self.result(interval_id)
            if state == D.IV_SENDING:
                log.info("interval %s: finishing a settlement sent before (restart?)", interval_id)
                return self._finish(interval_id)
            if self.market.functions.settledIntervals(interval_id).call():
                if self.txm.txs(interval_id):
                    return self._finish(interval_id)
                self._set_interval(interval_id, state=D.IV_SETTLED, error="settled on chain by another keeper")
                return self.result(interval_id)
            return self._clear_and_send(interval_id)

    def _clear_and_send(self, iid: int) -> SettlementResult:
        dropped: dict[str, str] = {}
        max_batch = int(self.market.functions.maxBatchSize().call())
        for _attempt in range(50):
            with self.db.session() as s:
                rows = self.db.open_orders(s, iid)
            try:
                terms = MarketTerms.read(self.market, rows)  # the DAO may change them between intervals
                batch = build_batch(iid, rows, self.mode, max_batch, terms)
            except BatchCheckFailed as err:  # never send a batch that breaks a money rule
                self._set_interval(iid, state=D.IV_FAILED, error=str(err))
                log.error("interval %s: pre-send check failed: %s", iid, err)
                return SettlementResult(iid, D.IV_FAILED, error=str(err), dropped=dropped)
            if batch is None:
                self._set_interval(iid, state=D.IV_EMPTY, n_orders=len(rows))
                self._mark_unfilled(iid)
                log.info("interval %s: %d orders in, no trade", iid, len(rows))
                return SettlementResult(iid, D.IV_EMPTY, orders=len(rows), dropped=dropped)
            try:
                gas = simulate(self.w3, self.market, self.account.address, batch)
                break
            except TransactionFailed as err:
                if err.error_name == "MarketIntervalNotClosed":
                    return SettlementResult(iid, "waiting", error=str(err))
                bad = culprits(self.w3, self.market, self.watt, batch, err)
                if not bad:
                    why = grid_shortfall(self.w3, self.market, self.watt, batch, terms) or str(err)
                    self._set_interval(iid, state=D.IV_FAILED, error=why)
                    log.error("interval %s: simulation failed and no order to blame: %s", iid, why)
                    return SettlementResult(iid, D.IV_FAILED, error=why, dropped=dropped)
                self._drop(bad)
                dropped.update(bad)
                for h, why in bad.items():
                    log.warning("interval %s: dropping order %s: %s", iid, h[:10], why)
        else:
            self._set_interval(iid, state=D.IV_FAILED, error="too many failing orders")
            return SettlementResult(iid, D.IV_FAILED, error="too many failing orders", dropped=dropped)

        fn = batch.call(self.market)
        data = fn._encode_transaction_data()
        # Persist the decision and the signed transaction before broadcasting anything.
        self._set_interval(iid, state=D.IV_SENDING, batch_json=batch.to_json(), n_orders=len(batch.signed),
                           n_trades=len(batch.packed),
                           price=None if batch.result.price is None else str(batch.result.price))
        row = self.txm.sign_and_store(iid, {"to": self.market.address, "data": data, "gas": int(gas * 1.25) + 50_000})
        self.txm.broadcast(row)
        res = self._finish(iid)
        res.dropped = dropped
        return res

    def _finish(self, iid: int) -> SettlementResult:
        if not any(t.state in ("signed", "sent", "mined") for t in self.txm.txs(iid)):
            # Crashed after deciding but before a transaction was stored: nothing can be on chain
            # from this keeper, so clear and send afresh.
            log.warning("interval %s: no stored transaction for a settlement in progress; clearing again", iid)
            self._set_interval(iid, state=D.IV_OPEN)
            return self._clear_and_send(iid)
        txrow, rc = self.txm.wait(iid, timeout=self.receipt_timeout)
        if rc["status"] != 1:
            self._set_interval(iid, state=D.IV_FAILED, tx_hash=txrow.tx_hash, error="settlement reverted")
            log.error("interval %s: settlement %s reverted", iid, txrow.tx_hash)
            return self.result(iid)
        with self.db.settle_session() as s:
            iv = self.db.interval(s, iid)
            batch = json.loads(iv.batch_json or "{}")
            events = self.market.events.Trade().process_receipt(rc, errors=DISCARD)
            s.execute(delete(D.TradeRow).where(D.TradeRow.interval_id == iid))
            fills: dict[str, int] = {}
            pairs = list(zip(batch.get("trades", []), events, strict=False))
            fees = batch.get("fees") or [0] * len(pairs)
            split = split_money((t[0], t[1], ev.args.wh, ev.args.pricePerKwh, f)
                                for (t, ev), f in zip(pairs, fees, strict=False))
            money = sum(split.paid.values())  # what the buyers paid: the chain's IntervalSettled.volume
            for (t, ev), fee in zip(pairs, fees, strict=False):
                sell_h, buy_h, seller, buyer, wh, price, token = t
                # the grid is one order per side and interval (its money is rounded per batch): keep
                # its side's id unique per interval, so reports over many intervals round it the same
                sell_h, buy_h = (f"{h}:{iid}" if h in GRID_IDS else h for h in (sell_h, buy_h))
                # TradeRow.money is the trade's value rounded down, for display; what each order
                # moved is the floor/ceiling of its whole value (reports compute it from the rows)
                s.add(D.TradeRow(interval_id=iid, seller=ev.args.seller, buyer=ev.args.buyer, sell_hash=sell_h,
                                 buy_hash=buy_h, wh=ev.args.wh, price=str(ev.args.pricePerKwh), fee_per_kwh=str(fee),
                                 money=str(money_for(ev.args.wh, ev.args.pricePerKwh)),
                                 payment_token=ev.args.paymentToken, tx_hash=txrow.tx_hash))
                fills[sell_h] = fills.get(sell_h, 0) + ev.args.wh
                fills[buy_h] = fills.get(buy_h, 0) + ev.args.wh
            for o in s.scalars(select(D.OrderRow).where(D.OrderRow.interval_id == iid,
                                                        D.OrderRow.status == D.ORDER_OPEN)):
                f = fills.get(o.hash, 0)
                o.filled_wh = f
                o.status = D.ORDER_FILLED if f == o.amount_wh else D.ORDER_PARTIAL if f else D.ORDER_UNFILLED
            iv.state = D.IV_SETTLED
            iv.tx_hash = txrow.tx_hash
            iv.block_number = rc["blockNumber"]
            iv.gas_used = rc["gasUsed"]
            iv.volume_wh = sum(ev.args.wh for ev in events)
            iv.money = str(money)
            iv.n_trades = len(events)
            iv.error = None
            iv.updated_at = self.clock()
        r = self.result(iid)
        lag = max(0.0, self.clock() - self.closes_at(iid))
        M.INTERVALS.labels(D.IV_SETTLED).inc()
        M.SETTLEMENT_LAG.observe(lag)
        M.SETTLEMENT_GAS.observe(r.gas_used or 0)
        M.LAST_SETTLED_INTERVAL.set(iid)
        M.LAST_SETTLEMENT_LAG.set(lag)
        M.LAST_SETTLEMENT_GAS.set(r.gas_used or 0)
        log.info("interval %s settled: %d orders, price %s, %d Wh, %d trades, money %s (rounding dust %s), "
                 "gas %s, tx %s", iid, r.orders, r.price, r.volume_wh, r.trades, r.money, r.rounding_dust,
                 r.gas_used, r.tx_hash, extra={"interval_id": iid, "event": "settled", "gas_used": r.gas_used,
                                               "lag_s": round(lag, 3), "tx_hash": r.tx_hash, "trades": r.trades})
        return r

    def _set_interval(self, iid: int, **values) -> None:
        with self.db.settle_session() as s:
            iv = self.db.interval(s, iid)
            for k, v in values.items():
                setattr(iv, k, v)
            iv.updated_at = self.clock()
        if values.get("state") in (D.IV_EMPTY, D.IV_FAILED):
            M.INTERVALS.labels(values["state"]).inc()

    def _drop(self, bad: dict[str, str]) -> None:
        with self.db.settle_session() as s:
            for h, why in bad.items():
                row = s.scalar(select(D.OrderRow).where(D.OrderRow.hash == h))
                if row is not None:
                    row.status = D.ORDER_DROPPED
                    row.reason = why

    def _mark_unfilled(self, iid: int) -> None:
        with self.db.settle_session() as s:
            for o in self.db.open_orders(s, iid):
                o.status = D.ORDER_UNFILLED

    def result(self, iid: int) -> SettlementResult:
        with self.db.session() as s:
            iv = self.db.interval(s, iid, create=False)
            if iv is None:
                return SettlementResult(iid, "unknown")
            dropped = {o.hash: o.reason or "" for o in s.scalars(
                select(D.OrderRow).where(D.OrderRow.interval_id == iid, D.OrderRow.status == D.ORDER_DROPPED))}
            price = None if iv.price is None else int(iv.price)
            trades = list(s.scalars(select(D.TradeRow).where(D.TradeRow.interval_id == iid).order_by(D.TradeRow.id)))
            return SettlementResult(iid, iv.state, price, iv.volume_wh, int(iv.money or 0), iv.n_trades,
                                    iv.n_orders, iv.tx_hash, iv.gas_used, dropped, iv.error,
                                    rows_money(trades).dust if trades else 0)

    # ------------------------------------------------------------------ reorgs
    def check_reorgs(self, last: int = 64) -> list[int]:
        """Re-settle recently settled intervals whose settlement is no longer in the chain."""
        with self.db.session() as s:
            recent = list(s.scalars(select(D.IntervalRow).where(D.IntervalRow.state == D.IV_SETTLED,
                                                                D.IntervalRow.tx_hash.is_not(None))
                                    .order_by(D.IntervalRow.interval_id.desc()).limit(last)))
        redone = []
        for iv in recent:
            rc = self.txm.receipt(iv.tx_hash)
            if rc is not None and rc.get("blockNumber") is not None:
                continue
            if self.market.functions.settledIntervals(iv.interval_id).call():
                continue
            log.warning("interval %s: settlement %s vanished from the chain (reorg); settling again",
                        iv.interval_id, iv.tx_hash)
            M.REORGS.inc()
            with self.db.settle_session() as s:
                for o in s.scalars(select(D.OrderRow).where(D.OrderRow.interval_id == iv.interval_id,
                                                            D.OrderRow.status.in_((D.ORDER_FILLED, D.ORDER_PARTIAL,
                                                                                   D.ORDER_UNFILLED)))):
                    o.status, o.filled_wh = D.ORDER_OPEN, 0
                s.execute(delete(D.TradeRow).where(D.TradeRow.interval_id == iv.interval_id))
                for t in s.scalars(select(D.TxRow).where(D.TxRow.interval_id == iv.interval_id)):
                    t.state = "dropped"
                row = self.db.interval(s, iv.interval_id)
                row.state, row.tx_hash, row.block_number, row.gas_used = D.IV_OPEN, None, None, None
            self.settle_interval(iv.interval_id)
            redone.append(iv.interval_id)
        return redone

    # ------------------------------------------------------------------ loop
    def due_intervals(self) -> list[int]:
        """Intervals with work whose gate has closed by the keeper's clock."""
        now = self.clock()
        with self.db.session() as s:
            with_orders = set(s.scalars(select(D.OrderRow.interval_id).where(D.OrderRow.status == D.ORDER_OPEN)))
            sending = set(s.scalars(select(D.IntervalRow.interval_id).where(D.IntervalRow.state == D.IV_SENDING)))
        return sorted(i for i in with_orders | sending if i in sending or self.closes_at(i) <= now)

    def run_once(self) -> list[SettlementResult]:
        out = []
        if not self.settler.ensure():  # another keeper settles; this one serves the API and stands by
            return out
        due = self.due_intervals()
        left = []
        for iid in due:
            try:
                res = self.settle_interval(iid)
                out.append(res)
                if res.state not in (D.IV_SETTLED, D.IV_EMPTY):
                    left.append(iid)
            except Exception as exc:  # keep the loop alive; the state machine resumes next time
                left.append(iid)
                M.SETTLEMENT_ERRORS.labels(type(exc).__name__).inc()
                log.exception("interval %s: settlement attempt failed: %s", iid, exc,
                              extra={"interval_id": iid, "event": "settlement_error"})
        try:
            now = self.clock()
            M.UNSETTLED_AGE.set(max((now - self.closes_at(i) for i in left), default=0.0))
        except Exception:
            pass
        try:
            self.check_reorgs()
        except Exception as exc:
            log.exception("reorg check failed: %s", exc)
        return out

    def run(self, stop: threading.Event | None = None) -> None:
        """Settle due intervals every ``poll_interval`` seconds until ``stop`` is set (or :meth:`stop`)."""
        stop = stop or self._stop
        log.info("keeper %s running for market %s on chain %s (mode %s)", self.account.address,
                 self.market.address, self.chain_id, self.mode)
        down_since: float | None = None
        while not stop.is_set():
            try:
                self.run_once()
                if down_since is not None:
                    log.info("node reachable again after %.1fs; resuming", time.monotonic() - down_since)
                    down_since = None
            except Exception as exc:  # node down or restarting: keep serving the API and retry
                if down_since is None:
                    down_since = time.monotonic()
                    log.warning("settlement round failed (%s: %s); retrying every %.1fs", type(exc).__name__,
                                str(exc).splitlines()[0][:200] if str(exc) else "", self.poll_interval)
            stop.wait(self.poll_interval)

    def stop(self) -> None:
        self._stop.set()

    def health(self) -> dict:
        block = self.w3.eth.block_number
        with self.db.session() as s:
            n_open = len(list(s.scalars(select(D.OrderRow.seq).where(D.OrderRow.status == D.ORDER_OPEN))))
        return {"ok": True, "chain_id": self.chain_id, "market": self.market.address,
                "keeper": self.account.address, "block": block, "open_orders": n_open,
                "mode": self.mode, "time": self.clock(),
                "database": "postgresql" if self.db.is_postgres else "sqlite" if self.db.is_sqlite else "other",
                "settler": self.settler.epoch is not None, "settler_epoch": self.settler.epoch}
