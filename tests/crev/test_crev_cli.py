"""``gridcoop crev`` against anvil: retire, trace, balance, factor, and refusals of bad input."""

from __future__ import annotations

import json

from click.testing import CliRunner

from gridcoop.cli import main
from gridcoop_sdk.crev import crev_amount
from gridcoop_sdk.tx import send


def _run(anvil, crev, deployments_dir, *args, key=None):
    env = {"GRIDCOOP_KEY": "0x" + bytes(key.key).hex()} if key else {}
    return CliRunner().invoke(
        main, ["crev", *args, "--rpc-url", anvil.url, "--region", "test", "--deployments", str(deployments_dir)],
        env=env, catch_exceptions=False)


def test_cli_balance_retire_trace(anvil, w3, crev, issue, wallets, deployments_dir):
    alice, bob = wallets[1], wallets[2]
    issue(b"A", alice.address, 100, 10_000)  # 4.5 kg
    send(w3, alice, crev.token.functions.transfer(bob.address, 3 * 10**15))

    out = _run(anvil, crev, deployments_dir, "balance", bob.address)
    assert out.exit_code == 0, out.output
    assert "0.003 t-CO2e in 1 lot(s)" in out.output
    assert "interval 1970-01-02T01:00:00Z/PT15M (10000 Wh x 450 g/kWh)" in out.output  # start 100 x 900 s
    js = json.loads(_run(anvil, crev, deployments_dir, "balance", "--json", key=bob).output)
    assert js["total"] == 3 * 10**15 and js["lots"][0]["lot_id"] == 1
    assert (js["lots"][0]["interval_start"], js["lots"][0]["interval_seconds"]) == (90_000, 900)

    out = _run(anvil, crev, deployments_dir, "retire", "2kg", "--beneficiary-name", "Bob's bakery",
               "--message", "FY2026", "--period-start", "2026-04-01", "--period-end", "2027-03-31", key=bob)
    assert out.exit_code == 0, out.output
    assert "retired 0.002 t-CO2e as certificate #1" in out.output
    assert "public on chain forever" in out.output
    rec = crev.certificate.functions.retirement(1).call()
    assert rec[4] == 1775001600 and rec[7] == "Bob's bakery"

    out = _run(anvil, crev, deployments_dir, "trace", "1")
    assert out.exit_code == 0, out.output
    assert "certificate #1: 0.002 t-CO2e retired by " + bob.address in out.output
    assert "lot 1: meter 0x41" in out.output
    assert f"{alice.address} -> {bob.address} 0.003 t-CO2e" in out.output
    js = json.loads(_run(anvil, crev, deployments_dir, "trace", "1", "--json").output)
    assert js["lots"][0]["retired_amount"] == 2 * 10**15 and len(js["transfers"]) == 1


def test_cli_factor_show_and_set(anvil, w3, crev, deployer, deployments_dir):
    out = _run(anvil, crev, deployments_dir, "factor")
    assert out.exit_code == 0 and "intervals from the start: 450 g-CO2/kWh" in out.output
    out = _run(anvil, crev, deployments_dir, "factor", "--set", "300", key=deployer)
    assert out.exit_code == 0, out.output
    assert ": 300 g-CO2/kWh" in out.output
    assert crev.token.functions.emissionFactorAt(2**63).call() == 300
    # a chosen start: ISO date (UTC) or Unix seconds
    out = _run(anvil, crev, deployments_dir, "factor", "--set", "280", "--effective-from", "2099-01-01", key=deployer)
    assert out.exit_code == 0, out.output
    assert "intervals from 2099-01-01T00:00:00Z (4070908800): 280 g-CO2/kWh" in out.output
    out = _run(anvil, crev, deployments_dir, "factor", "--set", "270", "--effective-interval", "4600000",
               key=deployer)  # a 15-minute interval id: from 4,140,000,000 s (2101-03-11T16:00:00Z)
    assert out.exit_code == 0, out.output
    assert "intervals from 2101-03-11T16:00:00Z (4140000000): 270 g-CO2/kWh" in out.output
    assert crev.token.functions.emissionFactorAt(4_140_000_000).call() == 270
    out = _run(anvil, crev, deployments_dir, "factor", "--set", "260", "--effective-from", str(2**63), key=deployer)
    assert out.exit_code == 0 and f"intervals from unix {2**63} ({2**63}): 260 g-CO2/kWh" in out.output
    out = _run(anvil, crev, deployments_dir, "factor", "--effective-from", "2099-01-01")
    assert out.exit_code == 2 and "need --set" in out.output


def test_cli_refuses_bad_input_with_reasons(anvil, crev, issue, wallets, deployments_dir):
    alice = wallets[1]
    issue(b"A", alice.address, 100, 10_000)
    out = _run(anvil, crev, deployments_dir, "retire", "lots", "--beneficiary-name", "x", key=alice)
    assert out.exit_code == 2 and "not a C-REV amount" in out.output
    out = _run(anvil, crev, deployments_dir, "retire", "1kg", "--beneficiary-name", "x")
    assert out.exit_code == 2 and "set the environment variable GRIDCOOP_KEY" in out.output
    out = _run(anvil, crev, deployments_dir, "retire", "0.5kg", "--beneficiary-name", "x", key=alice)
    assert out.exit_code == 1 and "below the minimum retirement 0.001 t-CO2e" in out.output
    out = _run(anvil, crev, deployments_dir, "retire", "1kg", key=alice)
    assert out.exit_code == 1 and "name a beneficiary" in out.output
    out = _run(anvil, crev, deployments_dir, "trace", "7")
    assert out.exit_code == 1 and "no retirement certificate #7" in out.output
    out = _run(anvil, crev, deployments_dir, "factor", "--set", "100", key=alice)
    assert out.exit_code == 1 and "AccessControlUnauthorizedAccount" in out.output
    out = CliRunner().invoke(main, ["crev", "balance", "0xdead", "--rpc-url", anvil.url])
    assert out.exit_code == 2 and "is not an address" in out.output


def test_cli_help_explains_options():
    for cmd in ("retire", "trace", "balance", "factor"):
        out = CliRunner().invoke(main, ["crev", cmd, "--help"])
        assert out.exit_code == 0 and "--rpc-url" in out.output
    assert "PUBLIC FOREVER" in " ".join(CliRunner().invoke(main, ["crev", "retire", "--help"]).output.split())
    assert crev_amount(1, 1) == 10**9
