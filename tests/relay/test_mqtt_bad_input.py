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
