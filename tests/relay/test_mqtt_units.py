"""Pieces of the MQTT path without a broker: topics, the fast signer recovery and call data, the
gateway's mqtt config, the broker's generated config."""

from __future__ import annotations

import os

import pytest
from eth_account import Account
from web3 import Web3

from gridcoop_sdk.contracts import at
from gridcoop_sdk.exceptions import ConfigError, GridcoopError
from gridcoop_sdk.meters import _submit_call_data
from gridcoop_sdk.mqtt import Mosquitto, parse_broker_url, readings_topic, shared_subscription, topic_meter
from gridcoop_sdk.orders import recover_signer
from gridcoop_sdk.readings import Reading, ReadingSigner, SignedReading, meter_id

_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _signed(key=None) -> tuple[SignedReading, str]:
    acct = Account.create() if key is None else Account.from_key(key)
    r = Reading(meter_id=meter_id(os.urandom(8).hex()), sequence=3, interval_start=900, interval_end=1800,
                generation_wh=5, consumption_wh=3, export_wh=2, import_wh=0, frequency_mhz=50_000)
    return ReadingSigner(acct.key, 31337, "0x" + "ab" * 20).sign(r), acct.address


def test_topics():
    mid = meter_id("house-1")
    t = readings_topic("sakura", mid)
    assert t == f"gridcoop/sakura/readings/0x{mid.hex()}"
    assert topic_meter(t, "sakura") == mid
    assert topic_meter(t, "kaede") is None
    assert topic_meter("gridcoop/sakura/readings/house-1", "sakura") is None
    assert topic_meter("gridcoop/sakura/readings/0x00/extra", "sakura") is None
    assert shared_subscription("sakura") == "$share/relay/gridcoop/sakura/readings/#"
    for bad in ("a/b", "a+", "#", "", "x" * 65):
        with pytest.raises(GridcoopError):
            readings_topic(bad, mid)
    assert parse_broker_url("mqtt://10.0.0.1:1884") == ("10.0.0.1", 1884)
    assert parse_broker_url("broker") == ("broker", 1883)
    with pytest.raises(GridcoopError):
        parse_broker_url("http://broker:80")


def test_fast_recovery_equals_the_contract_rules():
    for _ in range(20):
        s, addr = _signed()
        assert s.fast_digest() == s.digest()
        assert s.recover_signer() == addr == recover_signer(s.digest(), s.signature)
    s, _ = _signed()
    r, sv, v = s.signature[:32], int.from_bytes(s.signature[32:64], "big"), s.signature[64]
    high_s = r + (_N - sv).to_bytes(32, "big") + bytes([55 - v])      # the malleable twin: refused
    bad_v = s.signature[:64] + bytes([29])
    for sig in (high_s, bad_v, b"\x00" * 65):
        t = SignedReading(reading=s.reading, signature=sig, chain_id=s.chain_id, registry=s.registry)
        assert t.recover_signer() is None
        assert recover_signer(t.digest(), sig) is None


def test_submit_call_data_equals_web3s_encoding():
    reg = at(Web3(), "MeterRegistry", "0x" + "11" * 20)
    tuples = [(os.urandom(32), i + 1, 900, 1800, 5, 6, 7, 8, 50_000 + i) for i in range(5)]
    sigs = [os.urandom(65) for _ in range(5)]
    assert _submit_call_data(reg, tuples, sigs) == bytes.fromhex(reg.encode_abi("submitReadings", [tuples, sigs])[2:])


def test_gateway_config_for_the_mqtt_pusher(tmp_path):
    from meter_bridge.config import load_config

    base = ("chain_id: 31337\nregistry: '0x" + "ab" * 20 + "'\nmeters:\n  - name: m\n    key_hex_env: K\n"
            "    grid: {map: eastron_sdm630}\n")
    p = tmp_path / "gw.yaml"
    p.write_text(base + "pusher: mqtt\nmqtt_url: mqtt://127.0.0.1:1883\nregion: sakura\n")
    cfg = load_config(p)
    assert cfg.pusher == "mqtt" and cfg.resend_after == 600
    for extra, words in (("pusher: mqtt\nregion: sakura\n", "mqtt_url"),
                         ("pusher: mqtt\nmqtt_url: mqtt://h\n", "region"),
                         ("pusher: mqtt\nmqtt_url: mqtt://h\nregion: a/b\n", "topic level"),
                         ("pusher: mqtt\nmqtt_url: http://h\nregion: r\n", "mqtt://")):
        p.write_text(base + extra)
        with pytest.raises(ConfigError, match=words):
            load_config(p)


def test_broker_config_persists_and_bounds_nothing(tmp_path):
    conf = Mosquitto(data_dir=tmp_path, port=18830).config()
    for line in ("listener 18830 127.0.0.1", "persistence true", f"persistence_location {tmp_path}/",
                 "max_queued_messages 0", "max_inflight_messages 0"):
        assert line in conf
    assert ("user root" in conf) == (os.geteuid() == 0)
