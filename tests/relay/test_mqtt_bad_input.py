"""Bad input to a relay worker: each refused with its reason (recorded before the PUBACK) and
counted; the worker keeps running and relays the good readings once."""

from __future__ import annotations

import json

from eth_account import Account

from gridcoop_sdk.mqtt import readings_topic
from gridcoop_sdk.readings import ReadingSigner

from .conftest import ThreadWorker, publish, wait_for


def test_bad_messages_are_refused_recorded_and_counted_and_good_ones_relayed(w3, wallets, broker, region, make_meters,
                                                                             tmp_path):
    m = make_meters(3)
    b0 = w3.eth.block_number
    other = make_meters(1)  # another registry (another region's domain)
    good = [m.sign(i, 1) for i in range(3)]
    with ThreadWorker(w3, wallets[8], m.registry, region, broker, tmp_path) as worker:
        t = readings_topic(region, m.ids[0])
        publish(broker, t, b"not json at all")
        publish(broker, t, json.dumps({"hello": "world"}))
        publish(broker, t, good[1].to_json())                      # meter 1's reading on meter 0's topic
        publish(broker, readings_topic(region, other.ids[0]), other.sign(0, 1).to_json())  # other registry
        forged = ReadingSigner(Account.create().key, w3.eth.chain_id, m.registry.address).sign(good[0].reading)
        publish(broker, t, forged.to_json())                        # signed by a key that is not the meter's
        publish(broker, f"gridcoop/{region}/readings/not-a-meter", good[0].to_json())
        unknown = ReadingSigner(Account.create().key, w3.eth.chain_id, m.registry.address)
        u = unknown.sign(good[0].reading.__class__(**{**good[0].reading.__dict__, "meter_id": b"\x07" * 32}))
        publish(broker, readings_topic(region, b"\x07" * 32), u.to_json())   # meter not registered
        for i in range(3):
            publish(broker, readings_topic(region, m.ids[i]), good[i].to_json())
        publish(broker, readings_topic(region, m.ids[2]), good[2].to_json())  # duplicate publish
        wait_for(lambda: len(m.on_chain(b0)) == 3, 30, "the three good readings on chain")
        wait_for(lambda: worker.stats.accepted + worker.stats.already_on_chain + worker.stats.duplicate_publish >= 4,
                 30, "the duplicate publish handled")
        # a late re-publish of an accepted reading: on chain already, acknowledged, applied once
        publish(broker, readings_topic(region, m.ids[0]), good[0].to_json())
        wait_for(lambda: worker.stats.already_on_chain + worker.stats.duplicate_publish >= 2, 30, "the re-publish")
        stats = worker.stats
    assert sorted(m.on_chain(b0)) == sorted((mid, 1) for mid in m.ids)
    assert stats.refused == {"NotAReading": 2, "TopicMismatch": 1, "WrongDomain": 1, "BadSignature": 1,
                             "BadTopic": 1, "UnknownMeter": 1}, stats.refused
    assert stats.accepted == 3
    recs = [json.loads(line) for line in (tmp_path / "refusals.jsonl").read_text().splitlines()]
    assert sorted(r["reason"] for r in recs) == sorted(["NotAReading", "NotAReading", "TopicMismatch", "WrongDomain",
                                                        "BadSignature", "BadTopic", "UnknownMeter"])
    assert all(r["detail"] for r in recs)


def test_relay_worker_metrics_count_readings_by_result_and_reason(w3, wallets, broker, region, make_meters, tmp_path):
    """`gridcoop relay mqtt --metrics-port`: scraped over real HTTP, the counters follow real events."""
    import httpx

    from gridcoop_sdk.chain import free_port
    from keeper.metrics import serve_relay_metrics

    m = make_meters(1)
    b0 = w3.eth.block_number
    port = free_port()
    with ThreadWorker(w3, wallets[8], m.registry, region, broker, tmp_path) as worker:
        server = serve_relay_metrics(worker, port)
        try:
            publish(broker, readings_topic(region, m.ids[0]), b"not json at all")
            publish(broker, readings_topic(region, m.ids[0]), m.sign(0, 1).to_json())
            wait_for(lambda: len(m.on_chain(b0)) == 1 and worker.stats.accepted == 1, 30, "the good reading")
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        finally:
            server[0].shutdown() if isinstance(server, tuple) else None
    assert 'gridcoop_mqtt_relay_readings_total{reason="",result="accepted"} 1.0' in text
    assert 'gridcoop_mqtt_relay_readings_total{reason="NotAReading",result="refused"} 1.0' in text
    assert "gridcoop_mqtt_relay_messages_total 2.0" in text and "gridcoop_mqtt_relay_queue 0.0" in text
    lag = next(line for line in text.splitlines() if line.startswith('gridcoop_mqtt_relay_lag_seconds{which="max"}'))
    assert 0 < float(lag.split()[-1]) < 30  # the good reading's delivery → acknowledgement
    gas = next(line for line in text.splitlines() if line.startswith("gridcoop_mqtt_relay_gas_total"))
    assert float(gas.split()[-1]) > 0


def test_a_reading_the_registry_refuses_is_recorded_with_the_chain_reason(w3, wallets, broker, region, make_meters,
                                                                         tmp_path):
    m = make_meters(1)
    b0 = w3.eth.block_number
    too_much = m.sign(0, 1, export=50_000)  # 20 kW meter: at most 5,000 Wh in 15 minutes
    with ThreadWorker(w3, wallets[8], m.registry, region, broker, tmp_path) as worker:
        publish(broker, readings_topic(region, m.ids[0]), too_much.to_json())
        wait_for(lambda: sum(worker.stats.refused.values()) == 1, 30, "the refusal")
        publish(broker, readings_topic(region, m.ids[0]), m.sign(0, 2).to_json())
        wait_for(lambda: m.on_chain(b0), 30, "the next reading on chain")
        refused = dict(worker.stats.refused)
    assert m.on_chain(b0) == [(m.ids[0], 2)]
    assert list(refused) == ["OverCapacity"] or list(refused)[0] in ("OverCapacity", "ExportExceedsGeneration",
                                                                      "EnergyImbalance")


class _Switch:
    """A TCP forwarder to the node that can be cut: a node that goes away and comes back."""

    def __init__(self, target_port: int):
        import socket
        import threading

        self.target = target_port
        self.up = True
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(64)
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket
        import threading

        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            if not self.up:
                c.close()
                continue
            u = socket.create_connection(("127.0.0.1", self.target))
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a, b):
        try:
            while self.up and (data := a.recv(65536)):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.close()
            except OSError:
                pass


def test_node_going_away_keeps_the_batch_unacknowledged_and_relays_it_when_back(anvil, w3, wallets, broker, region,
                                                                                make_meters, tmp_path):
    from gridcoop_sdk.chain import connect
    from gridcoop_sdk.contracts import at

    m = make_meters(2)
    b0 = w3.eth.block_number
    sw = _Switch(anvil.port)
    w3p = connect(f"http://127.0.0.1:{sw.port}")
    with ThreadWorker(w3p, wallets[8], at(w3p, "MeterRegistry", m.registry.address), region, broker,
                      tmp_path) as worker:
        publish(broker, readings_topic(region, m.ids[0]), m.sign(0, 1).to_json())
        wait_for(lambda: m.on_chain(b0), 30, "the first reading")
        sw.up = False
        publish(broker, readings_topic(region, m.ids[1]), m.sign(1, 1).to_json())
        wait_for(lambda: worker.stats.node_errors >= 2, 30, "the worker noticing the node is down")
        assert len(m.on_chain(b0)) == 1
        sw.up = True
        wait_for(lambda: len(m.on_chain(b0)) == 2, 60, "the second reading once the node is back")
        # counted once the worker has its receipt (after the chain shows it); a transaction that was
        # mined while the worker saw the node fail is found on chain at the retry: already_on_chain
        wait_for(lambda: worker.stats.accepted + worker.stats.already_on_chain == 2, 30, "both counted")
        stats = worker.stats
    assert stats.accepted >= 1 and not stats.refused
    assert sorted(m.on_chain(b0)) == sorted((mid, 1) for mid in m.ids)  # each once


def test_a_backlog_array_is_relayed_in_order_even_beyond_the_batch_size(w3, wallets, broker, region, make_meters,
                                                                       tmp_path):
    m = make_meters(1)
    b0 = w3.eth.block_number
    t = readings_topic(region, m.ids[0])
    backlog = [m.sign(0, s) for s in range(1, 5)]
    with ThreadWorker(w3, wallets[8], m.registry, region, broker, tmp_path, batch_size=2) as worker:
        publish(broker, t, json.dumps([backlog[1].to_dict(), backlog[0].to_dict()]))  # out of order: refused
        wait_for(lambda: worker.stats.refused["NotAReading"] == 1, 30, "the refusal")
        publish(broker, t, json.dumps([s.to_dict() for s in backlog]))
        wait_for(lambda: len(m.on_chain(b0)) == 4, 30, "the backlog on chain")
        wait_for(lambda: worker.stats.accepted == 4, 30, "the backlog counted")  # after the receipt
        stats = worker.stats
    assert m.on_chain(b0) == [(m.ids[0], s) for s in range(1, 5)]
    assert stats.accepted == 4 and stats.batches == 1


def test_a_reading_whose_transaction_fails_is_split_off_kept_and_relayed_later(w3, wallets, broker, region,
                                                                               make_meters, tmp_path, monkeypatch):
    import keeper.mqtt_relay as relay
    from gridcoop_sdk.exceptions import TransactionFailed

    m = make_meters(3)
    b0 = w3.eth.block_number
    real = relay.submit_readings
    poison = {m.ids[1]}

    def flaky(w3_, sender, registry, signed, **kw):
        if any(s.reading.meter_id in poison for s in signed):
            raise TransactionFailed("MeterRegistry.submitReadings reverted: (injected)")
        return real(w3_, sender, registry, signed, **kw)

    monkeypatch.setattr(relay, "submit_readings", flaky)
    with ThreadWorker(w3, wallets[8], m.registry, region, broker, tmp_path, retry_later_s=0.5) as worker:
        for i in range(3):
            publish(broker, readings_topic(region, m.ids[i]), m.sign(i, 1).to_json())
        wait_for(lambda: len(m.on_chain(b0)) == 2, 30, "the two good readings")
        # the worker counts the batch once its split submissions have all returned (after the chain
        # already shows the good readings): wait for that, not just for the chain
        wait_for(lambda: worker.stats.deferred >= 1, 30, "the failing reading kept for later")
        assert not worker.stats.refused
        poison.clear()  # whatever failed has passed: the kept reading goes on chain
        wait_for(lambda: len(m.on_chain(b0)) == 3, 30, "the kept reading")
        wait_for(lambda: worker.stats.accepted == 3, 30, "the kept reading counted")  # after the receipt
        stats = worker.stats
    assert stats.accepted == 3 and not stats.refused


def test_relay_records_each_outcome_in_the_keeper_store_before_acknowledging(w3, wallets, broker, region,
                                                                               make_meters, tmp_path, db_url):
    """`gridcoop relay mqtt --db`: on SQLite and on PostgreSQL, one row per reading and outcome —
    accepted (with its transaction), a re-publish adds none, a refusal carries the registry's reason."""
    from sqlalchemy import select

    from keeper.db import Database, RelayedReadingRow

    m = make_meters(2)
    b0 = w3.eth.block_number
    good = m.sign(0, 1)
    too_much = m.sign(1, 1, export=50_000)  # 20 kW meter: at most 5,000 Wh in 15 minutes
    with ThreadWorker(w3, wallets[8], m.registry, region, broker, tmp_path, db_url=db_url) as worker:
        publish(broker, readings_topic(region, m.ids[0]), good.to_json())
        publish(broker, readings_topic(region, m.ids[1]), too_much.to_json())
        wait_for(lambda: worker.stats.accepted == 1 and sum(worker.stats.refused.values()) == 1, 30, "both handled")
        publish(broker, readings_topic(region, m.ids[0]), good.to_json())  # a late re-publish
        wait_for(lambda: worker.stats.already_on_chain + worker.stats.duplicate_publish >= 1, 30, "the re-publish")
    assert len(m.on_chain(b0)) == 1
    db = Database(db_url)
    try:
        with db.session() as s:
            rows = {(r.meter_id, r.sequence, r.result): r for r in s.scalars(select(RelayedReadingRow))}
    finally:
        db.dispose()
    keys = {(k[0], k[2]) for k in rows}
    assert (good.key()[0], "accepted") in keys and (too_much.key()[0], "refused") in keys
    acc = next(r for k, r in rows.items() if k[2] == "accepted")
    assert acc.tx_hash and acc.tx_hash.startswith("0x") and acc.interval_start == good.reading.interval_start
    ref = next(r for k, r in rows.items() if k[2] == "refused")
    assert ref.reason == "OverCapacity"
    assert sum(1 for k in rows if k[2] == "accepted") == 1  # the re-publish added no second "accepted"


def test_a_keeper_store_that_goes_away_keeps_the_messages_until_it_is_back(w3, wallets, broker, region, make_meters,
                                                                          tmp_path):
    """PostgreSQL stopped while a reading is relayed: the reading goes on chain once, its message stays
    unacknowledged and the failure is counted; once the database is back the outcome is recorded."""
    from sqlalchemy import select

    from gridcoop_sdk.postgres import PostgresServer
    from keeper.db import Database, RelayedReadingRow

    m = make_meters(1)
    b0 = w3.eth.block_number
    with PostgresServer() as pg:
        url = pg.create_database("relay_store")
        with ThreadWorker(w3, wallets[8], m.registry, region, broker, tmp_path, db_url=url) as worker:
            pg.down()
            publish(broker, readings_topic(region, m.ids[0]), m.sign(0, 1).to_json())
            wait_for(lambda: len(m.on_chain(b0)) == 1 and worker.stats.db_errors >= 1, 30, "on chain, store away")
            assert worker.stats.accepted == 0  # not acknowledged while unrecorded
            pg.up()
            wait_for(lambda: worker.stats.accepted == 1, 60, "recorded once the store is back")
        db = Database(url)
        try:
            with db.session() as s:
                rows = list(s.scalars(select(RelayedReadingRow)))
        finally:
            db.dispose()
    assert [(r.sequence, r.result) for r in rows] == [(1, "accepted")]
    assert len(m.on_chain(b0)) == 1  # applied once
