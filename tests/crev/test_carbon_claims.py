"""Issue 19 parts 2 and 5: each tonne of C-REV is claimed once (the producer who sold it does not,
the buyer who retires it does), unknown colours are never renewable, and the per-member,
per-interval view through the SDK (``gridcoop_sdk.carbon``) and ``gridcoop crev report [--live]``
— all against anvil, with readings, lots, transfers and retirements on chain."""

from __future__ import annotations

import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from gridcoop.cli import main
from gridcoop.cli.crev import follow
from gridcoop_sdk import carbon
from gridcoop_sdk.carbon import CarbonFeed, Factors, Reading, Trade, carbon_intervals, load_ledger
from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.crev import crev_amount, retire
from gridcoop_sdk.tx import send

ROOT = Path(__file__).resolve().parents[2]
GRID = 500  # g-CO2/kWh of the public grid in these tests; C-REV's factor is 450 (conftest)
LOT = crev_amount(1800, 450)  # alice's lot for interval 10: 810 g


def meter(name: bytes) -> bytes:
    return name.ljust(32, b"\0")


@pytest.fixture
def site(w3, deployer, wallets, crev, issue):
    """Alice (PV, meter A, solar) self-consumes 1800 Wh in interval 10 and earns lot 1; Bob (meter B,
    a consumer) buys 1000 Wh from Alice and 200 Wh from Dave, whose colour nobody knows."""
    alice, bob = wallets[1], wallets[2]
    src = deploy(w3, deployer, "StandInReportEvents", record=False)  # the registry's and market's events
    send(w3, deployer, src.functions.reading(meter(b"A"), 1, alice.address, 10 * 900, [3000, 2000, 1200, 200, 1800]))
    send(w3, deployer, src.functions.reading(meter(b"B"), 1, bob.address, 10 * 900, [0, 1500, 0, 1500, 0]))
    send(w3, deployer, src.functions.trade(10, alice.address, bob.address, 1000))
    send(w3, deployer, src.functions.trade(10, wallets[4].address, bob.address, 200))
    issue(b"A", alice.address, 10, 1800)
    send(w3, deployer, crev.token.functions.setMinimumRetirement(1))
    return src


COLOURS = {meter(b"A"): "solar", meter(b"B"): "none"}


def _view(w3, site, crev, wallets, member=None):
    readings = carbon.load_readings(w3, site.address, colours=COLOURS)
    trades = carbon.load_trades(w3, site.address, colours={wallets[1].address: "solar"})
    ledger = load_ledger(w3, crev.address, from_block=crev.deploy_block)
    rows = carbon_intervals(readings, trades, Factors(grid=GRID), ledger,
                            members=None if member is None else [member])
    return rows, ledger


def _row(rows, member, iid=None):
    found = [r for r in rows if r.member == member and (iid is None or r.interval_id == iid)]
    assert len(found) == 1, found
    return found[0]


def test_a_producer_keeping_its_crev_reports_its_self_consumption(w3, site, crev, wallets):
    rows, _ = _view(w3, site, crev, wallets)
    a = _row(rows, wallets[1].address, 10)
    assert (a.claimed_self_wh, a.passed_on_wh, a.renewable_ratio) == (1800, 0, 0.9)
    assert (a.crev_earned, a.crev_kept, a.crev_claimed) == (LOT, LOT, LOT)
    assert a.co2_g == 200 * GRID / 1000  # only the grid import


def test_a_producer_who_sells_all_its_crev_reports_no_reduction_and_the_retiring_buyer_does(
        w3, site, crev, wallets):
    alice, bob = wallets[1], wallets[2]
    send(w3, alice, crev.token.functions.transfer(bob.address, LOT))

    rows, _ = _view(w3, site, crev, wallets)
    a = _row(rows, alice.address, 10)
    # the 1800 Wh were self-consumed, but their attribute was sold: not renewable for Alice any more,
    # and they carry exactly the CO2 the C-REV stands for (1800 Wh × 450 g/kWh = 810 g)
    assert (a.self_consumed_wh, a.claimed_self_wh, a.passed_on_wh) == (1800, 0, 1800)
    assert a.renewable_ratio == 0.0
    assert (a.crev_earned, a.crev_kept, a.crev_claimed) == (LOT, 0, 0)
    assert a.co2_g == pytest.approx(200 * GRID / 1000 + 810)
    assert a.avg_emission_factor_g_per_kwh == pytest.approx(910 / 2)
    # holding bought C-REV is not yet a claim
    assert sum(r.crev_claimed for r in rows if r.member == bob.address) == 0

    retire(w3, bob, crev, LOT, beneficiary_name="Bob's bakery")
    rows, ledger = _view(w3, site, crev, wallets)
    [ret] = ledger.retirements
    b = _row(rows, bob.address, ret.interval_id)
    assert (b.crev_retired, b.crev_claimed) == (LOT, LOT)
    assert b.net_co2_g == pytest.approx(b.co2_g - 810)
    assert _row(rows, alice.address, 10).crev_claimed == 0
    # each unit claimed exactly once
    assert sum(r.crev_claimed for r in rows) == LOT == sum(r.crev_earned for r in rows)


def test_a_retirement_for_a_beneficiary_is_claimed_by_the_beneficiary_only(w3, site, crev, wallets):
    alice, bob, carol = wallets[1], wallets[2], wallets[3]
    send(w3, alice, crev.token.functions.transfer(bob.address, LOT // 2))  # half the lot
    retire(w3, bob, crev, LOT // 2, beneficiary=carol.address, beneficiary_name="Carol's cafe")
    rows, ledger = _view(w3, site, crev, wallets)
    assert ledger.retirements[0].claimant == carol.address
    a = _row(rows, alice.address, 10)
    assert (a.claimed_self_wh, a.passed_on_wh, a.crev_kept) == (900, 900, LOT - LOT // 2)
    assert a.renewable_ratio == pytest.approx(900 / 2000)
    assert sum(r.crev_claimed for r in rows if r.member == bob.address) == 0
    c = _row(rows, carol.address)
    assert (c.crev_retired, c.crev_claimed) == (LOT // 2, LOT // 2)
    assert sum(r.crev_claimed for r in rows) == LOT


def test_a_producer_retiring_its_own_crev_claims_it_once(w3, site, crev, wallets):
    alice = wallets[1]
    retire(w3, alice, crev, LOT, beneficiary=alice.address, beneficiary_name="me")
    rows, ledger = _view(w3, site, crev, wallets, member=alice.address)
    a = _row(rows, alice.address, 10)
    assert (a.claimed_self_wh, a.crev_kept, a.crev_claimed) == (1800, LOT, LOT)
    later = _row(rows, alice.address, ledger.retirements[0].interval_id)
    assert (later.crev_retired, later.crev_claimed, later.net_co2_g) == (LOT, 0, later.co2_g)


def test_unknown_and_grid_energy_is_never_renewable(w3, site, crev, wallets):
    rows, _ = _view(w3, site, crev, wallets)
    b = _row(rows, wallets[2].address, 10)
    # Dave is in no colour map and the Trade event carries no colour: unknown, at the grid factor
    assert (b.bought_wh, b.renewable_bought_wh, b.unknown_bought_wh, b.grid_wh) == (1200, 1000, 200, 300)
    assert b.renewable_ratio == pytest.approx(1000 / 1500)
    assert b.co2_g == pytest.approx((300 + 200) * GRID / 1000)
    # pure: grid and unknown sellers, a reading of unknown colour
    rows = carbon_intervals(
        [Reading("x", 1, 1000, 1000, 0, 0, 1000, "unknown")],
        [Trade(1, "utility", "y", 500, "grid"), Trade(1, "who", "y", 500, "unknown")],
        Factors(grid=GRID, other=300))
    x, y = _row(rows, "x", 1), _row(rows, "y", 1)
    assert (x.self_consumed_wh, x.renewable_ratio) == (0, 0.0)
    assert (y.renewable_bought_wh, y.unknown_bought_wh, y.co2_g) == (0, 500, 1000 * 300 / 1000)


def test_the_feed_settles_each_interval_once_and_revises_it_when_crev_moves(w3, deployer, site, crev, wallets, issue):
    alice = wallets[1]
    feed = CarbonFeed(w3, alice.address, Factors(grid=GRID), registry=site.address, market=site.address,
                      crev=crev.address, from_block=crev.deploy_block, colours=COLOURS)
    [(first, revised)] = feed.poll()
    assert (first.interval_id, first.crev_kept, revised) == (10, LOT, False)
    assert feed.poll() == []
    send(w3, deployer, site.functions.reading(meter(b"A"), 2, alice.address, 11 * 900, [2000, 500, 0, 0, 500]))
    issue(b"A", alice.address, 11, 500)
    [(new, revised)] = feed.poll()
    assert (new.interval_id, new.claimed_self_wh, new.crev_earned, revised) == (11, 500, crev_amount(500, 450), False)
    send(w3, alice, crev.token.functions.transfer(wallets[2].address, LOT))  # FIFO: lot 1 goes
    [(again, revised)] = feed.poll()
    assert (again.interval_id, again.crev_kept, again.passed_on_wh, revised) == (10, 0, 1800, True)


def _cli(anvil, crev, site, deployments_dir, *args):
    return ["crev", "report", *args, "--rpc-url", anvil.url, "--crev", crev.address, "--registry", site.address,
            "--market", site.address, "--deployments", str(deployments_dir), "--grid-factor", str(GRID)]


def test_cli_report_prints_the_members_intervals(anvil, w3, site, crev, wallets, deployments_dir):
    alice, bob = wallets[1], wallets[2]
    send(w3, alice, crev.token.functions.transfer(bob.address, LOT))
    out = CliRunner().invoke(main, _cli(anvil, crev, site, deployments_dir, "--member", alice.address),
                             catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert f"{alice.address}: 1 interval(s)" in out.output
    line = next(x for x in out.output.splitlines() if x.startswith("interval 10 "))
    assert "renewable 0.0%" in line and "claimed 0 t-CO2e" in line and "1,800.0 Wh of self-consumption passed on" in line
    out = CliRunner().invoke(main, _cli(anvil, crev, site, deployments_dir, "--member", bob.address, "--json"),
                             catch_exceptions=False)
    [row] = [json.loads(x) for x in out.output.splitlines()]
    # the stand-in's Trade event carries no colour and the command has no colour map: every seller
    # is unknown, so none of Bob's purchases is renewable
    assert (row["interval_id"], row["unknown_bought_wh"], row["crev_claimed"]) == (10, 1200, "0")
    assert row["renewable_ratio"] == 0.0 and math.isclose(row["co2_g"], 1500 * GRID / 1000)
    assert row["member"] == bob.address and row["revised"] is False
    out = CliRunner().invoke(main, ["crev", "report", "--member", "0xdead", "--rpc-url", anvil.url])
    assert out.exit_code == 2 and "is not an address" in out.output


def test_cli_report_help_explains_every_option():
    out = CliRunner().invoke(main, ["crev", "report", "--help"])
    assert out.exit_code == 0
    text = " ".join(out.output.split())
    for opt in ("--member", "--live", "--poll", "--settle-after", "--grid-factor", "--other-factor", "--from-block",
                "--registry", "--market", "--json", "--crev", "--rpc-url", "--region"):
        assert opt in text
    assert "Ctrl-C ends" in text and "claimed once" in text


def test_follow_emits_each_settled_interval(w3, deployer, site, crev, wallets):
    feed = CarbonFeed(w3, wallets[1].address, Factors(grid=GRID), registry=site.address, crev=crev.address,
                      from_block=crev.deploy_block, colours=COLOURS)
    seen = []
    assert follow(feed, lambda r, rev: seen.append((r.interval_id, rev)), poll_seconds=0, polls=2,
                  sleep=lambda s: None) == 1
    assert seen == [(10, False)]


def test_cli_report_live_picks_up_a_new_interval(anvil, w3, deployer, site, crev, wallets, issue, deployments_dir):
    """``--live`` as a subprocess: prints interval 10, then interval 11 once its reading is on chain; Ctrl-C ends."""
    alice = wallets[1]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen([sys.executable, "-m", "gridcoop", *_cli(anvil, crev, site, deployments_dir, "--member",
                                                                   alice.address, "--live", "--poll", "0.2")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in p.stdout], daemon=True).start()

    def wait_for(prefix: str, contains: str = "", timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                assert p.poll() is None, p.stderr.read()
                continue
            if line.startswith(prefix) and contains in line:
                return line
        raise AssertionError(f"no line starting {prefix!r} within {timeout} s")

    try:
        wait_for("following ")
        assert "claimed 0.00081 t-CO2e" in wait_for("interval 10 ")
        send(w3, deployer, site.functions.reading(meter(b"A"), 2, alice.address, 11 * 900, [2000, 500, 0, 0, 500]))
        issue(b"A", alice.address, 11, 500)
        # the reading and the lot land in two blocks: the interval may print once before the lot, then revised
        line = wait_for("interval 11 ", contains="earned 0.000225 t-CO2e")
        assert "renewable 100.0%" in line and "kept 0.000225 t-CO2e" in line
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=30)
    assert "Traceback" not in p.stderr.read()
