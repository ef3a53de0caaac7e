"""End to end: a short demo (3 households, a sunny hour and a half) on its own anvil, with real
Modbus simulators, the bridge, the keeper over HTTP and the ape DAO scripts — then the report's
figures are checked against the chain."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest
from web3 import Web3

from coop_demo.day import Demo, DemoOptions
from gridcoop_sdk.region_config import load_region
from gridcoop_sdk.units import WATT_PER_WH

pytestmark = pytest.mark.timeout(600)

ZERO = "0x0000000000000000000000000000000000000000"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    d = Demo(DemoOptions(households=3, intervals=6, start_hour=10.5, second_intervals=2, speed=1e9, out=out))
    try:
        html = d.run()
        yield d, out, html
    finally:
        d.close()


def _logs(w3: Web3, contract, event: str) -> list:
    return list(getattr(contract.events, event)().get_logs(from_block=0, to_block="latest"))


def test_report_folder_holds_data_plots_and_page(demo):
    _, out, html = demo
    folder = out / "sakura"
    for name in ("intervals.csv", "households.csv", "balances.csv", "fees.csv", "trades.csv",
                 "price_volume.png", "households.png", "battery_soc.png", "fee_split.png", "renewable_co2.png"):
        assert (folder / name).stat().st_size > 0, name
    page = html.read_text()
    assert "price_volume.png" in page and "Sakura Hills" in page
    assert (out / "kaede" / "index.html").exists()


def test_watt_supply_is_accepted_export_minus_burns(demo):
    d, out, _ = demo
    run = d.runs[0]
    w3, r = run.w3, run.region
    hh = pd.read_csv(out / "sakura" / "households.csv")
    watt = r["WattToken"]
    minted = sum(e["args"]["value"] for e in _logs(w3, watt, "Transfer") if e["args"]["from"] == ZERO)
    burnt = sum(e["args"]["value"] for e in _logs(w3, watt, "Transfer") if e["args"]["to"] == ZERO)
    trades = _logs(w3, r["EnergyMarket"], "Trade")
    grid_sold = sum(e["args"]["wh"] for e in trades if e["args"]["seller"] == run.utility)
    grid_bought = sum(e["args"]["wh"] for e in trades if e["args"]["buyer"] == run.utility)
    assert grid_bought > 0, "the grid bought the noon surplus at feed-in"
    # WATT enters by metered export and by the grid's sales; it leaves by import, battery losses
    # and the grid's purchases; import beyond the owner's WATT is energy debt (no burn)
    assert minted == (int(hh["export_wh"].sum()) + grid_sold) * WATT_PER_WH
    debt = sum(e["args"]["shortfallWh"] for e in _logs(w3, r["MeterRegistry"], "EnergyDebtRecorded"))
    losses = sum(e["args"]["lossWh"] for e in _logs(w3, r["BatteryStorage"], "Discharged"))
    assert burnt == (int(hh["import_wh"].sum()) - debt + losses + grid_bought) * WATT_PER_WH
    assert watt.functions.totalSupply().call() == minted - burnt
    assert minted > 0, "a sunny run mints WATT"


def test_every_settled_trade_is_in_the_report(demo):
    d, out, _ = demo
    run = d.runs[0]
    trades = pd.read_csv(out / "sakura" / "trades.csv")
    events = _logs(run.w3, run.region["EnergyMarket"], "Trade")
    assert len(events) > 0, "the short sunny run trades"
    assert len(trades) == len(events)
    assert int(trades["wh"].sum()) == sum(e["args"]["wh"] for e in events)
    intervals = pd.read_csv(out / "sakura" / "intervals.csv")
    assert int(intervals["trades"].sum()) == len(events)
    assert int(intervals["volume_wh"].sum()) == sum(e["args"]["wh"] for e in events)


def test_fees_split_80_10_10_to_the_unit(demo):
    d, out, _ = demo
    run = d.runs[0]
    paid = _logs(run.w3, run.region["BatteryStorage"], "FeePaid")
    assert paid, "battery users paid fees"
    for e in paid:
        a = e["args"]
        assert a["marketingPart"] == a["amount"] // 10 and a["platformPart"] == a["amount"] // 10
        assert a["ownersPart"] + a["marketingPart"] + a["platformPart"] == a["amount"]
    fees = pd.read_csv(out / "sakura" / "fees.csv", dtype=str)  # text: base units are summed as Python ints
    assert sum(int(u) for u in fees["fee_base_units"]) == sum(e["args"]["amount"] for e in paid)
    for role, part in (("marketing", "marketingPart"), ("platform", "platformPart")):
        units = fees[fees["role"] == role]["fee_base_units"]
        assert sum(int(u) for u in units) == sum(e["args"][part] for e in paid)


def test_crev_issued_equals_certified_self_consumption_times_factor(demo):
    d, out, _ = demo
    run = d.runs[0]
    cfg = load_region("sakura").scaled(3)
    certified = {h.name for h in cfg.households if h.certified and h.colour == "solar"}
    hh = pd.read_csv(out / "sakura" / "households.csv")
    wh = int(hh[hh["household"].isin(certified)]["self_consumed_wh"].sum())
    token = run.region.crev.token
    assert token.functions.totalIssued().call() == wh * cfg.grid.crev_factor * 10**9
    assert wh > 0
    assert token.functions.totalRetired().call() > 0, "one member retired C-REV"


def test_noon_vote_changed_the_fee_through_the_dao(demo):
    d, _, _ = demo
    run = d.runs[0]
    storage = run.region["BatteryStorage"]
    changes = _logs(run.w3, storage, "FeeRateChanged")
    assert len(changes) == 2 and changes[1]["args"]["rate"] == changes[0]["args"]["rate"] * 3 // 2
    tx = run.w3.eth.get_transaction(changes[1]["transactionHash"])
    assert tx["to"] == run.region.dao.treasury.address


def test_regions_are_independent(demo):
    d, _, _ = demo
    a, b = d.runs
    assert not set(a.region.addresses().values()) & set(b.region.addresses().values())
    assert a.region["LocalCurrency"].functions.symbol().call() != b.region["LocalCurrency"].functions.symbol().call()


def test_grid_participant_and_energy_debt_settled_on_chain(demo):
    """The utility bought the surplus at feed-in and was paid every Wh of energy debt at retail:
    nothing is owed off chain, and the summary's money figures are the chain's to the base unit."""
    d, out, _ = demo
    run = d.runs[0]
    w3, r, cfg = run.w3, run.region, run.cfg
    market, registry, cur = r["EnergyMarket"], r["MeterRegistry"], r["LocalCurrency"]
    dec = cfg.local_currency.decimals
    feed_in, retail = int(cfg.grid.feed_in_price * 10**dec), int(cfg.grid.retail_price * 10**dec)
    assert tuple(market.functions.grid().call()[:4]) == (run.utility, cur.address, feed_in, retail)
    for a in run.households.values():
        assert registry.functions.energyDebtWh(a.address).call() == 0
    recorded = sum(e["args"]["shortfallWh"] for e in _logs(w3, registry, "EnergyDebtRecorded"))
    paid = _logs(w3, market, "EnergyDebtPaid")
    assert recorded > 0 and sum(e["args"]["wh"] for e in paid) == recorded
    for e in paid:  # each payment: ceil(wh × retail / 1000) to the utility
        assert e["args"]["amount"] == -(-e["args"]["wh"] * retail // 1000) and e["args"]["pricePerKwh"] == retail
    trades = _logs(w3, market, "Trade")
    for e in trades:  # the grid trades at its tariff: it buys at feed-in at most, sells at retail at least
        if e["args"]["buyer"] == run.utility:
            assert e["args"]["pricePerKwh"] <= feed_in
        if e["args"]["seller"] == run.utility:
            assert e["args"]["pricePerKwh"] >= retail
    s = d.reports[0].summary
    sym = cfg.local_currency.symbol
    assert s["energy debt left (kWh)"] == 0
    assert s["report checks (exact, against the chain)"] == "pass"
    unit = Decimal(10) ** -dec
    debt_money = sum(e["args"]["amount"] for e in paid)
    assert s[f"energy debt paid to the grid ({sym})"] == debt_money * unit
    # the utility's account: issued at the start, then paid debt and grid sales, paid for its purchases
    issued = sum(e["args"]["value"] for e in _logs(w3, cur, "Transfer")
                 if e["args"]["from"] == ZERO and e["args"]["to"] == run.utility)
    balance = cur.functions.balanceOf(run.utility).call()
    got = (s[f"paid to the grid in the market ({sym})"] - s[f"earned from the grid ({sym})"]) / unit + debt_money
    assert balance - issued == got
    assert s[f"savings of the co-op ({sym})"] == (s[f"bill at the utility alone ({sym})"]
                                                  - s[f"bill in the co-op ({sym}, WATT left at feed-in)"])
