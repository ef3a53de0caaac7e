"""`configs/regions/example.yaml` deploys with the CLI to a fresh chain as it is, every command finds
its contracts with --region, and each error a new user met is one line saying what is wrong and what
to do (never a traceback)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import click
import httpx
import pytest
import yaml
from click.testing import CliRunner

from gridcoop.cli import main
from gridcoop_sdk.chain import dev_accounts, free_port
from gridcoop_sdk.contracts import at
from gridcoop_sdk.region_config import load_region

ROOT = Path(__file__).resolve().parents[2]
ACCOUNTS = dev_accounts(16)
DEPLOYER, KEEPER, MEMBER, MEMBER2, _, _, STRANGER = ACCOUNTS[:7]


def _hex(acct) -> str:
    return "0x" + bytes(acct.key).hex()


def _one_line_error(result, *expect: str, code: int | tuple = 1) -> str:
    out = result.output
    codes = code if isinstance(code, tuple) else (code,)
    assert result.exit_code in codes, (result.exit_code, out, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in out, out
    error_lines = [line for line in out.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1, out
    for e in expect:
        assert e in error_lines[0], (e, out)
    return error_lines[0]


@pytest.fixture(scope="module")
def region(anvil, tmp_path_factory):
    """The shipped example region, deployed with `gridcoop region deploy` as a user would."""
    deps = tmp_path_factory.mktemp("example-deployments")
    env = {**os.environ, "GRIDCOOP_DEPLOYER_KEY": _hex(DEPLOYER), "GRIDCOOP_DEPLOYMENTS": str(deps)}
    proc = subprocess.run([sys.executable, "-m", "gridcoop", "region", "deploy", "--config", "example", "--rpc-url",
                           anvil.url, "--chain-id", str(anvil.chain_id), "--keeper", KEEPER.address],
                          env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "INFO" not in proc.stderr, proc.stderr
    records = json.loads((deps / f"{anvil.chain_id}.json").read_text())
    return {"deps": deps, "records": records, "stdout": proc.stdout, "url": anvil.url}


def _run(region, *args, env=None, **kw):
    e = {"GRIDCOOP_DEPLOYMENTS": str(region["deps"]), "GRIDCOOP_RPC_URL": region["url"], "GRIDCOOP_REGION": "example"}
    return CliRunner().invoke(main, list(args), env={**e, **(env or {})}, terminal_width=200, **kw)


def test_example_region_deploys_as_it_is_and_is_found_by_name(region, w3):
    cfg = load_region("example")
    recs = region["records"]
    assert {f"example.{c}" for c in ("LocalCurrency", "Treasury", "EnergyMarket", "MeterRegistry", "BatteryStorage",
                                     "CarbonReductionValue")} <= set(recs)
    assert "example.EnergyMarket 0x" in region["stdout"] and "--region example" in region["stdout"]
    market = at(w3, "EnergyMarket", recs["example.EnergyMarket"]["address"])
    assert market.functions.hasRole(market.functions.KEEPER_ROLE().call(), KEEPER.address).call()
    assert not market.functions.hasRole(b"\0" * 32, DEPLOYER.address).call()  # handed over to the DAO
    r = _run(region, "region", "list")
    assert r.exit_code == 0 and "example: 11 contracts" in r.output
    r = _run(region, "region", "show")
    assert r.exit_code == 0 and "EXC (18 decimals)" in r.output
    for h in cfg.households:  # every household of the example has its meter registered
        r = _run(region, "meters", "status", h.name)
        assert r.exit_code == 0 and h.meter_signer.lower() in r.output.lower(), r.output
    r = _run(region, "storage", "status", "1")
    assert r.exit_code == 0 and "example:commons-battery:battery" in r.output


def test_the_shipped_sakura_file_is_refused_with_what_to_do(region):
    r = _run(region, "region", "deploy", "--config", "sakura", "--rpc-url", region["url"], "--keeper",
             KEEPER.address, env={"GRIDCOOP_DEPLOYER_KEY": _hex(DEPLOYER)})
    _one_line_error(r, "need an `account:`", "hh01", "configs/regions/example.yaml")


def test_keeper_serve_finds_the_market_and_registry_the_deployment_recorded(region, tmp_path):
    port = free_port()
    env = {**os.environ, "GRIDCOOP_DEPLOYMENTS": str(region["deps"]), "GRIDCOOP_KEEPER_KEY": _hex(KEEPER),
           "GRIDCOOP_RELAY_KEY": _hex(ACCOUNTS[7])}
    p = subprocess.Popen([sys.executable, "-m", "gridcoop", "keeper", "serve", "--rpc-url", region["url"],
                          "--region", "example", "--relay", "--db", f"sqlite:///{tmp_path}/k.db", "--port", str(port)],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        health = None
        while time.monotonic() < deadline and p.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=2).json()
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert health, p.stderr.read() if p.poll() is not None else "no answer"
        assert health["market"] == region["records"]["example.EnergyMarket"]["address"]
        r = httpx.post(f"http://127.0.0.1:{port}/v1/readings", json={"readings": []}, timeout=5)
        assert r.status_code != 404  # the relay of the region's MeterRegistry is mounted
    finally:
        p.terminate()
        out, err = p.communicate(timeout=30)
    assert "keeper API on" in out and "relaying readings" in out and "Traceback" not in err, (out, err)


def test_keeper_without_keeper_role_refuses_to_start(region, tmp_path):
    r = _run(region, "keeper", "serve", "--db", f"sqlite:///{tmp_path}/k.db", "--port", str(free_port()),
             env={"GRIDCOOP_KEEPER_KEY": _hex(STRANGER)})
    line = _one_line_error(r, "refusing to start", STRANGER.address, "lacks KEEPER_ROLE",
                           region["records"]["example.EnergyMarket"]["address"], "region example")
    assert "running" not in line


def test_keeper_postgres_without_driver_says_which_extra(region, tmp_path, monkeypatch):
    pytest.importorskip("sqlalchemy")
    if importlib.util.find_spec("psycopg") is not None:  # the project's venv has it: hide it
        monkeypatch.setitem(sys.modules, "psycopg", None)
    r = _run(region, "keeper", "serve", "--db", "postgresql://coop@db.example/keeper",
             env={"GRIDCOOP_KEEPER_KEY": _hex(KEEPER)})
    _one_line_error(r, "PostgreSQL support needs the psycopg driver", "pip install 'gridcoop[postgres]'")
    assert "ModuleNotFoundError" not in r.output


@pytest.mark.parametrize(("env", "args"), [
    ("GRIDCOOP_DEPLOYER_KEY", ["region", "deploy", "--config", "example", "--keeper", KEEPER.address]),
    ("GRIDCOOP_MEMBER_KEY", ["dao", "vote", "1", "--support", "for"]),
    ("GRIDCOOP_KEY", ["market", "cancel", "0x" + "00" * 32]),
    ("GRIDCOOP_KEEPER_KEY", ["keeper", "serve"]),
])
def test_a_two_byte_private_key_is_one_line(region, env, args):
    extra = ["--rpc-url", region["url"]] if args[:2] == ["region", "deploy"] else []
    r = _run(region, *args, *extra, env={env: "0xabcd"})
    _one_line_error(r, env, "2-byte value", "32 bytes (64 hex digits)", code=2)
    r = _run(region, *args, *extra, env={env: "not hex"})
    _one_line_error(r, env, "not hex", code=2)


def test_ape_dao_script_refuses_a_two_byte_member_key(monkeypatch):
    spec = importlib.util.spec_from_file_location("gridcoop_ape_dao_script", ROOT / "scripts" / "dao.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setenv("GRIDCOOP_MEMBER_KEY", "0xabcd")
    with pytest.raises(click.UsageError, match="GRIDCOOP_MEMBER_KEY holds a 2-byte value"):
        mod._signer(None)


def test_bad_keeper_address_is_refused_before_any_transaction(region, w3, tmp_path):
    nonce = w3.eth.get_transaction_count(DEPLOYER.address)
    r = _run(region, "region", "deploy", "--config", "example", "--rpc-url", region["url"], "--keeper", "0xnope",
             "--deployments", str(tmp_path), env={"GRIDCOOP_DEPLOYER_KEY": _hex(DEPLOYER)})
    _one_line_error(r, "--keeper", "'0xnope' is not an address", code=2)
    assert w3.eth.get_transaction_count(DEPLOYER.address) == nonce
    assert not list(tmp_path.iterdir())  # nothing deployed, nothing recorded


@pytest.mark.parametrize("what", ["no code", "not a TeslaToken"])
def test_a_tsl_address_that_is_no_teslatoken_is_one_line(region, w3, tmp_path, what):
    """`platform.tsl_address` naming an account, or a contract that is not the fixed-supply TeslaToken
    (here the region's WATT), is refused before any transaction."""
    address = STRANGER.address if what == "no code" else region["records"]["example.WattToken"]["address"]
    data = yaml.safe_load((ROOT / "configs" / "regions" / "example.yaml").read_text())
    data["platform"]["tsl_address"] = address
    cfg = tmp_path / "example.yaml"
    cfg.write_text(yaml.safe_dump(data))
    nonce = w3.eth.get_transaction_count(DEPLOYER.address)
    r = _run(region, "region", "deploy", "--config", str(cfg), "--rpc-url", region["url"], "--keeper", KEEPER.address,
             "--deployments", str(tmp_path / "d"), env={"GRIDCOOP_DEPLOYER_KEY": _hex(DEPLOYER)})
    _one_line_error(r, "platform.tsl_address", address, "no contract at" if what == "no code" else "not a TeslaToken")
    assert w3.eth.get_transaction_count(DEPLOYER.address) == nonce


def test_the_example_region_references_the_platform_tsl(region, w3):
    recs = region["records"]
    tsl = recs["platform.TeslaToken"]["address"]
    assert recs["example.TeslaToken"]["address"] == tsl
    assert "example.TeslaToken " + tsl in region["stdout"] and "platform TSL deployed" in region["stdout"]
    assert at(w3, "TeslaToken", tsl).functions.totalSupply().call() == 10**27
    r = _run(region, "region", "list")
    assert r.exit_code == 0 and f"platform: TeslaToken (TSL) {tsl}" in r.output
    assert "platform:" not in r.output.split("\n")[0]  # not listed as a region


def test_dao_errors_name_the_proposal_and_the_time(region):
    env = {"GRIDCOOP_MEMBER_KEY": _hex(MEMBER)}
    _one_line_error(_run(region, "dao", "vote", "99", "--support", "for", env=env), "no proposal 99 in DAO example")
    r = _run(region, "dao", "propose", "--call", "BatteryStorage", "setFeeRate", "1,20000000000000000",
             "-d", "battery fee 0.01 -> 0.02 TSL", env=env)
    assert r.exit_code == 0, r.output
    pid = r.output.split()[1]
    r = _run(region, "dao", "vote", pid, "--support", "for", env=env)
    assert r.exit_code == 0 and "Active" in r.output, r.output
    line = _one_line_error(_run(region, "dao", "execute", pid, env=env), f"proposal {pid} is still being voted on",
                           "voting ends at", "UTC")
    assert "(in " in line
    _one_line_error(_run(region, "dao", "status", "99"), "no proposal 99 in DAO example")
    r = _run(region, "dao", "vote", pid, "--support", "for", env={"GRIDCOOP_MEMBER_KEY": _hex(MEMBER2)})
    assert r.exit_code == 0 and "Succeeded" in r.output, r.output
    r = _run(region, "dao", "execute", pid, env=env)
    assert r.exit_code == 0 and f"proposal {pid} executed" in r.output, r.output
    _one_line_error(_run(region, "dao", "vote", pid, "--support", "for", env=env), "is Executed",
                    "takes no more votes")


def test_meter_registration_without_the_role_names_the_role(region, tmp_path):
    r = _run(region, "meters", "register", "--meter", "ex09", "--signer", ACCOUNTS[9].address, "--owner",
             STRANGER.address, "--kind", "consumer", "--rated-power-w", "5000",
             env={"GRIDCOOP_REGISTRAR_KEY": _hex(STRANGER)})
    line = _one_line_error(r, "lacks REGISTRAR_ROLE", "DAO")
    assert "neededRole=0x" not in line


def test_wrong_keystore_passphrase_is_named(region, tmp_path):
    r = CliRunner().invoke(main, ["meters", "keygen", "--out", str(tmp_path / "dev.json")],
                           env={"METER_KEY_PASSPHRASE": "right horse"})
    assert r.exit_code == 0, r.output
    gw = {"chain_id": 31337, "registry": region["records"]["example.MeterRegistry"]["address"], "pusher": "http",
          "keeper_url": "http://127.0.0.1:9", "outbox": str(tmp_path / "o.sqlite"),
          "meters": [{"name": "m1", "key_file": str(tmp_path / "dev.json"),
                      "grid": {"port": free_port(), "unit": 1, "map": "eastron_sdm630"}}]}
    (tmp_path / "gw.yaml").write_text(yaml.safe_dump(gw))
    r = CliRunner().invoke(main, ["bridge", "run", "--config", str(tmp_path / "gw.yaml")],
                           env={"METER_KEY_PASSPHRASE": "wrong horse"})
    line = _one_line_error(r, "wrong passphrase", "dev.json", "METER_KEY_PASSPHRASE")
    assert "MAC mismatch" not in line


def test_unreachable_keeper_says_it_cannot_reach_it(region):
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["market", "orders"], ["keeper", "status"], ["market", "results", "1"]):
        line = _one_line_error(_run(region, *args, "--keeper-url", url), f"cannot reach the keeper at {url}")
        assert "refused (0)" not in line


@pytest.fixture
def keeper_api(region, w3, tmp_path):
    from keeper.api import create_app, serve_in_thread
    from keeper.clock import chain_clock
    from keeper.service import Keeper

    market = at(w3, "EnergyMarket", region["records"]["example.EnergyMarket"]["address"])
    k = Keeper(w3, KEEPER, market, f"sqlite:///{tmp_path}/k.db", clock=chain_clock(w3))
    handle = serve_in_thread(create_app(k))
    yield handle.url
    handle.stop()
    k.db.dispose()


def test_empty_order_list_and_prices_in_the_currency(region, keeper_api):
    env = {"GRIDCOOP_KEEPER_URL": keeper_api, "GRIDCOOP_KEY": _hex(MEMBER)}
    r = _run(region, "market", "orders", env=env)
    assert r.exit_code == 0 and "no orders" in r.output, r.output
    # a buyer without EXC: refused in EXC, the unit of --price
    _one_line_error(_run(region, "market", "order", "buy", "1.5kWh", "--price", "30", env=env),
                    "maker holds 0 base units (0 EXC)", "the order needs 45000000000000000000 base units (45 EXC)")
    _one_line_error(_run(region, "market", "order", "buy", "1kWh", "--price", "0.0000000000000000001", env=env),
                    "--price", "more decimals than EXC (18)", code=2)
    _one_line_error(_run(region, "market", "order", "buy", "1kWh", "--price", "30", "--token", "YEN", env=env),
                    "--token", "not a payment token of region example", code=2)


def test_no_http_log_lines_in_command_output(region, keeper_api):
    env = {**os.environ, "GRIDCOOP_KEEPER_URL": keeper_api, "GRIDCOOP_KEY": _hex(MEMBER),
           "GRIDCOOP_DEPLOYMENTS": str(region["deps"]), "GRIDCOOP_RPC_URL": region["url"]}
    p = subprocess.run([sys.executable, "-m", "gridcoop", "market", "orders"], env=env, capture_output=True,
                       text=True, timeout=60, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("no orders") and "HTTP Request" not in p.stderr and "INFO" not in p.stderr, \
        (p.stdout, p.stderr)


def test_grid_participant_shown_and_energy_debt_paid_from_the_cli(region, w3):
    """The example's utility is the grid participant; a consumer's import with no WATT becomes
    energy debt, which `gridcoop market pay-debt` pays at retail to the utility, to the base unit."""
    from gridcoop_sdk import grid as grid_sdk
    from gridcoop_sdk.meters import submit_readings
    from gridcoop_sdk.readings import Reading, ReadingSigner, meter_id

    cfg = load_region("example")
    r = _run(region, "market", "grid")
    assert r.exit_code == 0, r.output
    assert cfg.grid.account in r.output and "8 EXC/kWh (feed-in)" in r.output and "30 EXC/kWh (retail)" in r.output
    assert "network fee 2 EXC/kWh (0.5 EXC/kWh inside a feeder)" in r.output
    recs = region["records"]
    registry = at(w3, "MeterRegistry", recs["example.MeterRegistry"]["address"])
    market = at(w3, "EnergyMarket", recs["example.EnergyMarket"]["address"])
    cur = at(w3, "LocalCurrency", recs["example.LocalCurrency"]["address"])
    ex03 = cfg.household("ex03")  # a consumer: anvil account 4, its meter key anvil account 14
    payer = next(a for a in ACCOUNTS if a.address.lower() == ex03.account.lower())
    device = next(a for a in ACCOUNTS if a.address.lower() == ex03.meter_signer.lower())
    r = _run(region, "market", "pay-debt", env={"GRIDCOOP_KEY": _hex(payer)})
    assert r.exit_code == 0 and "owes no energy debt" in r.output
    info = registry.functions.getMeter(meter_id("example:ex03:main")).call()
    start = (max(info[-1], w3.eth.get_block("latest")["timestamp"]) // 900 + 1) * 900
    w3.provider.make_request("evm_setNextBlockTimestamp", [start + 900])
    w3.provider.make_request("evm_mine", [])
    signed = ReadingSigner(device.key, w3.eth.chain_id, registry.address).sign(Reading(
        meter_id("example:ex03:main"), 1, start, start + 900, 0, 700, 0, 700, 50_000))
    submit_readings(w3, ACCOUNTS[0], registry, [signed])
    assert grid_sdk.energy_debt_wh(registry, payer.address) == 700
    # the payer has no EXC yet: refused with the reason, nothing changes
    r = _run(region, "market", "pay-debt", env={"GRIDCOOP_KEY": _hex(payer)})
    _one_line_error(r, "payment refused")
    assert grid_sdk.energy_debt_wh(registry, payer.address) == 700
    _issue_exc(w3, region, payer, 100, market)
    before = cur.functions.balanceOf(cfg.grid.account).call()
    r = _run(region, "market", "pay-debt", "--wh", "300", env={"GRIDCOOP_KEY": _hex(payer)})
    assert r.exit_code == 0 and "paid 300 Wh" in r.output and "9 EXC" in r.output and "400 Wh left" in r.output, r.output
    r = _run(region, "market", "pay-debt", env={"GRIDCOOP_KEY": _hex(payer)})
    assert r.exit_code == 0 and "400 Wh left" not in r.output and "0 Wh left" in r.output, r.output
    assert grid_sdk.energy_debt_wh(registry, payer.address) == 0
    assert cur.functions.balanceOf(cfg.grid.account).call() - before == 700 * 30 * 10**18 // 1000


def _issue_exc(w3, region, to, whole: int, spender) -> None:
    """EXC for ``to`` from the example's currency admin, the DAO treasury (as a passed proposal
    would issue it), and ``to``'s allowance for ``spender``."""
    from gridcoop_sdk.tx import send

    recs = region["records"]
    cur = at(w3, "LocalCurrency", recs["example.LocalCurrency"]["address"])
    treasury = recs["example.Treasury"]["address"]
    w3.provider.make_request("anvil_impersonateAccount", [treasury])
    w3.provider.make_request("anvil_setBalance", [treasury, hex(10**18)])
    w3.eth.send_transaction({"from": treasury, "to": cur.address,
                             "data": cur.functions.issue(to.address, whole * 10**18)._encode_transaction_data()})
    w3.provider.make_request("anvil_stopImpersonatingAccount", [treasury])
    send(w3, to, cur.functions.approve(spender.address, 2**256 - 1))


def test_colour_is_backed_by_metered_origin_through_market_and_battery(region, w3, tmp_path):
    """Issue 19: ex01's solar meter exports 1,500 Wh, so ex01 holds 1,500 Wh of solar origin. A solar
    sale beyond it is refused at the keeper; a solar sale within it passes the origin to the buyer
    (the Trade event says "solar"); WATT sent by a plain transfer carries none; a solar deposit into
    the battery consumes origin and the withdrawal passes on what comes out (90 %)."""
    from gridcoop_sdk import storage as storage_sdk
    from gridcoop_sdk.meters import submit_readings
    from gridcoop_sdk.orders import Order, colour_bytes, sign_order
    from gridcoop_sdk.readings import Reading, ReadingSigner, meter_id
    from gridcoop_sdk.tx import send
    from keeper.clock import chain_clock
    from keeper.service import Keeper, OrderRejected

    cfg = load_region("example")
    recs = region["records"]
    registry = at(w3, "MeterRegistry", recs["example.MeterRegistry"]["address"])
    market = at(w3, "EnergyMarket", recs["example.EnergyMarket"]["address"])
    storage = at(w3, "BatteryStorage", recs["example.BatteryStorage"]["address"])
    watt = at(w3, "WattToken", recs["example.WattToken"]["address"])
    acct = {h.name: next(a for a in ACCOUNTS if a.address.lower() == h.account.lower()) for h in cfg.households}
    device = next(a for a in ACCOUNTS if a.address.lower() == cfg.household("ex01").meter_signer.lower())
    solar = colour_bytes("solar")
    seller, buyer, stranger = acct["ex01"], acct["ex02"], acct["ex04"]
    mid = meter_id("example:ex01:main")
    info = registry.functions.getMeter(mid).call()
    start = (max(info[-1], w3.eth.get_block("latest")["timestamp"]) // 900 + 1) * 900
    w3.provider.make_request("evm_setNextBlockTimestamp", [start + 900])
    w3.provider.make_request("evm_mine", [])
    seq = info[-3] + 1  # lastSequence
    signed = ReadingSigner(device.key, w3.eth.chain_id, registry.address).sign(
        Reading(mid, seq, start, start + 900, 2000, 500, 1500, 0, 50_000))
    submit_readings(w3, ACCOUNTS[0], registry, [signed])
    assert registry.functions.originOf(seller.address, solar).call() == 1500

    _issue_exc(w3, region, buyer, 100, market)
    for who in (seller, buyer):
        send(w3, who, watt.functions.approve(market.address, 2**256 - 1))
    k = Keeper(w3, KEEPER, market, f"sqlite:///{tmp_path}/k.db", clock=chain_clock(w3))
    try:
        iid = w3.eth.get_block("latest")["timestamp"] // 900 + 2

        def order(who, side, wh, price, colour):
            o = Order(maker=who.address, side=side, interval_id=iid, amount_wh=wh, limit_price=price * 10**18,
                      payment_token=recs["example.LocalCurrency"]["address"], expiry=iid * 900 + 3600, colour=colour)
            return sign_order(o, who.key, w3.eth.chain_id, market.address)

        with pytest.raises(OrderRejected, match="holds 1500 Wh of 'solar' origin"):
            k.accept_order(order(seller, "sell", 2000, 10, "solar"))
        k.accept_order(order(seller, "sell", 1000, 10, "solar"))
        k.accept_order(order(buyer, "buy", 1000, 20, "solar"))
        w3.provider.make_request("evm_setNextBlockTimestamp", [iid * 900])
        w3.provider.make_request("evm_mine", [])
        res = k.settle_interval(iid)
        assert res.state == "settled" and res.volume_wh == 1000, res
        rc = w3.eth.get_transaction_receipt(res.tx_hash)
        from web3.logs import DISCARD
        (trade,) = market.events.Trade().process_receipt(rc, errors=DISCARD)
        assert trade["args"]["colour"] == solar and trade["args"]["seller"] == seller.address
    finally:
        k.db.dispose()
    assert registry.functions.originOf(seller.address, solar).call() == 500
    assert registry.functions.originOf(buyer.address, solar).call() == 1000
    # a plain transfer moves WATT, not origin
    send(w3, seller, watt.functions.transfer(stranger.address, 300 * 10**15))
    assert registry.functions.originOf(stranger.address, solar).call() == 0
    assert registry.functions.originOf(seller.address, solar).call() == 500
    # the battery: a solar deposit beyond the origin is refused, within it consumes it
    with pytest.raises(Exception, match="OriginExceeded"):
        storage_sdk.deposit(w3, stranger, storage, 1, 300, colour="solar")
    storage_sdk.deposit(w3, buyer, storage, 1, 600, colour="solar")
    assert registry.functions.originOf(buyer.address, solar).call() == 400
    assert registry.functions.originOf(storage.address, solar).call() == 600
    tsl = at(w3, "TeslaToken", storage.functions.tsl().call())
    storage_sdk.claim_welcome_grant(w3, buyer, storage)  # TSL for the battery's fee
    send(w3, buyer, tsl.functions.approve(storage.address, 2**256 - 1))
    storage_sdk.withdraw(w3, buyer, storage, 1, 600)  # 90 % round trip: 540 Wh (and their solar origin) out
    assert registry.functions.originOf(buyer.address, solar).call() == 400 + 540
    assert registry.functions.originOf(storage.address, solar).call() == 0
