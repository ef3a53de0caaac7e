"""Bad config files and bad options for every area of the `gridcoop` CLI (bridge, meters, keeper,
market, region, demo): a clear message naming the file/key/option, a non-zero exit, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from click.testing import CliRunner

from gridcoop.cli import main
from gridcoop_sdk.chain import free_port
from gridcoop_sdk.exceptions import ConfigError
from gridcoop_sdk.region_config import CONFIG_DIR, load_region

DEAD_RPC = "http://127.0.0.1:{port}"
ADDR = "0x" + "12" * 20
KEY = "0x" + "11" * 32


def _check(result, expect: str, code: int | tuple = (1, 2)):
    out = result.output + (getattr(result, "stderr", "") if result.stderr_bytes is not None else "")
    codes = code if isinstance(code, tuple) else (code,)
    assert result.exit_code in codes, (result.exit_code, out, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in out, out
    assert expect.lower() in out.lower(), (expect, out)


def _gateway_cfg(**over) -> dict:
    cfg = {"chain_id": 31337, "registry": ADDR, "pusher": "http", "keeper_url": "http://127.0.0.1:9",
           "outbox": "o.sqlite",
           "meters": [{"name": "m1", "key_hex_env": "HOSTILE_DEV_KEY", "grid": {"port": 5020, "unit": 1,
                                                                              "map": "eastron_sdm630"}}]}
    cfg.update(over)
    return cfg


def _meter(**over) -> dict:
    m = {"name": "m1", "key_hex_env": "HOSTILE_DEV_KEY", "grid": {"port": 5020, "unit": 1, "map": "eastron_sdm630"}}
    m.update(over)
    return m


GATEWAY_CASES = [
    ("missing", None, "file not found"),
    ("empty", b"", "empty"),
    ("bad-yaml", b"meters: [\n  - name: x\n", "not valid YAML"),
    ("binary", b"\x00\xff\xfe\x80garbage", "not a text file"),
    ("list", b"- 1\n- 2\n", "(top level)"),
    ("scalar", b"42\n", "(top level)"),
    ("unknown-key", _gateway_cfg(pollinterval=5), "pollinterval: unknown key"),
    ("pusher", _gateway_cfg(pusher="carrier-pigeon"), "pusher"),
    ("batch-huge", _gateway_cfg(batch_size=10**30), "batch_size"),
    ("batch-negative", _gateway_cfg(batch_size=-1), "batch_size"),
    ("poll-negative", _gateway_cfg(poll_interval=-1), "poll_interval"),
    ("poll-text", _gateway_cfg(poll_interval="often"), "poll_interval"),
    ("no-meters", _gateway_cfg(meters=[]), "meters"),
    ("port-text", _gateway_cfg(meters=[_meter(grid={"port": "abc", "map": "eastron_sdm630"})]), "meters[0].grid.port"),
    ("port-huge", _gateway_cfg(meters=[_meter(grid={"port": 70000, "map": "eastron_sdm630"})]), "meters[0].grid.port"),
    ("unit-negative", _gateway_cfg(meters=[_meter(grid={"unit": -1, "map": "eastron_sdm630"})]), "meters[0].grid.unit"),
    ("no-map", _gateway_cfg(meters=[_meter(grid={"port": 5020})]), "meters[0].grid.map"),
    ("unknown-map", _gateway_cfg(meters=[_meter(grid={"port": 5020, "map": "no_such_meter"})]), "no_such_meter"),
    ("dup-names", _gateway_cfg(meters=[_meter(), _meter()]), "unique"),
    ("two-keys", _gateway_cfg(meters=[_meter(key_file="k.json")]), "exactly one"),
    ("http-no-url", _gateway_cfg(keeper_url=None), "keeper_url"),
    ("key-unset", _gateway_cfg(meters=[_meter(key_hex_env="HOSTILE_UNSET_KEY")]), "HOSTILE_UNSET_KEY"),
    ("key-not-hex", _gateway_cfg(meters=[_meter(key_hex_env="HOSTILE_BAD_KEY")]), "HOSTILE_BAD_KEY"),
    ("key-file-missing", _gateway_cfg(meters=[_meter(key_hex_env=None, key_file="nokey.json")]), "not found"),
    ("registry-bad", _gateway_cfg(registry="not-an-address"), "registry"),
    ("rpc-down", _gateway_cfg(rpc_url="DEAD", pusher="direct"), "connection refused"),
]


@pytest.mark.parametrize(("name", "content", "expect"), GATEWAY_CASES, ids=[c[0] for c in GATEWAY_CASES])
def test_meter_bridge_run_refuses_bad_gateway_config(tmp_path, monkeypatch, name, content, expect):
    monkeypatch.setenv("HOSTILE_DEV_KEY", KEY)
    monkeypatch.setenv("HOSTILE_BAD_KEY", "not hex at all")
    monkeypatch.setenv("METER_KEY_PASSPHRASE", "pw")
    monkeypatch.delenv("HOSTILE_UNSET_KEY", raising=False)
    p = tmp_path / "gw.yaml"
    if isinstance(content, dict):
        text = yaml.safe_dump(content).replace("DEAD", DEAD_RPC.format(port=free_port()))
        p.write_text(text)
    elif content is not None:
        p.write_bytes(content)
    res = CliRunner().invoke(main, ["bridge", "run", "--config", str(p)])
    _check(res, expect)
    if content is not None and not isinstance(content, bytes):
        assert str(p) in res.output or "gw.yaml" in res.output or name in ("unknown-map", "rpc-down")


def test_meter_bridge_other_commands(tmp_path, monkeypatch):
    r = CliRunner()
    _check(r.invoke(main, ["bridge", "run", "--config", str(tmp_path)]), "directory", 2)
    _check(r.invoke(main, ["bridge", "run"]), "--config", 2)
    _check(r.invoke(main, ["bridge", "simulate", "--households", "0"]), "--households", 2)
    _check(r.invoke(main, ["bridge", "simulate", "--port", "99999"]), "--port", 2)
    _check(r.invoke(main, ["bridge", "simulate", "--speed", "-3"]), "--speed", 2)
    _check(r.invoke(main, ["bridge", "status"]), "--config or --outbox", 2)
    _check(r.invoke(main, ["bridge", "status", "--outbox", str(tmp_path / "none.sqlite")]), "no outbox")
    (tmp_path / "junk.sqlite").write_bytes(b"this is not a database" * 100)
    _check(r.invoke(main, ["bridge", "status", "--outbox", str(tmp_path / "junk.sqlite")]), "outbox")
    monkeypatch.delenv("METER_KEY_PASSPHRASE", raising=False)
    _check(r.invoke(main, ["meters", "keygen", "--out", str(tmp_path / "k.json")]), "METER_KEY_PASSPHRASE", 2)
    monkeypatch.setenv("GRIDCOOP_REGISTRAR_KEY", KEY)
    base = ["meters", "register", "--rpc-url", DEAD_RPC.format(port=free_port()), "--meter", "x", "--signer", ADDR,
            "--owner", ADDR, "--kind", "consumer"]
    _check(r.invoke(main, base + ["--rated-power-w", "100"]), "connection refused")
    _check(r.invoke(main, base + ["--rated-power-w", "lots"]), "--rated-power-w", 2)
    monkeypatch.setenv("GRIDCOOP_REGISTRAR_KEY", "nothex")
    _check(r.invoke(main, base + ["--rated-power-w", "100"]), "GRIDCOOP_REGISTRAR_KEY")


def test_keeper_cli_refuses_bad_options(anvil, w3, deployer, tmp_path, monkeypatch, deployments_dir):
    from gridcoop_sdk.contracts import deploy
    from gridcoop_sdk.orders import deploy_market

    watt = deploy(w3, deployer, "WattToken", deployer.address)
    market = deploy_market(w3, deployer, watt, keeper=deployer.address).address
    r = CliRunner()
    dead = DEAD_RPC.format(port=free_port())
    monkeypatch.setenv("GRIDCOOP_KEEPER_KEY", KEY)
    serve = ["keeper", "serve", "--db", f"sqlite:///{tmp_path}/k.db"]
    _check(r.invoke(main, serve + ["--rpc-url", dead, "--market", ADDR]), "connection refused")
    _check(r.invoke(main, serve + ["--rpc-url", anvil.url, "--market", "nonsense"]), "--market")
    _check(r.invoke(main, serve + ["--rpc-url", anvil.url, "--market", ADDR]), "no contract")
    _check(r.invoke(main, serve + ["--rpc-url", anvil.url, "--market", ADDR, "--chain-id", "5"]), "chain")
    _check(r.invoke(main, serve + ["--rpc-url", anvil.url, "--port", "99999"]), "--port", 2)
    _check(r.invoke(main, serve + ["--rpc-url", anvil.url, "--poll", "-1"]), "--poll", 2)
    _check(r.invoke(main, serve + ["--rpc-url", anvil.url, "--speed", "0"]), "--speed", 2)
    _check(r.invoke(main, serve + ["--rpc-url", anvil.url, "--mode", "vickrey"]), "--mode", 2)
    _check(r.invoke(main, ["keeper", "serve", "--rpc-url", anvil.url, "--market", market, "--db", "nonsense://x"]),
           "--db")
    _check(r.invoke(main, ["keeper", "serve", "--rpc-url", anvil.url, "--market", market, "--db",
                                  f"sqlite:///{tmp_path}/no/such/dir/k.db"]), "--db")
    for relay, expect in ((["--registry", "0xnonsense"], "--registry"), (["--registry", ADDR], "no contract"),
                          (["--region", "nosuch", "--relay"], "no region 'nosuch'")):
        _check(r.invoke(main, serve + ["--rpc-url", anvil.url, "--market", market, *relay,
                                       "--port", str(free_port())], env={"GRIDCOOP_RELAY_KEY": KEY}), expect)
    monkeypatch.setenv("GRIDCOOP_KEEPER_KEY", "not-a-key")
    _check(r.invoke(main, serve + ["--rpc-url", anvil.url, "--market", market]), "GRIDCOOP_KEEPER_KEY")
    monkeypatch.delenv("GRIDCOOP_KEEPER_KEY")
    _check(r.invoke(main, serve + ["--rpc-url", anvil.url, "--market", market]), "GRIDCOOP_KEEPER_KEY", 2)
    url = f"http://127.0.0.1:{free_port()}"
    _check(r.invoke(main, ["keeper", "status", "--keeper-url", url]), "cannot reach the keeper")
    monkeypatch.setenv("GRIDCOOP_KEY", KEY)
    _check(r.invoke(main, ["market", "order", "buy", "lots", "--price", "3", "--token", ADDR, "--keeper-url", url]), "AMOUNT", 2)
    _check(r.invoke(main, ["market", "order", "buy", "-5kWh", "--price", "3", "--token", ADDR, "--keeper-url", url]), "AMOUNT", 2)
    _check(r.invoke(main, ["market", "order", "buy", "1kWh", "--price", "-3", "--token", ADDR, "--keeper-url", url]),
           "--price", 2)
    _check(r.invoke(main, ["market", "order", "buy", "1kWh", "--price", "3", "--token", ADDR, "--keeper-url", url,
                                  "--interval", "soon"]), "cannot reach")
    _check(r.invoke(main, ["market", "results", "abc"]), "INTERVAL_ID", 2)
    _check(r.invoke(main, ["keeper", "settle", "--rpc-url", anvil.url, "--market", ADDR, "--interval", "-1",
                                  "--db", f"sqlite:///{tmp_path}/k.db"]), "--interval", 2)


def test_region_config_hostile_files(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(ConfigError, match="not a text file"):
        load_region(p)
    p.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match=r"top level"):
        load_region(p)
    text = (CONFIG_DIR / "sakura.yaml").read_text()
    data = yaml.safe_load(text)
    data["surprise"] = 1
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="surprise: unknown key"):
        load_region(p)


def test_gridcoop_cli_refuses_bad_input(tmp_path, monkeypatch):
    r = CliRunner()
    p = tmp_path / "region.yaml"
    p.write_text("slug: [unclosed\n")
    monkeypatch.setenv("GRIDCOOP_DEPLOYER_KEY", KEY)
    _check(r.invoke(main, ["region", "deploy", "--config", str(p), "--rpc-url", "http://127.0.0.1:9",
                           "--keeper", ADDR]), "not valid YAML")
    _check(r.invoke(main, ["region", "deploy", "--config", "no-such-region", "--rpc-url", "http://127.0.0.1:9",
                           "--keeper", ADDR]), "no-such-region")
    _check(r.invoke(main, ["region", "deploy", "--config", "example", "--rpc-url", DEAD_RPC.format(port=free_port()),
                           "--keeper", ADDR]), "connection refused")
    _check(r.invoke(main, ["demo", "--intervals", "0"]), "--intervals", 2)
    _check(r.invoke(main, ["demo", "--config", str(p)]), "not valid YAML")
    _check(r.invoke(main, ["no-such-command"]), "no such command", 2)


@pytest.mark.parametrize("argv", [
    ["gridcoop", "bridge", "run", "--config", "/nonexistent/gw.yaml"],
    ["gridcoop", "keeper", "serve", "--rpc-url", "http://127.0.0.1:9", "--market", ADDR],
    ["gridcoop", "region", "deploy", "--config", "/nonexistent/r.yaml", "--rpc-url", "http://127.0.0.1:9",
     "--keeper", ADDR],
])
def test_real_console_processes_exit_cleanly(argv):
    env = {"PATH": "/usr/bin:/bin", "GRIDCOOP_KEEPER_KEY": KEY, "GRIDCOOP_DEPLOYER_KEY": KEY}
    p = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr and "Error:" in p.stderr, p.stderr
