"""Fixtures for the MQTT ingestion tests: a real Mosquitto broker (Debian's, from .tools/), a fresh
MeterRegistry with a few registered meters, and relay workers as real `gridcoop relay mqtt`
processes (or in a thread, for the bad-input checks)."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from gridcoop_sdk.meters import deploy_meters, register_meter
from gridcoop_sdk.mqtt import Mosquitto
from gridcoop_sdk.readings import Reading, ReadingSigner, meter_id

T0 = 1_800_000_000 // 900 * 900


def warp(w3, ts: int) -> None:
    now = w3.eth.get_block("latest")["timestamp"]
    if ts > now:
        w3.provider.make_request("evm_setNextBlockTimestamp", [int(ts)])
        w3.provider.make_request("evm_mine", [])


def wait_for(pred, timeout: float = 60.0, what: str = "condition", every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture(autouse=True)
def _chain_restored(w3):
    """These tests move the session chain's clock forward; the snapshot puts clock and state back."""
    snap = w3.provider.make_request("evm_snapshot", [])["result"]
    yield
    w3.provider.make_request("evm_revert", [snap])


@pytest.fixture
def broker(tmp_path):
    with Mosquitto(data_dir=tmp_path / "mosquitto") as b:
        yield b


@pytest.fixture
def region():
    return "t" + uuid.uuid4().hex[:10]  # its own topics and sessions per test


class Meters:
    """``n`` registered meters with device keys; sign reading ``seq`` of meter ``i``."""

    def __init__(self, w3, deployer, registry, n: int, owner: str):
        self.w3, self.registry = w3, registry
        self.ids = [meter_id(f"relay-test/{uuid.uuid4().hex}/{i}") for i in range(n)]
        self.keys = [Account.create() for _ in range(n)]
        for mid, k in zip(self.ids, self.keys, strict=True):
            register_meter(w3, deployer, registry, meter_id=mid, signer=k.address, owner=owner, kind="prosumer",
                           colour="solar", certified=False, rated_power_w=20_000)
        self.signers = [ReadingSigner(k.key, w3.eth.chain_id, registry.address) for k in self.keys]
        # the first whole interval after registration is `start`; the chain's clock is moved past the
        # intervals the tests sign (sequence s -> interval start + (s-1)*900)
        now = w3.eth.get_block("latest")["timestamp"]
        self.start = (now // 900 + 1) * 900
        warp(w3, self.start + 900 * 40)

    def sign(self, i: int, seq: int, *, export: int = 100):
        s = self.start + (seq - 1) * 900
        return self.signers[i].sign(Reading(meter_id=self.ids[i], sequence=seq, interval_start=s, interval_end=s + 900,
                                            generation_wh=200 + export, consumption_wh=200, export_wh=export,
                                            import_wh=0, frequency_mhz=50_000))

    def on_chain(self, from_block: int = 0) -> list[tuple[bytes, int]]:
        """(meter id, sequence) of every ReadingAccepted of these meters since ``from_block``."""
        logs = self.w3.eth.get_logs({"address": self.registry.address, "fromBlock": from_block,
                                     "topics": [self.registry.events.ReadingAccepted().topic]})
        mine = set(self.ids)
        out = []
        for lg in logs:
            mid = bytes(lg["topics"][1])
            if mid in mine:
                out.append((mid, int.from_bytes(bytes(lg["topics"][2]), "big")))
        return out


@pytest.fixture
def make_meters(w3, deployer, watt, deployments_dir, wallets):
    def make(n: int):
        registry = deploy_meters(w3, deployer, watt)
        return Meters(w3, deployer, registry, n, wallets[3].address)
    return make


def WorkerProc(anvil, broker, registry, region: str, client_id: str, key: str, workdir: Path,  # noqa: N802
               extra: list[str] | None = None):
    """A `gridcoop relay mqtt` process (bench.scale.Worker) with a short batching window."""
    from bench.scale import Worker

    return Worker(anvil.url, broker.url, registry.address, region, client_id, key, workdir,
                  ["--window", "0.2", *(extra or [])])


class ThreadWorker:
    """A RelayWorker in a thread of the test process (fast to start; for the bad-input checks)."""

    def __init__(self, w3, account, registry, region, broker, workdir: Path, **kw):
        from keeper.mqtt_relay import RelayWorker

        self.refusals = workdir / "refusals.jsonl"
        self.worker = RelayWorker(w3, account, registry, region=region, broker_url=broker.url,
                                  client_id=f"w-{uuid.uuid4().hex[:8]}", window_s=0.1, refusals_path=self.refusals,
                                  stats_every=0.5, **kw)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.worker.run, args=(self.stop_event,), daemon=True)

    def __enter__(self):
        self.thread.start()
        wait_for(self.worker.subscribed.is_set, 10, "the worker's SUBACK")
        return self.worker

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join(20)


def publish(broker, topic: str, payload: bytes | str, *, qos: int = 1) -> None:
    """One QoS 1 message from a throw-away MQTT v5 client, waiting for the PUBACK."""
    import paho.mqtt.client as mqtt

    from gridcoop_sdk.mqtt import parse_broker_url

    host, port = parse_broker_url(broker.url)
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
    c.connect(host, port)
    c.loop_start()
    try:
        c.publish(topic, payload, qos=qos).wait_for_publish(10)
    finally:
        c.disconnect()
        c.loop_stop()


__all__ = ["Web3", "publish", "wait_for", "warp"]
