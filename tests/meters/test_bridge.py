"""End to end: simulator ⇄ real Modbus TCP ⇄ meter_bridge ⇄ anvil; outage and SIGKILL recovery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from eth_account import Account

from gridcoop_sdk import Anvil
from gridcoop_sdk.chain import connect, free_port
from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.meters import deploy_meters, register_meter
from gridcoop_sdk.readings import ReadingSigner, SignedReading, meter_id
from meter_bridge.clock import FileClock
from meter_bridge.gateway import Gateway, Site
from meter_bridge.intervals import IntervalBuilder
from meter_bridge.outbox import Outbox
from meter_bridge.pushers import DirectPusher
from meter_bridge.reader import ModbusMeterReader
from meter_bridge.registermap import load_map
from meter_bridge.simulator import Household, ManualClock, MeterSimulator

from .conftest import ChainClock, warp

DAY0 = 1_800_000_000 // 86400 * 86400
WH = 10**15


def _households():
    return [
        Household("house-1", grid_unit=1, pv_unit=2, pv_peak_w=6000, battery_wh=4000, battery_power_w=1500),
        Household("house-2", grid_unit=3, grid_map="sunspec_203", load_kwh_day=12),
    ]


def _register(w3, deployer, registry, owners, keys):
    register_meter(w3, deployer, registry, meter_id=meter_id("house-1"), signer=keys[0].address,
                   owner=owners[0].address, kind="prosumer", colour="solar", certified=True, rated_power_w=10_000)
    register_meter(w3, deployer, registry, meter_id=meter_id("house-2"), signer=keys[1].address,
                   owner=owners[1].address, kind="consumer", colour="grid", certified=False, rated_power_w=10_000)


def _gateway(w3, registry, keys, port, clock, outbox_path, gas):
    sites = []
    for i, (name, grid_map, pv) in enumerate((("house-1", "eastron_sdm630", 2), ("house-2", "sunspec_203", None))):
        sites.append(Site(
            name=name,
            signer=ReadingSigner(keys[i].key, w3.eth.chain_id, registry.address),
            grid=ModbusMeterReader(load_map(grid_map), port=port, unit=2 * i + 1),
            generation=ModbusMeterReader(load_map("sunspec_213"), port=port, unit=pv) if pv else None,
            builder=IntervalBuilder(name, meter_id(name)),
        ))
    return Gateway(sites, Outbox(outbox_path, clock=clock), DirectPusher(w3, gas, registry), clock=clock,
                   backoff_initial=0.0)


def _minted_to(w3, watt, who: str, from_block: int = 0) -> int:
    ev = watt.events.Transfer().get_logs(from_block=from_block, argument_filters={"to": who})
    return sum(e.args.value for e in ev if e.args["from"] == "0x" + "00" * 20)


@pytest.fixture
def keys():
    return [Account.create(), Account.create()]


def test_simulator_to_chain_mints_exact_export(w3, deployer, wallets, watt, deployments_dir, tmp_path, keys):
    registry = deploy_meters(w3, deployer, watt)
    owners = [wallets[6], wallets[7]]
    _register(w3, deployer, registry, owners, keys)
    clock = ChainClock(DAY0 + 9 * 3600 + 3, w3)
    port = free_port()
    with MeterSimulator(_households(), clock=clock, port=port) as sim:
        gw = _gateway(w3, registry, keys, port, clock, tmp_path / "outbox.sqlite", wallets[4])
        start = {h: sim.counters(h) for h in ("house-1", "house-2")}
        gw.poll_once()  # anchors
        for k in range(1, 9):
            clock.set(DAY0 + 9 * 3600 + 900 * k + 3)
            signed = gw.poll_once()
            assert len(signed) == 2
            if k % 3 == 0:
                gw.push_once()
        end = {h: sim.counters(h) for h in ("house-1", "house-2")}
        gw.drain()
        gw.close()
    exported = end["house-1"]["export_wh"] - start["house-1"]["export_wh"]
    assert exported > 0
    assert _minted_to(w3, watt, owners[0].address) == exported * WH
    # house-2 only consumes: no WATT, its imports are recorded as energy debt.
    assert watt.functions.balanceOf(owners[1].address).call() == 0
    imported = end["house-2"]["import_wh"] - start["house-2"]["import_wh"]
    assert registry.functions.energyDebtWh(owners[1].address).call() == imported > 0
    st = Outbox(tmp_path / "outbox.sqlite").status()
    assert st["pending"] == 0 and st["rejected"] == 0 and st["accepted"] == 16


def test_outbox_grows_while_node_is_down_and_drains(deployer, wallets, tmp_path, keys, monkeypatch):
    monkeypatch.setenv("GRIDCOOP_DEPLOYMENTS", str(tmp_path / "deployments"))
    with Anvil() as node:
        w3 = node.w3
        watt = deploy(w3, deployer, "WattToken", deployer.address)
        registry = deploy_meters(w3, deployer, watt)
        owners = [wallets[6], wallets[7]]
        _register(w3, deployer, registry, owners, keys)
        fast = connect(node.url, timeout=1.0)
        clock = ManualClock(DAY0 + 10 * 3600 + 2)
        port = free_port()
        with MeterSimulator(_households(), clock=clock, port=port) as sim:
            gw = _gateway(fast, registry, keys, port, clock, tmp_path / "o.sqlite", wallets[4])
            start = sim.counters("house-1")
            gw.poll_once()
            node.proc.send_signal(signal.SIGSTOP)
            try:
                for k in range(1, 5):
                    clock.set(DAY0 + 10 * 3600 + 900 * k + 2)
                    gw.poll_once()
                    assert gw.push_once() is None  # node frozen: the push fails, nothing is lost
                assert gw.outbox.count("pending") == 8
                assert "push-error" == gw.outbox.status()["last_error"]["kind"]
            finally:
                node.proc.send_signal(signal.SIGCONT)
            warp(w3, int(clock()))  # the chain's clock, frozen with the node, catches up
            end = sim.counters("house-1")
            gw.drain()
            assert gw.outbox.count("pending") == 0
            gw.close()
        assert _minted_to(w3, watt, owners[0].address) == (end["export_wh"] - start["export_wh"]) * WH


def _wait(pred, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _set_clock(path: Path, t: float, w3=None) -> None:
    """Set the bridge's file clock (and the chain's, which follows it)."""
    if w3 is not None:
        warp(w3, int(t))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(str(t))
    os.replace(tmp, path)


@pytest.mark.slow
def test_sigkill_between_signing_and_pushing_and_in_flight(anvil, w3, deployer, wallets, watt, deployments_dir,
                                                            tmp_path, keys):
    registry = deploy_meters(w3, deployer, watt)
    owners = [wallets[6], wallets[7]]
    _register(w3, deployer, registry, owners, keys)
    block0 = w3.eth.block_number
    clock_path = tmp_path / "clock"
    base = DAY0 + 11 * 3600
    _set_clock(clock_path, base + 1, w3)
    port = free_port()
    outbox = tmp_path / "outbox.sqlite"
    cfg = {
        "rpc_url": anvil.url, "registry": registry.address, "outbox": str(outbox), "pusher": "direct",
        "gas_key_env": "TEST_GAS_KEY", "poll_interval": 0.05,
        "meters": [
            {"name": "house-1", "key_hex_env": "TEST_KEY_1",
             "grid": {"port": port, "unit": 1, "map": "eastron_sdm630"},
             "generation": {"port": port, "unit": 2, "map": "sunspec_213"}},
            {"name": "house-2", "key_hex_env": "TEST_KEY_2", "grid": {"port": port, "unit": 3, "map": "sunspec_203"}},
        ],
    }
    (tmp_path / "gw.yaml").write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, TEST_GAS_KEY=wallets[5].key.hex(), TEST_KEY_1=keys[0].key.hex(),
               TEST_KEY_2=keys[1].key.hex())

    def start(fault: str = "") -> subprocess.Popen:
        e = dict(env, METER_BRIDGE_FAULT=fault)
        return subprocess.Popen([sys.executable, "-m", "gridcoop", "bridge", "run", "--config", str(tmp_path / "gw.yaml"),
                                 "--clock-file", str(clock_path)], env=e, stdout=subprocess.DEVNULL,
                                stderr=open(tmp_path / "gw.log", "ab"))

    def status():
        return Outbox(outbox).status() if outbox.exists() else {"pending": 0, "accepted": 0}

    with MeterSimulator(_households(), clock=FileClock(str(clock_path)), port=port) as sim:
        start_counts = sim.counters("house-1")
        p = start("after-store:3")  # killed after storing the 3rd reading, before pushing it
        try:
            _wait(lambda: Outbox(outbox).anchor("house-2") is not None if outbox.exists() else False, what="anchors")
            _set_clock(clock_path, base + 900 + 1, w3)
            _wait(lambda: status()["accepted"] == 2, what="first interval on chain")
            _set_clock(clock_path, base + 1800 + 1, w3)
            assert p.wait(60) == -signal.SIGKILL
            assert status()["pending"] == 1
            p = start("after-push:1")  # pushes the stored reading, killed before marking it
            assert p.wait(60) == -signal.SIGKILL
            assert status()["pending"] >= 1  # on chain, but the outbox does not know yet
            _set_clock(clock_path, base + 2700 + 1, w3)
            p = start()
            _wait(lambda: status()["pending"] == 0 and status()["accepted"] == 6, what="outbox drained")
            end_counts = sim.counters("house-1")
        finally:
            if p.poll() is None:
                p.terminate()
                p.wait(20)
    accepted = registry.events.ReadingAccepted().get_logs(from_block=block0)
    keys_seen = [(e.args.meterId, e.args.sequence) for e in accepted]
    assert len(keys_seen) == 6 and len(set(keys_seen)) == 6  # every interval exactly once
    assert _minted_to(w3, watt, owners[0].address, block0) == (end_counts["export_wh"] - start_counts["export_wh"]) * WH


def test_http_relay_path_end_to_end(w3, deployer, wallets, watt, deployments_dir, tmp_path, keys):
    """Gateway without gas → HttpPusher → a relay built on relay_readings → chain."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from gridcoop_sdk.meters import relay_readings
    from gridcoop_sdk.readings import ReadingError
    from meter_bridge.pushers import HttpPusher

    registry = deploy_meters(w3, deployer, watt)
    owners = [wallets[6], wallets[7]]
    _register(w3, deployer, registry, owners, keys)
    relayer = wallets[8]

    class Relay(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            try:
                out, code = json.dumps(relay_readings(w3, relayer, registry, body)).encode(), 200
            except ReadingError as exc:
                out, code = str(exc).encode(), 400
            self.send_response(code)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *a):
            pass

    srv = HTTPServer(("127.0.0.1", 0), Relay)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    clock = ChainClock(DAY0 + 12 * 3600 + 5, w3)
    port = free_port()
    try:
        with MeterSimulator(_households(), clock=clock, port=port) as sim:
            gw = _gateway(w3, registry, keys, port, clock, tmp_path / "o.sqlite", relayer)
            gw.pusher = HttpPusher(f"http://127.0.0.1:{srv.server_port}")
            start = sim.counters("house-1")
            gw.poll_once()
            for k in (1, 2, 3):
                clock.set(DAY0 + 12 * 3600 + 900 * k + 5)
                gw.poll_once()
            end = sim.counters("house-1")
            gw.drain()
            assert gw.outbox.count("pending") == 0 and gw.outbox.count("accepted") == 6
            # Re-push everything through the relay: all duplicates, nothing minted twice.
            bodies = [r[0] for r in gw.outbox.db.execute("SELECT body FROM readings").fetchall()]
            again = gw.pusher.push([SignedReading.from_json(b) for b in bodies])
            assert not again.accepted and len(again.duplicates) == 6
            gw.close()
        assert _minted_to(w3, watt, owners[0].address) == (end["export_wh"] - start["export_wh"]) * WH
    finally:
        srv.shutdown()


def test_cli_register_and_status(anvil, w3, deployer, wallets, watt, deployments_dir, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from gridcoop.cli import main
    from gridcoop_sdk.meters import SubmitResult, get_meter
    from gridcoop_sdk.readings import Reading

    registry = deploy_meters(w3, deployer, watt)
    runner = CliRunner()
    monkeypatch.setenv("METER_KEY_PASSPHRASE", "pw")
    assert runner.invoke(main, ["meters", "keygen", "--out", str(tmp_path / "dev.json")]).exit_code == 0
    monkeypatch.setenv("GRIDCOOP_REGISTRAR_KEY", deployer.key.hex())
    res = runner.invoke(main, ["meters", "register", "--rpc-url", anvil.url, "--registry", registry.address,
                               "--meter", "house-9", "--key-file", str(tmp_path / "dev.json"),
                               "--owner", wallets[6].address, "--kind", "prosumer", "--colour", "wind",
                               "--certified", "--rated-power-w", "7000", "--location", "xn76"])
    assert res.exit_code == 0, res.output
    m = get_meter(registry, "house-9")
    assert (m["owner"], m["colour"], m["certified"], m["rated_power_w"]) == (wallets[6].address, "wind", True, 7000)
    # A registrar without the role gets the decoded error, not a traceback.
    monkeypatch.setenv("GRIDCOOP_REGISTRAR_KEY", wallets[5].key.hex())
    res = runner.invoke(main, ["meters", "register", "--rpc-url", anvil.url, "--registry", registry.address,
                               "--meter", "house-10", "--signer", wallets[5].address, "--owner", wallets[6].address,
                               "--kind", "consumer", "--rated-power-w", "7000"])
    assert res.exit_code == 1 and "AccessControlUnauthorizedAccount" in res.output
    # the role by its name, not its hash
    assert "lacks REGISTRAR_ROLE" in res.output
    assert bytes(registry.functions.REGISTRAR_ROLE().call()).hex() not in res.output

    ob = Outbox(tmp_path / "o.sqlite")
    r = Reading(meter_id=meter_id("house-9"), sequence=5, interval_start=4500, interval_end=5400, generation_wh=1,
                consumption_wh=1, export_wh=0, import_wh=0, frequency_mhz=50_000)
    s = ReadingSigner(Account.create().key, w3.eth.chain_id, registry.address).sign(r)
    ob.add("house-9", s, None)
    ob.mark(SubmitResult(rejected=[(s.key()[0], 5, "BadSignature")]))
    ob.close()
    res = runner.invoke(main, ["bridge", "status", "--outbox", str(tmp_path / "o.sqlite")])
    assert res.exit_code == 0 and "refused house-9 sequence 5: BadSignature" in res.output
    assert "pending:  0" in res.output


def test_gateway_clock_ahead_of_chain_keeps_readings_pending_until_the_chain_catches_up(
        w3, deployer, wallets, watt, deployments_dir, tmp_path, keys):
    """A gateway whose clock runs 10 minutes ahead of the chain (beyond the registry's 120 s
    maxClockDrift) gets FutureInterval for a just-closed interval: the reading is not lost or
    marked rejected, it stays pending and is accepted once the chain's clock reaches its end."""
    registry = deploy_meters(w3, deployer, watt)
    owners = [wallets[6], wallets[7]]
    _register(w3, deployer, registry, owners, keys)
    base = DAY0 + 13 * 3600
    clock = ManualClock(base + 5)
    warp(w3, base + 5)
    port = free_port()
    with MeterSimulator(_households(), clock=clock, port=port) as sim:
        gw = _gateway(w3, registry, keys, port, clock, tmp_path / "o.sqlite", wallets[4])
        start = sim.counters("house-1")
        gw.poll_once()
        clock.set(base + 900 + 5)
        assert len(gw.poll_once()) == 2
        end = sim.counters("house-1")  # the interval's end, as the reading measured it
        res = gw.push_once()
        assert res is not None and {r[2] for r in res.rejected} == {"FutureInterval"}
        assert gw.outbox.count("pending") == 2 and gw.outbox.count("rejected") == 0
        assert gw.next_push_at == clock() + gw.defer_s  # no busy loop: pushed again later
        gw.drain()  # returns at once: the push is deferred
        assert gw.outbox.count("pending") == 2
        warp(w3, base + 900 + 5)  # the chain's clock catches up
        clock.set(gw.next_push_at)
        gw.drain()
        assert gw.outbox.count("pending") == 0 and gw.outbox.count("accepted") == 2
        gw.close()
    assert _minted_to(w3, watt, owners[0].address) == (end["export_wh"] - start["export_wh"]) * WH
