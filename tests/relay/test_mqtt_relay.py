"""MQTT ingestion end to end, all parts real: Debian's Mosquitto, anvil, the meter bridge (Modbus
simulator -> gateway with `pusher: mqtt`) and two `gridcoop relay mqtt` worker processes sharing
the stream. A worker is SIGKILLed mid-stream and restarted, the broker is restarted: every reading
is on chain exactly once (ReadingAccepted logs)."""

from __future__ import annotations

import time
from collections import Counter

from gridcoop_sdk.chain import free_port
from meter_bridge.gateway import Gateway, Site
from meter_bridge.intervals import IntervalBuilder
from meter_bridge.outbox import Outbox
from meter_bridge.pushers import MqttPusher
from meter_bridge.reader import ModbusMeterReader
from meter_bridge.registermap import load_map
from meter_bridge.simulator import Household, ManualClock, MeterSimulator

from .conftest import WorkerProc, wait_for, warp


def _exactly_once(m, b0, expected):
    got = m.on_chain(b0)
    dup = {k: n for k, n in Counter(got).items() if n > 1}
    return set(got) == set(expected) and not dup, got, dup


def test_two_workers_one_sigkilled_and_restarted_and_a_broker_restart_lose_and_duplicate_nothing(
        anvil, w3, wallets, broker, region, make_meters, tmp_path):
    n, rounds = 40, 4
    m = make_meters(n)
    b0 = w3.eth.block_number
    a = WorkerProc(anvil, broker, m.registry, region, "relay-a", wallets[8].key.hex(), tmp_path,
                   ["--batch-size", "8"]).start()
    b = WorkerProc(anvil, broker, m.registry, region, "relay-b", wallets[9].key.hex(), tmp_path,
                   ["--batch-size", "8"]).start()
    a.wait_subscribed()
    b.wait_subscribed()  # the shared subscription exists before anything is published
    pusher = MqttPusher(broker.url, region, client_id="bench-gateway", timeout=20)
    expected = []
    try:
        for seq in range(1, rounds + 1):
            batch = [m.sign(i, seq) for i in range(n)]
            expected += [(mid, seq) for mid in m.ids]
            todo = list(batch)
            while todo:  # what the broker did not acknowledge is published again (as the outbox does)
                try:
                    sent = set(pusher.push(todo).sent)
                except Exception:
                    sent = set()
                    time.sleep(0.5)
                todo = [s for s in todo if s.key() not in sent]
            if seq == 2:
                # SIGKILL worker a once it has relayed part of this round, restart it under the same id
                wait_for(lambda seq=seq: sum(1 for _, s in m.on_chain(b0) if s == seq) >= 8, 60, "part of round 2")
                a.kill()
                time.sleep(0.5)
                a.start()
                # b keeps relaying meanwhile; a gets its unacknowledged messages back when it reconnects
            if seq == 3:
                broker.restart(down_s=0.5)  # workers and the publisher reconnect; sessions survive
            wait_for(lambda seq=seq: sum(1 for _, s in m.on_chain(b0) if s == seq) == n, 120, f"round {seq} on chain")
        ok, got, dup = _exactly_once(m, b0, expected)
        assert ok, (len(got), len(set(got)), dup, set(expected) - set(got))
        time.sleep(1.0)  # anything still in flight would show up now
        assert len(m.on_chain(b0)) == n * rounds
    finally:
        pusher.close()
        a.stop()
        b.stop()
    sa, sb = a.stats(), b.stats()
    assert sa.get("batches", 0) > 0 and sb.get("batches", 0) > 0, (sa, sb)  # both took a share
    assert not sa.get("refused") and not sb.get("refused"), (sa, sb)


def test_bridge_with_mqtt_pusher_to_chain_through_two_workers(anvil, w3, wallets, broker, region, make_meters,
                                                             tmp_path):
    """The real gateway: simulated Modbus meters -> intervals -> signed -> outbox -> MQTT (PUBACK ->
    'sent') -> workers -> chain; reconcile turns 'sent' into 'accepted' from the chain's view."""
    m = make_meters(2)
    b0 = w3.eth.block_number
    day = (m.start // 86400 + 1) * 86400  # a morning after the meters were registered
    clock = ManualClock(day + 9 * 3600 + 3)
    warp(w3, int(clock()))
    hh = [Household("house-1", grid_unit=1, pv_unit=2, pv_peak_w=6000),
          Household("house-2", grid_unit=3, pv_unit=4, pv_peak_w=3000, load_kwh_day=12)]
    port = free_port()
    workers = [WorkerProc(anvil, broker, m.registry, region, f"relay-{x}", wallets[8 + j].key.hex(), tmp_path).start()
               for j, x in enumerate("ab")]
    for w in workers:
        w.wait_subscribed()
    try:
        with MeterSimulator(hh, clock=clock, port=port):
            sites = [Site(name=f"house-{i + 1}", signer=m.signers[i],
                          grid=ModbusMeterReader(load_map("eastron_sdm630"), port=port, unit=2 * i + 1),
                          generation=ModbusMeterReader(load_map("sunspec_213"), port=port, unit=2 * i + 2),
                          builder=IntervalBuilder(f"house-{i + 1}", m.ids[i])) for i in range(2)]
            registry = m.registry
            gw = Gateway(sites, Outbox(tmp_path / "outbox.sqlite", clock=clock),
                         MqttPusher(broker.url, region, client_id="gw-test", timeout=20), clock=clock,
                         backoff_initial=0.0, resend_after=3600,
                         chain_view=lambda mid: int(registry.functions.getMeter(mid).call()[8]))
            gw.poll_once()  # anchors
            for k in range(1, 7):
                clock.set(day + 9 * 3600 + 900 * k + 3)
                warp(w3, int(clock()))
                assert len(gw.poll_once()) == 2
                if k % 3 == 0:
                    gw.drain()  # three readings per meter: one message each, in order
                if k == 4:
                    broker.restart(down_s=0.3)
            gw.drain()
            st = gw.outbox.status()
            assert st["pending"] == 0 and st["sent"] == 12, st
            wait_for(lambda: len(m.on_chain(b0)) == 12, 90, "the 12 readings on chain")
            gw.reconcile()
            st = gw.outbox.status()
            gw.close()
    finally:
        for w in workers:
            w.stop()
    assert st["sent"] == 0 and st["accepted"] == 12 and st["rejected"] == 0, st
    got = m.on_chain(b0)
    assert len(got) == len(set(got)) == 12 and Counter(mid for mid, _ in got) == {mid: 6 for mid in m.ids}, got
