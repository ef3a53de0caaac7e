"""meter_bridge pieces without a chain: register maps, interval builder, config, CLI, HTTP pusher."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from click.testing import CliRunner

from gridcoop.cli import main
from gridcoop_sdk.exceptions import ConfigError
from gridcoop_sdk.readings import Reading, meter_id, sign_reading
from meter_bridge.config import load_config
from meter_bridge.intervals import IntervalBuilder, SiteSample
from meter_bridge.pushers import HttpPusher, PushError
from meter_bridge.registermap import available_maps, load_map

B = 1_800_000_000 // 900 * 900
KEY = "0x" + "42" * 32


def make_signed(seq: int):
    r = Reading(meter_id=meter_id("h"), sequence=seq, interval_start=B + 900 * seq, interval_end=B + 900 * seq + 900,
                generation_wh=10, consumption_wh=10, export_wh=0, import_wh=0, frequency_mhz=50_000)
    return sign_reading(r, KEY, 31337, "0x" + "12" * 20)


def test_bundled_maps_roundtrip_exact_wh():
    assert {"eastron_sdm630", "sunspec_203", "sunspec_213"} <= set(available_maps())
    for name in ("eastron_sdm630", "sunspec_203", "sunspec_213"):
        m = load_map(name)
        first, count = m.span()
        vals = {"import_wh": 1_234_567, "export_wh": 345_678, "frequency": 50_010, "power_w": -1200}
        out = m.decode(m.encode(vals, first, count), first)
        assert round(out["import_wh"]) == 1_234_567 and round(out["export_wh"]) == 345_678, name
        assert abs(out["frequency"] - 50_010) <= 10, name


def test_sdm630_addresses_follow_the_datasheet():
    spec = load_map("eastron_sdm630").spec
    assert (spec.table, spec.points["frequency"].address, spec.points["import_wh"].address,
            spec.points["export_wh"].address, spec.points["power_w"].address) == ("input", 0x46, 0x48, 0x4A, 0x34)


def test_malformed_map_is_refused_with_file_and_key(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\ntable: input\npoints:\n  import_wh: {address: 1, type: float64}\n")
    with pytest.raises(ConfigError) as err:
        load_map(str(p))
    assert "bad.yaml" in str(err.value) and "points.import_wh.type" in str(err.value)
    with pytest.raises(ConfigError, match="no register map named"):
        load_map("nosuchmeter")


def _s(t, imp, exp, gen, f=50_000):
    return SiteSample(t=t, import_wh=imp, export_wh=exp, generation_wh=gen, frequency_mhz=f)


def test_interval_builder_dgcc_quantities():
    b = IntervalBuilder("h", meter_id("h"))
    assert b.feed(_s(B + 2, 100, 50, 1000)) == (None, None)
    assert b.feed(_s(B + 400, 120, 60, 1100)) == (None, None)  # mid-interval: ignored
    r, p = b.feed(_s(B + 905, 110, 250, 1500))
    assert p is None and r is not None
    assert (r.sequence, r.interval_start, r.interval_end) == (B // 900, B, B + 900)
    assert (r.generation_wh, r.import_wh, r.export_wh, r.consumption_wh) == (500, 10, 200, 310)


def test_interval_builder_reports_missed_polls_reset_and_wrap():
    b = IntervalBuilder("h", meter_id("h"))
    b.feed(_s(B + 1, 100, 50, 1000))
    r, p = b.feed(_s(B + 2700 + 1, 200, 60, 1100))  # two boundaries later: a gap, no invented energy
    assert r is None and p.kind == "missed-polls"
    r, p = b.feed(_s(B + 3600 + 1, 5, 0, 1200))  # counters went backwards: reset or wrap
    assert r is None and p.kind == "counter-backwards"
    r, p = b.feed(_s(B + 4500 + 1, 15, 0, 1300))
    assert p is None and r.import_wh == 10 and r.generation_wh == 100
    r, p = b.feed(_s(B + 5400 + 1, 15, 500, 1350))  # export > generation: impossible for one site
    assert r is None and p.kind == "imbalance"


def test_interval_builder_state_roundtrip():
    b = IntervalBuilder("h", meter_id("h"))
    b.feed(_s(B + 1, 100, 50, 1000))
    c = IntervalBuilder("h", meter_id("h"))
    c.restore(json.loads(json.dumps(b.state())))
    r, _ = c.feed(_s(B + 901, 101, 50, 1000))
    assert r is not None and r.import_wh == 1


def test_config_errors_name_file_and_key(tmp_path):
    p = tmp_path / "gw.yaml"
    p.write_text("rpc_url: http://x\nmeters:\n  - name: a\n    key_hex_env: K\n    grid: {map: eastron_sdm630, prot: 5}\n")
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert "gw.yaml" in str(err.value) and "meters[0].grid.prot" in str(err.value) and "unknown key" in str(err.value)
    p.write_text("pusher: http\nmeters:\n  - name: a\n    key_hex_env: K\n    grid: {map: eastron_sdm630}\n")
    with pytest.raises(ConfigError, match="keeper_url"):
        load_config(p)


def test_cli_help_for_every_command():
    runner = CliRunner()
    for cmd in (("bridge", "run"), ("bridge", "simulate"), ("meters", "keygen"), ("bridge", "status"),
                ("meters", "register")):
        res = runner.invoke(main, [*cmd, "--help"])
        assert res.exit_code == 0 and "--" in res.output, cmd


def test_keygen_writes_encrypted_keystore(tmp_path, monkeypatch):
    monkeypatch.setenv("METER_KEY_PASSPHRASE", "correct horse")
    runner = CliRunner()
    res = runner.invoke(main, ["meters", "keygen", "--out", str(tmp_path / "k.json")])
    assert res.exit_code == 0, res.output
    ks = json.loads((tmp_path / "k.json").read_text())
    assert "crypto" in ks and res.output.strip().lower().endswith(ks["address"].lower())
    res = runner.invoke(main, ["meters", "keygen", "--out", str(tmp_path / "k.json")])
    assert res.exit_code != 0 and "refusing to overwrite" in res.output


class _Keeper(BaseHTTPRequestHandler):
    mode = "ok"
    seen: list = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Keeper.seen.append(body)
        if _Keeper.mode == "ok":
            rs = body["readings"]
            out = {"accepted": [{"meter_id": rs[0]["meter_id"], "sequence": rs[0]["sequence"]}],
                   "duplicates": [],
                   "rejected": [{"meter_id": rs[1]["meter_id"], "sequence": rs[1]["sequence"], "reason": "OverCapacity"}]}
            data, code = json.dumps(out).encode(), 200
        else:
            data, code = b"busy", 503
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


def test_http_pusher_request_and_response_shape():
    srv = HTTPServer(("127.0.0.1", 0), _Keeper)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        batch = [make_signed(1), make_signed(2)]
        pusher = HttpPusher(f"http://127.0.0.1:{srv.server_port}")
        res = pusher.push(batch)
        assert _Keeper.seen[-1]["readings"][0] == batch[0].to_dict()
        assert res.accepted == [batch[0].key()]
        assert res.rejected == [(batch[1].key()[0], 2, "OverCapacity")]
        _Keeper.mode = "down"
        with pytest.raises(PushError, match="HTTP 503"):
            pusher.push(batch)
    finally:
        srv.shutdown()


def test_mbpoll_reads_the_simulator():
    assert shutil.which("mbpoll"), "Debian's mbpoll is not on PATH: `make setup` puts it in .venv/bin"
    from gridcoop_sdk.chain import free_port
    from meter_bridge.simulator import Household, ManualClock, MeterSimulator

    port = free_port()
    with MeterSimulator([Household("h", grid_unit=1, pv_unit=2, pv_peak_w=4000)], clock=ManualClock(B), port=port):
        out = subprocess.run(["mbpoll", "-a", "1", "-B", "-t", "3:float", "-r", "71", "-c", "3", "-p", str(port),
                              "-1", "127.0.0.1"], capture_output=True, text=True, timeout=20).stdout
        assert "[73]: \t1000" in out and "[75]: \t200" in out, out
        out = subprocess.run(["mbpoll", "-a", "2", "-t", "4:hex", "-r", "40001", "-c", "2", "-p", str(port),
                              "-1", "127.0.0.1"], capture_output=True, text=True, timeout=20).stdout
        assert "0x5375" in out and "0x6E53" in out, out
