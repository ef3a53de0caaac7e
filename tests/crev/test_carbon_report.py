"""Carbon report on a hand-computed example, and its chain loaders against real logs."""

from __future__ import annotations

import math
from decimal import Decimal

import pandas as pd
import pytest

from gridcoop_sdk.carbon import CrevLedger, Lot, Retirement
from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.crev import crev_amount, retire
from gridcoop_sdk.exceptions import ConfigError
from gridcoop_sdk.tx import send
from keeper.reports.carbon import (
    READING_COLUMNS,
    REPORT_COLUMNS,
    CarbonReportConfig,
    carbon_report,
    event_abi,
    load_config,
    load_ledger,
    load_readings,
    load_trades,
    participant_summary,
    write_csv,
)
from keeper.reports.carbon import totals as carbon_totals

CFG = CarbonReportConfig(grid_factor_g_per_kwh=500, crev_factor_g_per_kwh=450)

# owner, interval, generation, consumption, export, import, self-consumed, colour
READINGS = pd.DataFrame([
    ("alice", 10, 3000, 2000, 1200, 200, 1800, "solar"),  # DGC-C: gen > demand, self = gen - export
    ("bob", 10, 0, 1500, 0, 1500, 0, "none"),
    ("carol", 10, 500, 1000, 0, 500, 500, "battery"),  # self-consumed, but not renewable
    ("bob", 11, 0, 0, 0, 0, 0, "none"),  # no demand
], columns=READING_COLUMNS)
TRADES = pd.DataFrame([
    (10, "alice", "bob", 1000, "solar"),
    (10, "dave", "bob", 200, "battery"),
    (10, "alice", "carol", 200, "solar"),
], columns=["interval_id", "seller", "buyer", "wh", "seller_colour"])


def _row(rep, who, iid):
    [r] = rep[(rep.participant == who) & (rep.interval_id == iid)].to_dict("records")
    return r


def test_report_matches_hand_computed_numbers():
    rep = carbon_report(READINGS, TRADES, CFG)
    assert list(rep.columns) == REPORT_COLUMNS
    a = _row(rep, "alice", 10)
    # 1800 / 2000 renewable; 200 Wh from the grid at 500 g/kWh = 100 g; 100 g / 2 kWh = 50 g/kWh
    assert (a["self_consumed_wh"], a["grid_wh"], a["renewable_ratio"], a["co2_g"]) == (1800, 200, 0.9, 100.0)
    assert a["avg_emission_factor_g_per_kwh"] == 50.0
    assert a["crev_earned_base_units"] == 1800 * 450 * 10**9 == crev_amount(1800, 450)
    b = _row(rep, "bob", 10)
    # bought 1200 (1000 solar + 200 battery); grid = 1500 - 1200 = 300
    # co2 = 300 * 0.5 + 200 * 0.5 (battery at the grid factor) = 250 g; 250 / 1.5 kWh
    assert (b["bought_wh"], b["renewable_bought_wh"], b["grid_wh"]) == (1200, 1000, 300)
    assert b["renewable_ratio"] == pytest.approx(1000 / 1500)
    assert b["co2_g"] == 250.0
    assert b["avg_emission_factor_g_per_kwh"] == pytest.approx(250 / 1.5)
    assert b["crev_earned_base_units"] == 0
    c = _row(rep, "carol", 10)
    # battery self-consumption is not renewable: ratio = 200 bought solar / 1000
    assert (c["self_consumed_wh"], c["grid_wh"], c["renewable_ratio"], c["co2_g"]) == (0, 300, 0.2, 150.0)
    b11 = _row(rep, "bob", 11)
    assert math.isnan(b11["renewable_ratio"]) and math.isnan(b11["avg_emission_factor_g_per_kwh"])
    assert b11["co2_g"] == 0.0
    summary = participant_summary(rep).set_index("participant")
    assert summary.loc["bob", "co2_g"] == 250.0
    assert summary.loc["bob", "renewable_ratio"] == pytest.approx(1000 / 1500)


def _ledger(lots, retirements=()):
    """A ledger from ``[(lot_id, owner, interval, amount)]`` and ``[(cert, holder, beneficiary, interval, lots)]``."""
    ledger = CrevLedger()
    for lot_id, owner, iid, amount in lots:
        ledger.issue(Lot(lot_id, b"", iid, owner, amount))
    for cid, holder, ben, iid, lots_ in retirements:
        ledger.retire(Retirement(cid, holder, ben, iid, sum(a for _, a in lots_), tuple(lots_)))
    return ledger


def test_report_uses_the_crev_ledger_when_given():
    ledger = _ledger([(1, "alice", 10, 7)], [(1, "alice", "", 12, [(1, 5)])])
    rep = carbon_report(READINGS, TRADES, CFG, ledger=ledger)
    a10 = _row(rep, "alice", 10)
    assert (a10["crev_earned_base_units"], a10["crev_kept_base_units"], a10["crev_claimed_base_units"]) == (7, 7, 7)
    r12 = _row(rep, "alice", 12)  # a retirement in an interval without readings still shows up
    assert r12["crev_retired_base_units"] == 5 and r12["demand_wh"] == 0
    assert r12["crev_claimed_base_units"] == 0  # its own lot: claimed once, in the lot's interval
    assert participant_summary(rep).set_index("participant").loc["alice", "crev_retired_base_units"] == 5


def test_report_refuses_frames_missing_columns():
    with pytest.raises(ValueError, match=r"readings DataFrame lacks column\(s\) \['colour'\]"):
        carbon_report(READINGS.drop(columns=["colour"]), TRADES, CFG)


def test_config_errors_name_the_key(tmp_path):
    p = tmp_path / "keeper.yaml"
    p.write_text("carbon:\n  grid_factor_g_per_kwh: -3\n")
    with pytest.raises(ConfigError, match=r"carbon.grid_factor_g_per_kwh"):
        load_config(p)
    p.write_text("carbon:\n  grid_factor_g_per_kwh: 480\n  renewable_colours: [solar]\n")
    assert load_config(p).grid_factor_g_per_kwh == 480


def test_event_abi_from_signature_text():
    e = event_abi("Trade(uint64 indexed intervalId, address indexed seller, uint256 wh)")
    assert e["name"] == "Trade"
    assert [(i["type"], i["name"], i["indexed"]) for i in e["inputs"]] == [
        ("uint64", "intervalId", True), ("address", "seller", True), ("uint256", "wh", False)]


def test_loaders_read_chain_logs(w3, deployer, wallets, crev, issue):
    alice, bob = wallets[1].address, wallets[2].address
    src = deploy(w3, deployer, "StandInReportEvents", record=False)
    meter_a = b"A".ljust(32, b"\0")
    send(w3, deployer, src.functions.reading(meter_a, 1, alice, 10 * 900, [3000, 2000, 1200, 200, 1800]))
    send(w3, deployer, src.functions.reading(b"B".ljust(32, b"\0"), 1, bob, 10 * 900, [0, 1500, 0, 1500, 0]))
    send(w3, deployer, src.functions.trade(10, alice, bob, 1000))
    # no MeterRegistered event and no colour given: unknown, never assumed solar
    assert load_readings(w3, src.address)["colour"].tolist() == ["unknown", "unknown"]
    assert load_trades(w3, src.address)["seller_colour"].tolist() == ["unknown"]
    readings = load_readings(w3, src.address, colours={meter_a: "solar", b"B".ljust(32, b"\0"): "none"})
    trades = load_trades(w3, src.address, colours={alice: "solar"})
    assert readings.to_dict("records")[0] == {
        "owner": alice, "interval_id": 10, "generation_wh": 3000, "consumption_wh": 2000, "export_wh": 1200,
        "import_wh": 200, "self_consumed_wh": 1800, "colour": "solar", "meter_id": meter_a}
    assert trades.to_dict("records") == [
        {"interval_id": 10, "seller": alice, "buyer": bob, "wh": 1000, "seller_colour": "solar"}]

    issue(b"A", alice, 10, 1800)
    send(w3, deployer, crev.token.functions.setMinimumRetirement(1))
    retire(w3, wallets[1], crev, 10**14, beneficiary_name="me")
    ledger = load_ledger(w3, crev.address, from_block=crev.deploy_block)
    [lot] = ledger.lots.values()
    assert (lot.owner, lot.interval_id, lot.amount, lot.meter_id) == (alice, 10, crev_amount(1800, 450), meter_a)
    [ret] = ledger.retirements
    assert (ret.amount, ret.holder, ret.claimant, ret.lots) == (10**14, alice, alice, ((1, 10**14),))

    rep = carbon_report(readings, trades, CFG, ledger=ledger)
    a = _row(rep, alice, 10)
    assert a["renewable_ratio"] == 0.9 and a["crev_earned_base_units"] == crev_amount(1800, 450)
    assert a["crev_kept_base_units"] == crev_amount(1800, 450)  # retired for itself: still its claim
    assert _row(rep, bob, 10)["renewable_ratio"] == pytest.approx(1000 / 1500)


def test_crev_sums_are_exact_past_int64(tmp_path):
    # issue 17: lots that fit int64 one by one but not together, and one past 2**64 on its own
    lots = [(1, "alice", 10, 9 * 10**18 + 1), (2, "alice", 10, 9 * 10**18 + 1), (3, "alice", 10, 9 * 10**18 + 1),
            (4, "alice", 11, 2**64 + 5), (5, "bob", 10, 7 * 10**18)]
    ledger = _ledger(lots, [(1, "alice", "", 11, [(4, 2**64 + 3)]), (2, "alice", "", 11, [(1, 6 * 10**18)])])
    rep = carbon_report(READINGS, TRADES, CFG, ledger=ledger)
    assert _row(rep, "alice", 10)["crev_earned_base_units"] == 3 * (9 * 10**18 + 1)
    assert _row(rep, "alice", 11)["crev_retired_base_units"] == 2**64 + 3 + 6 * 10**18
    assert all(type(v) is int for c in ("crev_earned_base_units", "crev_retired_base_units") for v in rep[c])
    totals = carbon_totals(rep)
    assert totals == {"crev_earned_base_units": sum(a for *_, a in lots),
                      "crev_kept_base_units": sum(a for *_, a in lots),
                      "crev_retired_base_units": 2**64 + 3 + 6 * 10**18,
                      "crev_claimed_base_units": sum(a for *_, a in lots)}
    alice = participant_summary(rep).set_index("participant").loc["alice"]
    assert alice["crev_earned_base_units"] == 3 * (9 * 10**18 + 1) + 2**64 + 5
    assert alice["crev_earned_base_units"] - alice["crev_retired_base_units"] == 3 * (9 * 10**18 + 1) + 2 - 6 * 10**18

    path = write_csv(rep, tmp_path / "carbon.csv")
    back = pd.read_csv(path, dtype=str)
    assert sum(int(v) for v in back["crev_earned_base_units"]) == totals["crev_earned_base_units"]
    assert sum(Decimal(v) for v in back["crev_retired_t"]) == Decimal(totals["crev_retired_base_units"]) / 10**18
    summary = write_csv(participant_summary(rep), tmp_path / "summary.csv")
    back = pd.read_csv(summary, dtype=str).set_index("participant")
    assert int(back.loc["alice", "crev_earned_base_units"]) == alice["crev_earned_base_units"]
