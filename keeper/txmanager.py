"""Settlement transactions that survive crashes, stuck fees and reorgs (Chainlink's pattern).

- The signed transaction is written to the database *before* it is broadcast; after a crash the
  same bytes are re-sent (same nonce, same hash), so a settlement can never be sent twice with
  two different nonces.
- Nonce = max(chain pending nonce, highest nonce the keeper signed and has not seen mined + 1).
- A transaction pending longer than ``stuck_after`` seconds (by the injected clock) is replaced:
  same nonce, fees raised by ``bump_percent`` (≥ the 10% nodes require).
- :meth:`TxManager.mined_receipt` tells whether any of an interval's transactions is in the
  canonical chain now — used to detect a reorg that dropped a settlement.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from sqlalchemy import func, select
from web3 import Web3
from web3.exceptions import TransactionNotFound

from . import metrics as M
from .clock import Clock
from .db import Database, TxRow

log = logging.getLogger("gridcoop.keeper.tx")


class TxManager:
    def __init__(self, w3: Web3, account: LocalAccount, db: Database, *, clock: Clock = time.time,
                 bump_percent: int = 20, stuck_after: float = 60.0, gas_margin: float = 1.25) -> None:
        if bump_percent < 10:
            raise ValueError("bump_percent must be at least 10 (nodes refuse smaller replacements)")
        self.w3, self.account, self.db, self.clock = w3, account, db, clock
        self.bump_percent = bump_percent
        self.stuck_after = stuck_after
        self.gas_margin = gas_margin
        self.chain_id = w3.eth.chain_id

    # ------------------------------------------------------------------ nonce and fees
    def next_nonce(self) -> int:
        chain = self.w3.eth.get_transaction_count(self.account.address, "pending")
        with self.db.session() as s:
            local = s.scalar(select(func.max(TxRow.nonce)).where(TxRow.state.in_(("signed", "sent"))))
        return max(chain, (local + 1) if local is not None else 0)

    def fees(self) -> tuple[int, int]:
        base = self.w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0
        try:
            tip = int(self.w3.eth.max_priority_fee)
        except Exception:
            tip = 10**9
        return 2 * base + tip, tip

    # ------------------------------------------------------------------ sign, persist, send
    def sign_and_store(self, interval_id: int, tx: dict[str, Any], *, nonce: int | None = None,
                       fees: tuple[int, int] | None = None) -> TxRow:
        """Sign ``tx`` (needs to/data/gas) and persist it before anything is broadcast."""
        max_fee, tip = fees or self.fees()
        params = {
            "to": tx["to"], "data": tx["data"], "value": 0, "gas": int(tx["gas"]),
            "chainId": self.chain_id, "nonce": self.next_nonce() if nonce is None else nonce,
            "maxFeePerGas": int(max_fee), "maxPriorityFeePerGas": int(tip), "type": 2,
        }
        signed = self.account.sign_transaction(params)
        row = TxRow(interval_id=interval_id, nonce=params["nonce"], tx_hash="0x" + bytes(signed.hash).hex(),
                    raw_tx="0x" + bytes(signed.raw_transaction).hex(), max_fee=str(max_fee),
                    priority_fee=str(tip), state="signed", created_at=self.clock())
        with self.db.settle_session() as s:  # fenced: a keeper that lost the settler lock stores nothing
            same = s.scalar(select(TxRow).where(TxRow.tx_hash == row.tx_hash))
            if same is not None:  # identical bytes (e.g. re-settling after a reorg): send them again
                same.state, same.interval_id = "signed", interval_id
                row = same
            else:
                s.add(row)
        M.SETTLEMENT_TXS.labels("signed").inc()
        log.debug("interval %s: signed tx %s nonce %s", interval_id, row.tx_hash, row.nonce)
        return row

    def broadcast(self, row: TxRow) -> None:
        try:
            self.w3.eth.send_raw_transaction(HexBytes(row.raw_tx))
        except Exception as exc:  # already known / nonce too low after a crash: the receipt decides
            text = str(exc).lower()
            if not any(k in text for k in ("already known", "nonce too low", "known transaction",
                                            "already imported")):
                raise
            log.info("tx %s was already with the node (%s)", row.tx_hash, str(exc)[:80])
        M.SETTLEMENT_TXS.labels("sent").inc()
        with self.db.settle_session() as s:
            r = s.get(TxRow, row.id)
            if r.state == "signed":
                r.state = "sent"
        row.state = "sent"

    def receipt(self, tx_hash: str) -> dict | None:
        try:
            return dict(self.w3.eth.get_transaction_receipt(tx_hash))
        except TransactionNotFound:
            return None

    def node_status(self, tx_hash: str) -> str:
        """``"unknown"`` (the node lost it or never had it), ``"pending"`` or ``"mined"``."""
        try:
            tx = self.w3.eth.get_transaction(tx_hash)
        except TransactionNotFound:
            return "unknown"
        return "pending" if tx.get("blockNumber") is None else "mined"

    def is_pending(self, tx_hash: str) -> bool:
        return self.node_status(tx_hash) == "pending"

    def txs(self, interval_id: int) -> list[TxRow]:
        with self.db.session() as s:
            return list(s.scalars(select(TxRow).where(TxRow.interval_id == interval_id).order_by(TxRow.id)))

    def mined_receipt(self, interval_id: int) -> tuple[TxRow, dict] | None:
        """The receipt of whichever of the interval's transactions is in the chain now."""
        for row in self.txs(interval_id):
            rc = self.receipt(row.tx_hash)
            if rc is not None and rc.get("blockNumber") is not None:
                return row, rc
        return None

    def wait(self, interval_id: int, timeout: float = 120.0, poll: float = 0.05) -> tuple[TxRow, dict]:
        """Wait for one of the interval's transactions to be mined; re-send or bump meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.mined_receipt(interval_id)
            if found:
                row, rc = found
                with self.db.settle_session() as s:
                    for r in s.scalars(select(TxRow).where(TxRow.interval_id == interval_id)):
                        r.state = "mined" if r.id == row.id else "replaced"
                M.SETTLEMENT_TXS.labels("mined").inc()
                return row, rc
            self._keep_alive(interval_id)
            if time.monotonic() > deadline:
                raise TimeoutError(f"interval {interval_id}: no settlement receipt within {timeout}s")
            time.sleep(poll)

    def _keep_alive(self, interval_id: int) -> None:
        rows = [r for r in self.txs(interval_id) if r.state in ("signed", "sent")]
        if not rows:
            return
        latest = rows[-1]
        status = self.node_status(latest.tx_hash)
        if status == "mined":  # mined since `wait` last looked for a receipt; the next look finds it
            return
        if status == "unknown":
            # The node lost it (restart, eviction, reorg): send the same bytes again.
            log.warning("interval %s: tx %s not known to the node; re-sending", interval_id, latest.tx_hash)
            M.SETTLEMENT_TXS.labels("resent_lost").inc()
            self.broadcast(latest)
            return
        if self.clock() - latest.created_at >= self.stuck_after:
            self.bump(interval_id, latest)

    def bump(self, interval_id: int, row: TxRow) -> TxRow:
        """Replace ``row`` with the same transaction at higher fees (same nonce)."""
        factor = 100 + self.bump_percent
        max_fee = max(int(row.max_fee) * factor // 100, self.fees()[0])
        tip = int(row.priority_fee) * factor // 100 + 1
        tx = self._tx_fields(row)
        new = self.sign_and_store(interval_id, {"to": tx["to"], "data": tx["data"], "gas": tx["gas"]},
                                  nonce=row.nonce, fees=(max(max_fee, tip), tip))
        with self.db.settle_session() as s:
            s.get(TxRow, row.id).state = "replaced"
        M.SETTLEMENT_TXS.labels("replaced_stuck").inc()
        log.warning("interval %s: tx %s stuck; replaced by %s with fee %s", interval_id, row.tx_hash,
                    new.tx_hash, max_fee)
        self.broadcast(new)
        return new

    def _tx_fields(self, row: TxRow) -> dict[str, Any]:
        from eth_account.typed_transactions import TypedTransaction

        t = TypedTransaction.from_bytes(HexBytes(row.raw_tx)).as_dict()
        return {"to": Web3.to_checksum_address(t["to"]), "data": "0x" + bytes(t["data"]).hex(), "gas": t["gas"]}
