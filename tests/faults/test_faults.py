"""Fault injection against a real anvil on loopback, with the keeper (`gridcoop keeper serve` + relay) and
the bridge (`gridcoop bridge run`, pusher http) as subprocesses:

- the node restarts while a settlement and a relayed readings batch are in its mempool;
- a reorg (evm_snapshot/evm_revert) removes a settlement and a relayed readings batch;
- a seeded loop SIGKILLs the keeper and the bridge at random points over several intervals.

Each ends with: every interval with orders settled on chain exactly once (one IntervalSettled,
trades = the keeper's fills), every signed reading on chain exactly once, no gap in intervals.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import pytest

from gridcoop_sdk import Anvil
from gridcoop_sdk.chain import free_port

from .harness import Run, advance_chain, chain_now, deploy_stack, outbox_status, wait_for

NAMES = ["fault-1", "fault-2"]
FULL = os.environ.get("GRIDCOOP_TEST_FULL") == "1"


@pytest.fixture
def own_anvil(tmp_path):
    """A node of the test's own (reverts and restarts must not touch the session node)."""
    with Anvil(log_path=tmp_path / "anvil.log") as node:
        yield node


def _orders(run: Run, iid: int, seed: int) -> None:
    for signed in run.stack.book(iid, random.Random(seed)):
        run.submit(signed)


def test_node_restart_with_settlement_and_readings_in_the_mempool(tmp_path, wallets, deployments_dir):
    """anvil --state keeps the chain across a restart and loses its mempool, as a real node whose
    process restarts (its tx pool is not persisted). The keeper re-sends the same signed bytes;
    the relay answers 503 and the bridge re-pushes from its outbox."""
    port = free_port()
    state = tmp_path / "anvil-state.json"
    node = Anvil(port=port, extra_args=["--state", str(state)], log_path=tmp_path / "anvil.log").start()
    run = None
    try:
        stack = deploy_stack(node.w3, node.url, wallets, households=NAMES)
        run = Run(stack, tmp_path, NAMES).start()
        iid = chain_now(stack.w3) // 900 + 2
        _orders(run, iid, 1)
        w3 = stack.w3
        w3.provider.make_request("evm_setAutomine", [False])
        advance_chain(w3, iid * 900 + 1)          # the gate closes; the keeper settles into the mempool
        run.next_meter_interval()                 # the bridge signs 2 readings and the relay submits them

        def pool() -> int:
            return int(w3.provider.make_request("txpool_status", [])["result"]["pending"], 16)

        wait_for(lambda: pool() >= 2, 60, "settlement and readings batch in the mempool")
        assert not stack.market.functions.settledIntervals(iid).call()
        last_ts = chain_now(w3)
        node.stop()                               # SIGTERM: state dumped, mempool gone
        time.sleep(1.0)                           # services see the node down
        # anvil reloads blocks and state but not its clock offset (the test moved chain time ahead
        # of the wall clock); a real chain's time never goes back, so hold the services while the
        # restarted node gets its clock back, then let them continue.
        for svc in (run.keeper, run.bridge):
            os.kill(svc.proc.pid, signal.SIGSTOP)
        try:
            node = Anvil(port=port, extra_args=["--state", str(state)], log_path=tmp_path / "anvil.log").start()
            advance_chain(w3, last_ts + 1)
            # checked while the services are still held: once resumed, the keeper re-sends at once and
            # the restarted node (automine) mines it, which on a loaded machine can beat this check
            assert pool() == 0 and not stack.market.functions.settledIntervals(iid).call()
        finally:
            for svc in (run.keeper, run.bridge):
                os.kill(svc.proc.pid, signal.SIGCONT)
        run.wait_settled([iid])
        run.wait_drained()
        totals = run.check_exactly_once()
        assert totals["readings"] == 2 and run.keeper.kills == 0
        assert "re-sending" in run.keeper.log_text() or "not known to the node" in run.keeper.log_text()
    finally:
        if run:
            run.close()
        node.stop()


@pytest.mark.parametrize("gateway_node", ["own-rpc", "relay-only"])
def test_reorg_removes_settlement_and_readings_and_both_are_resubmitted(own_anvil, wallets, deployments_dir,
                                                                         tmp_path, gateway_node):
    """The bridge checks its accepted readings against the registry's last sequence, through its
    own node (rpc_url) or, without one, through the keeper relay (GET /v1/readings/last/…)."""
    stack = deploy_stack(own_anvil.w3, own_anvil.url, wallets, households=NAMES)
    run = Run(stack, tmp_path, NAMES, gateway_rpc=gateway_node == "own-rpc").start()
    try:
        w3 = stack.w3
        iid = chain_now(w3) // 900 + 2
        _orders(run, iid, 2)
        snap = w3.provider.make_request("evm_snapshot", [])["result"]
        advance_chain(w3, iid * 900 + 1)
        run.next_meter_interval()
        run.wait_settled([iid])
        run.wait_drained()
        first = run.interval(iid)
        assert first["state"] == "settled" and len(stack.reading_keys()) == 2
        w3.provider.make_request("evm_revert", [snap])   # the block(s) with both are gone
        assert not stack.market.functions.settledIntervals(iid).call()
        assert stack.reading_keys() == []
        advance_chain(w3, iid * 900 + 2)                  # the canonical chain moves on past the gate
        wait_for(lambda: stack.market.functions.settledIntervals(iid).call(), 60,
                 f"re-settlement after the reorg ({run.keeper.log_text()[-1500:]})")
        wait_for(lambda: len(stack.reading_keys()) == 2, 60,
                 f"readings re-submitted after the reorg ({run.bridge.log_text()[-1500:]})")
        run.wait_settled([iid])
        run.wait_drained()
        totals = run.check_exactly_once()
        assert totals["readings"] == 2
        again = run.interval(iid)
        assert again["volume_wh"] == first["volume_wh"] and again["price"] == first["price"]
        assert "vanished from the chain" in run.keeper.log_text()
        assert "no longer on chain (reorg)" in run.bridge.log_text()
    finally:
        run.close()


ROUNDS = 8 if FULL else 3


@pytest.mark.slow
@pytest.mark.parametrize("seed", [7, 11, 23] if FULL else [7])
def test_sigkill_loop_keeper_and_bridge(own_anvil, wallets, deployments_dir, tmp_path, seed):
    """Seeded random SIGKILLs of both services during order intake, settlement and pushes."""
    rng = random.Random(seed)
    krng = random.Random(seed + 1)  # the background killer's own stream
    stack = deploy_stack(own_anvil.w3, own_anvil.url, wallets, households=NAMES)
    run = Run(stack, tmp_path, NAMES).start()
    w3 = stack.w3
    stop = threading.Event()
    kills = []
    # The background killer and the phase kills of the main thread take turns: each kill-and-restart
    # runs whole, so neither restarts a service the other has just restarted.
    turn = threading.Lock()

    def killer():
        while not stop.is_set():
            if stop.wait(krng.uniform(0.5, 3.0)):
                return
            victim = run.keeper if krng.random() < 0.5 else run.bridge
            with turn:
                if victim.alive():
                    victim.kill()
                    kills.append((victim.name, "random"))
                    if stop.wait(krng.uniform(0.0, 0.5)):
                        return
                    victim.start()

    t = threading.Thread(target=killer, daemon=True)
    try:
        t.start()
        iids = []
        phases = ("before-orders", "mid-orders", "after-gate", "after-meter-boundary")

        def maybe_kill(phase, plan):
            with turn:
                for svc in (run.keeper, run.bridge):
                    if plan[svc.name] == phase and svc.alive():
                        svc.kill()
                        kills.append((svc.name, phase))
                        svc.start()

        for r in range(ROUNDS):
            plan = {"keeper": rng.choice(phases), "bridge": rng.choice(phases)}
            iid = chain_now(w3) // 900 + 2
            iids.append(iid)
            maybe_kill("before-orders", plan)
            book = stack.book(iid, random.Random(seed * 100 + r))
            for i, signed in enumerate(book):
                if i == len(book) // 2:
                    maybe_kill("mid-orders", plan)
                run.submit(signed)
            advance_chain(w3, iid * 900 + 1)
            time.sleep(rng.uniform(0.0, 0.6))
            maybe_kill("after-gate", plan)
            run.next_meter_interval()
            time.sleep(rng.uniform(0.0, 0.6))
            maybe_kill("after-meter-boundary", plan)
            # the bridge must sample each boundary once to close the interval (the file clock holds
            # still until it has, however often it is killed meanwhile)
            wait_for(lambda: all(v == int(run.meter_t // 900) * 900 for v in run.anchors().values()), 90,
                     "bridge closed the interval")
        stop.set()
        t.join(10)
        for svc in (run.keeper, run.bridge):
            if not svc.alive():
                svc.start()
        run.wait_keeper()
        run.wait_settled(iids, timeout=120)
        run.wait_drained(timeout=120)
        totals = run.check_exactly_once()
        assert totals["intervals"] == ROUNDS and totals["readings"] == ROUNDS * len(NAMES)
        assert {k[0] for k in kills} == {"keeper", "bridge"}, kills
        print(f"seed {seed}: {len(kills)} SIGKILLs {kills}; totals {totals}; outbox {outbox_status(run.outbox)}")
    finally:
        stop.set()
        run.close()
