"""Two keepers on one PostgreSQL database: exactly one settles; SIGKILL it mid-settlement (its
transaction stored, broadcast and still in the mempool) and the other takes over, finishes that
settlement with the same transaction and settles the next intervals. Every interval is settled on
chain exactly once and no accepted order is lost. Real processes (`gridcoop keeper serve`), a real
PostgreSQL server and a real anvil of the test's own (its mining is switched off and on)."""

from __future__ import annotations

import sys

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from gridcoop_sdk import Anvil, dev_accounts
from gridcoop_sdk.chain import free_port

from .harness import Service, advance_chain, deploy_stack, healthy, service_env, wait_for


@pytest.fixture
def own_anvil(tmp_path):
    with Anvil(log_path=tmp_path / "anvil.log") as node:
        yield node


def _keeper(stack, url: str, db_url: str, workdir, name: str) -> tuple[Service, str]:
    port = free_port()
    argv = [sys.executable, "-m", "gridcoop", "keeper", "serve", "--rpc-url", url, "--market", stack.market.address,
            "--db", db_url, "--port", str(port), "--poll", "0.2", "--log-format", "json"]
    env = service_env(GRIDCOOP_KEEPER_KEY=stack.keeper.key.hex())
    return Service(name, argv, env, workdir / f"{name}.log"), f"http://127.0.0.1:{port}"


def _is_settler(api: str) -> float:
    body = httpx.get(api + "/metrics", timeout=5).text
    for fam in text_string_to_metric_families(body):
        if fam.name == "gridcoop_keeper_is_settler":
            return fam.samples[0].value
    raise AssertionError("no gridcoop_keeper_is_settler")


def test_sigkill_the_settler_mid_settlement_and_the_standby_takes_over(own_anvil, pg_server, tmp_path):
    w3 = own_anvil.w3
    stack = deploy_stack(w3, own_anvil.url, dev_accounts(10), households=["fo-1"], directory=tmp_path / "dep")
    db_url = pg_server.create_database("failover")
    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))

    def q(sql: str, **kw):
        with engine.connect() as c:
            return c.execute(text(sql), kw).all()

    keepers = {}
    for n in ("keeper-a", "keeper-b"):
        svc, api = _keeper(stack, own_anvil.url, db_url, tmp_path, n)
        keepers[n] = (svc.start(), api)
    try:
        for svc, api in keepers.values():
            wait_for(lambda api=api: healthy(api), 60, f"{svc.name} API")
        lease = wait_for(lambda: q("SELECT holder, epoch FROM settler_leases"), 30, "a settler")[0]
        assert lease.epoch == 1
        holder = next(n for n, (svc, _) in keepers.items() if f":{svc.proc.pid}:" in lease.holder)
        other = next(n for n in keepers if n != holder)
        assert _is_settler(keepers[holder][1]) == 1 and _is_settler(keepers[other][1]) == 0

        first = w3.eth.get_block("latest")["timestamp"] // 900 + 2
        intervals = [first, first + 1, first + 2]
        orders = {}
        for i, iid in enumerate(intervals):  # orders go to both keepers: either one takes them
            for j, signed in enumerate(stack.book(iid)):
                api = keepers[("keeper-a", "keeper-b")[(i + j) % 2]][1]
                r = httpx.post(api + "/v1/orders", json=signed.to_dict(), timeout=30)
                assert r.status_code == 201, r.text
                orders["0x" + signed.hash.hex()] = iid

        # mining off: the settlement transaction of the first interval waits in the mempool
        w3.provider.make_request("evm_setAutomine", [False])
        advance_chain(w3, stack.market.functions.closesAt(first).call())
        wait_for(lambda: q("SELECT 1 FROM intervals i JOIN settlement_txs t USING (interval_id) WHERE "
                           "i.interval_id = :i AND i.state = 'sending' AND t.state = 'sent'", i=first),
                 60, "the settler to send the first interval's settlement")
        sent = q("SELECT tx_hash FROM settlement_txs WHERE interval_id = :i", i=first)
        assert len(sent) == 1
        keepers[holder][0].kill()  # SIGKILL mid-settlement: decided, stored, broadcast, not mined

        lease = wait_for(lambda: [r for r in q("SELECT holder, epoch FROM settler_leases") if r.epoch == 2], 30,
                         "the standby to take over")[0]
        assert f":{keepers[other][0].proc.pid}:" in lease.holder
        assert _is_settler(keepers[other][1]) == 1
        w3.provider.make_request("evm_setAutomine", [True])
        w3.provider.make_request("evm_mine", [])
        for iid in intervals[1:]:
            advance_chain(w3, stack.market.functions.closesAt(iid).call())
        wait_for(lambda: len(q("SELECT 1 FROM intervals WHERE interval_id IN (:a, :b, :c) AND state = 'settled'",
                               a=intervals[0], b=intervals[1], c=intervals[2])) == 3, 90, "all intervals settled")

        # the killed keeper comes back and stands by
        keepers[holder][0].start()
        wait_for(lambda: healthy(keepers[holder][1]), 60, "the restarted keeper")
        assert _is_settler(keepers[holder][1]) == 0 and _is_settler(keepers[other][1]) == 1

        for iid in intervals:  # settled on chain exactly once each
            assert len(stack.settled_events(iid)) == 1, iid
        assert q("SELECT tx_hash FROM intervals WHERE interval_id = :i", i=first)[0].tx_hash == sent[0].tx_hash
        stored = {r.hash: (r.interval_id, r.status) for r in q("SELECT hash, interval_id, status FROM orders")}
        assert {h: iid for h, (iid, _) in stored.items()} == orders  # nothing lost, nothing extra
        assert all(st in ("filled", "partially_filled", "unfilled") for _, st in stored.values())
        on_chain = sum(len(stack.market.events.Trade().get_logs(from_block=0, argument_filters={"intervalId": i}))
                       for i in intervals)
        assert on_chain == q("SELECT COUNT(*) AS n FROM trades")[0].n > 0  # every trade recorded once
        assert "is now the settler" in keepers[other][0].log_text()
    finally:
        for svc, _ in keepers.values():
            svc.stop()
        engine.dispose()
