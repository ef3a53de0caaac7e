"""Transaction manager: stored-before-broadcast, re-send of lost bytes, fee bump of a stuck tx."""

from __future__ import annotations

from keeper.clock import ManualClock
from keeper.db import Database
from keeper.txmanager import TxManager


def test_stuck_transaction_is_replaced_with_a_bumped_fee(w3, wallets, db_url, caplog):
    acct = wallets[9]
    clock = ManualClock(1_000.0)
    db = Database(db_url)
    with db.session() as s:  # a settlement transaction belongs to an interval (PostgreSQL checks the key)
        db.interval(s, 7)
    txm = TxManager(w3, acct, db, clock=clock, stuck_after=30)
    w3.provider.make_request("evm_setAutomine", [False])
    try:
        row = txm.sign_and_store(7, {"to": wallets[8].address, "data": "0x", "gas": 30_000})
        assert [r.state for r in txm.txs(7)] == ["signed"]  # persisted before broadcast
        txm.broadcast(row)
        assert txm.is_pending(row.tx_hash)
        txm._keep_alive(7)  # not stuck yet
        assert len(txm.txs(7)) == 1
        clock.advance(31)
        txm._keep_alive(7)
        rows = txm.txs(7)
        assert [r.state for r in rows] == ["replaced", "sent"]
        assert rows[1].nonce == rows[0].nonce and int(rows[1].max_fee) > int(rows[0].max_fee)
        w3.provider.make_request("evm_mine", [])
        # mined after `wait` looked for a receipt: neither lost (no re-send) nor stuck (no bump)
        assert txm.node_status(rows[1].tx_hash) == "mined"
        clock.advance(31)
        with caplog.at_level("INFO", logger="gridcoop.keeper.tx"):
            txm._keep_alive(7)
        assert [r.state for r in txm.txs(7)] == ["replaced", "sent"]
        assert "not known" not in caplog.text and "already with the node" not in caplog.text
        mined, receipt = txm.wait(7, timeout=10)
        assert mined.tx_hash == rows[1].tx_hash and receipt["status"] == 1
        assert txm.receipt(rows[0].tx_hash) is None
    finally:
        w3.provider.make_request("evm_setAutomine", [True])


def test_lost_transaction_is_re_sent_from_the_stored_bytes(w3, wallets, tmp_path):
    acct = wallets[9]
    txm = TxManager(w3, acct, Database(f"sqlite:///{tmp_path}/tx.db"))
    row = txm.sign_and_store(8, {"to": wallets[8].address, "data": "0x", "gas": 30_000})
    # never broadcast (crash): waiting finds it unknown to the node and sends the same bytes
    mined, receipt = txm.wait(8, timeout=10)
    assert mined.tx_hash == row.tx_hash and receipt["status"] == 1
