"""A co-op day on anvil whose token sums pass 2**64 base units (TSL fees, SKC money): every report's
totals equal the chain to the last base unit.

Issue 17: the battery report summed 18-decimal TSL base units in an int64 column, which wraps at
2**63 (9.22 TSL); the day's 51.70 TSL of fees showed as 14.8 TSL and an owner's share as −6.04 TSL.
The e2e demo is too short to get there, so this day is built to: the project's own demo code
(deploy from a region file, Modbus simulators, bridge, keeper over HTTP, the noon vote through the
SDK) runs 4 hours of a region whose three battery users pay hourly fees each below 2**63 base units
(as on the real day) but adding up past 2**64, and whose market money is 5× Sakura's prices, so
every seller's and buyer's total passes 2**63 too.
"""

from __future__ import annotations

import html
import re
from decimal import Decimal

import pandas as pd
import pytest
import yaml

from coop_demo.day import Demo, DemoOptions
from gridcoop_sdk.region_config import CONFIG_DIR
from keeper.reports import battery as battery_report
from keeper.reports import carbon
from keeper.reports import market as market_report

pytestmark = pytest.mark.timeout(300)

INT64_MAX = 2**63 - 1
ISSUE_PER_HOUSEHOLD = 200_000  # SKC


def _config(tmp) -> str:
    cfg = yaml.safe_load((CONFIG_DIR / "sakura.yaml").read_text())
    cfg["storage"].update(welcome_grant_tsl=1000, marketing_pool_tsl=10_000)  # every battery user can pay
    cfg["batteries"][0]["fee_tsl_per_kwh_slot"] = 0.09  # each hourly payment < 9.22 TSL, the day's sum > 18.45
    cfg["grid"].update(retail_price=155, feed_in_price=45)  # 5× Sakura: each trade < 9.22 SKC, totals above
    cfg["local_currency"]["issue_per_household"] = ISSUE_PER_HOUSEHOLD
    sim = {"load_kwh_day": 6.5, "home_battery_kwh": 1}  # a small home battery: the PV surplus reaches the grid
    cfg["households"] = [
        {"name": "hh01", "kind": "pv", "certified": True, "simulation": {"pv_kwp": 5.0, "load_kwh_day": 9.0}},
        {"name": "hh02", "kind": "consumer", "certified": False, "simulation": {"load_kwh_day": 11.0}},
        {"name": "hh03", "kind": "pv_battery", "certified": True, "simulation": {"pv_kwp": 7.5, **sim}},
        {"name": "hh04", "kind": "consumer", "certified": False, "simulation": {"load_kwh_day": 13.0}},
        {"name": "hh05", "kind": "pv_battery", "certified": False, "simulation": {"pv_kwp": 5.0, **sim}},
        {"name": "hh06", "kind": "pv_battery", "certified": True, "simulation": {"pv_kwp": 6.0, **sim}},
    ]
    path = tmp / "sakura-big-sums.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("big-sums")
    # 11:00–15:00: deposits from 11:00, fees paid at 11:40, 12:40, 13:40 and 14:40, the noon vote
    d = Demo(DemoOptions(config=_config(tmp), second_config=None, intervals=16, start_hour=11, speed=1e9,
                         out=tmp / "out", dao_vote_via_scripts=False))
    try:
        html_path = d.run()
        yield d.runs[0], tmp / "out" / "sakura", html_path
    finally:
        d.close()


def _logs(contract, event: str) -> list:
    return list(getattr(contract.events, event)().get_logs(from_block=0, to_block="latest"))


def _csv(path) -> pd.DataFrame:
    """A report CSV as text, so that no column is parsed into int64 or float on the way back."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _summary(html_path, figure: str) -> str:
    m = re.search(rf"<th[^>]*>{re.escape(html.escape(figure))}</th><td>([^<]*)</td>", html_path.read_text())
    assert m, f"summary figure {figure!r} not in {html_path}"
    return html.unescape(m.group(1))


def _units(values) -> list[int]:
    return [int(v) for v in values]


def test_battery_fees_in_every_report_equal_the_contract_to_the_unit(day, tmp_path):
    run, folder, html_path = day
    storage = run.region["BatteryStorage"]
    paid = [e["args"] for e in _logs(storage, "FeePaid")]
    credited: dict[str, int] = {}
    for e in _logs(storage, "OwnerCredited"):
        credited[e["args"]["owner"]] = credited.get(e["args"]["owner"], 0) + e["args"]["amount"]
    fees = storage.functions.totalFeesPaid().call()
    # the day this test is for: many fees, each within int64, together past 2**64; an owner past 2**63
    assert len(paid) >= 6 and max(a["amount"] for a in paid) <= INT64_MAX
    assert fees == sum(a["amount"] for a in paid) > 2**64
    assert max(credited.values()) > INT64_MAX

    # fees.csv: one row per payee, exact base units and the same amount in TSL
    csv = _csv(folder / "fees.csv")
    assert list(csv.columns) == ["payee", "role", "fee_base_units", "fee_tsl"]
    assert sum(_units(csv["fee_base_units"])) == fees
    for units, tsl in zip(_units(csv["fee_base_units"]), csv["fee_tsl"], strict=True):
        assert units >= 0 and Decimal(tsl) == Decimal(units) / 10**18
    by_payee = dict(zip(csv["payee"], _units(csv["fee_base_units"]), strict=True))
    for name, acct in run.households.items():
        if acct.address in credited:  # nobody claims during the day: claimable is what was credited
            assert by_payee[f"owner {name}"] == credited[acct.address] == storage.functions.claimable(
                acct.address).call()
    assert by_payee["marketing"] == sum(a["marketingPart"] for a in paid) == (
        storage.functions.marketingPool().call() - storage.functions.totalPoolFunding().call()
        + storage.functions.totalGranted().call())
    assert by_payee["platform (DAO shares)"] == sum(a["platformPart"] for a in paid) == storage.functions.claimable(
        run.region["ContributionShares"].address).call()

    # intervals.csv: the fees of each step add up to the contract's total
    iv = _csv(folder / "intervals.csv")
    assert sum(_units(iv["fees_base_units"])) == fees
    assert all(Decimal(t) == Decimal(u) / 10**18 for u, t in zip(iv["fees_base_units"], iv["fees_tsl"], strict=True))

    # the summary (console table and index.html) and its exact self-check
    assert Decimal(_summary(html_path, "battery fees (TSL)")) == Decimal(fees) / 10**18
    assert _summary(html_path, "report checks (exact, against the chain)") == "pass"

    # the keeper's battery report and its CSV
    split = battery_report.battery_report(run.w3, storage)["fees"]
    row = split[split["role"] == "fees_paid"].iloc[0]
    assert row["amount_base_units"] == fees and bool(row["check"])
    owners = split[split["role"] == "owner"]
    assert dict(zip(owners["payee"], owners["amount_base_units"], strict=True)) == credited
    battery_report.write_csv({"fees": split}, tmp_path)
    back = _csv(tmp_path / "battery_fees.csv")
    assert _units(back["amount_base_units"]) == [int(a) for a in split["amount_base_units"]]
    assert sum(_units(back[back["role"] != "fees_paid"]["amount_base_units"])) == fees


def test_market_money_in_the_reports_equals_balance_changes(day, tmp_path):
    run, folder, _ = day
    cur, market = run.region["LocalCurrency"], run.region["EnergyMarket"]
    start = ISSUE_PER_HOUSEHOLD * 10 ** run.cfg.local_currency.decimals
    change = {a.address: cur.functions.balanceOf(a.address).call() - start for a in run.households.values()}
    # the utility (the grid participant) was issued as much as all households together
    change[run.utility] = cur.functions.balanceOf(run.utility).call() - start * len(run.households)
    debt_paid: dict[str, int] = {}
    for e in market.events.EnergyDebtPaid().get_logs(from_block=0):
        debt_paid[e["args"]["payer"]] = debt_paid.get(e["args"]["payer"], 0) + e["args"]["amount"]
    assert debt_paid, "households paid energy debt on chain"

    trades = market_report.trades_frame(run.keeper.db)
    assert len(trades) >= 8
    people = market_report.participants_frame(run.keeper.db).set_index("address")
    assert max(people["received_base_units"]) > 2**64 and max(people["paid_base_units"]) > INT64_MAX
    for address, delta in change.items():
        net = people.loc[address, "net_money_base_units"] if address in people.index else 0
        # the market's money, less the energy debt this household paid (the utility was paid it)
        extra = sum(debt_paid.values()) if address == run.utility else -debt_paid.get(address, 0)
        assert net + extra == delta, address
    # buyers pay each order's ceiling, sellers receive its floor: the difference is the market's dust
    dust = market.functions.roundingDust(cur.address).call()
    assert sum(change.values()) == -dust
    assert sum(people["paid_base_units"]) == sum(people["received_base_units"]) + dust
    intervals = market_report.intervals_frame(run.keeper.db)
    assert sum(intervals["rounding_dust_base_units"]) == dust
    assert sum(intervals["money_base_units"]) == sum(people["paid_base_units"])
    # the demo's intervals.csv: clearing prices exact, as the keeper settled them
    settled = {int(i): p for i, p in zip(intervals["interval_id"], intervals["price_base_units"], strict=True)
               if p is not None}
    iv = _csv(folder / "intervals.csv")
    traded = iv[iv["trades"] != "0"]
    assert len(traded) >= 4
    for i, p, shown in zip(traded["interval"], traded["price_base_units"], traded["price_per_kwh"], strict=True):
        assert int(p) == settled[int(i)] and Decimal(shown) == Decimal(int(p)) / 10**18

    market_report.write_csv(run.keeper.db, tmp_path)
    back = _csv(tmp_path / "market_participants.csv").set_index("address")
    for address, delta in change.items():
        extra = sum(debt_paid.values()) if address == run.utility else -debt_paid.get(address, 0)
        assert (int(back.loc[address, "net_money_base_units"]) if address in back.index else 0) + extra == delta
    assert sum(_units(_csv(tmp_path / "market_intervals.csv")["money_base_units"])) == sum(
        people["paid_base_units"])

    # balances.csv: every token of every household, exact, with its display column
    balances = _csv(folder / "balances.csv").set_index("household")
    r = run.region
    for name, acct in run.households.items():
        a = acct.address
        assert int(balances.loc[name, "SKC_base_units"]) == cur.functions.balanceOf(a).call()
        assert Decimal(balances.loc[name, "SKC"]) == Decimal(cur.functions.balanceOf(a).call()) / 10**18
        assert int(balances.loc[name, "TSL_base_units"]) == r["TeslaToken"].functions.balanceOf(a).call()
        assert int(balances.loc[name, "WATT_base_units"]) == r["WattToken"].functions.balanceOf(a).call()
        assert int(balances.loc[name, "C-REV_base_units"]) == r.crev.token.functions.balanceOf(a).call()


def test_crev_report_totals_equal_issued_retired_and_balances(day, tmp_path):
    run, _, html_path = day
    w3, r = run.w3, run.region
    token = r.crev.token
    issued, retired = carbon.load_crev_flows(w3, token.address)
    readings = carbon.load_readings(w3, r["MeterRegistry"].address)
    trades = carbon.load_trades(w3, r["EnergyMarket"].address)
    rep = carbon.carbon_report(readings, trades, carbon.CarbonReportConfig(grid_factor_g_per_kwh=441),
                               crev_issued=issued, crev_retired=retired)
    totals = carbon.totals(rep)
    assert totals["crev_earned_base_units"] == token.functions.totalIssued().call() > 0
    assert totals["crev_retired_base_units"] == token.functions.totalRetired().call() > 0
    assert token.functions.totalSupply().call() == totals["crev_earned_base_units"] - totals["crev_retired_base_units"]
    per = carbon.participant_summary(rep).set_index("participant")
    for acct in run.households.values():
        a = acct.address
        held = (per.loc[a, "crev_earned_base_units"] - per.loc[a, "crev_retired_base_units"]) if a in per.index else 0
        assert held == token.functions.balanceOf(a).call()  # C-REV never changed hands during the day

    carbon.write_csv(rep, tmp_path / "carbon.csv")
    back = _csv(tmp_path / "carbon.csv")
    assert sum(_units(back["crev_earned_base_units"])) == token.functions.totalIssued().call()
    assert sum(Decimal(t) for t in back["crev_retired_t"]) == Decimal(token.functions.totalRetired().call()) / 10**18
    assert Decimal(_summary(html_path, "C-REV issued (t-CO2e)")) == Decimal(token.functions.totalIssued().call()) / 10**18
    assert Decimal(_summary(html_path, "C-REV retired (t-CO2e)")) == Decimal(
        token.functions.totalRetired().call()) / 10**18
