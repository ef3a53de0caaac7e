"""Issue 19, part 4: C-REV at every interval length, end to end through the SDK on anvil.

Real signed readings of a certified solar meter go through the MeterRegistry, whose hook issues
C-REV; the lots are keyed by the interval's start time and record its length, the factor schedule
(Unix seconds) applies by the interval's start, and the trail stays exact to the Wh through every
holder. With the old ``start / length`` ids a 30-minute region got its factor changes decades late
and lots keyed in the wrong unit.
"""

from __future__ import annotations

import pytest
from eth_account import Account
from web3.logs import DISCARD

from gridcoop_sdk.carbon import crev_factor_schedule, interval_of_factor, load_ledger, load_readings
from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.crev import (
    balance,
    crev_amount,
    deploy_crev,
    emission_factor_schedule,
    format_interval,
    format_trace,
    issued_lots,
    lot_info,
    lot_of,
    retire,
    set_emission_factor,
    trace,
)
from gridcoop_sdk.meters import deploy_meters, get_meter, register_meter, submit_readings
from gridcoop_sdk.readings import Reading, ReadingSigner, meter_id
from gridcoop_sdk.tx import send

RATED_W = 8000
FACTOR = 450


def _warp(w3, ts: int) -> None:
    if ts > w3.eth.get_block("latest")["timestamp"]:
        w3.provider.make_request("evm_setNextBlockTimestamp", [int(ts)])
        w3.provider.make_request("evm_mine", [])


@pytest.fixture
def region(w3, wallets, deployments_dir, snapshot):
    """WATT, a MeterRegistry and C-REV wired by the self-consumption hook, and one certified solar meter."""
    admin, alice = wallets[0], wallets[2]
    watt = deploy(w3, admin, "WattToken", admin.address)
    registry = deploy_meters(w3, admin, watt)
    crev = deploy_crev(w3, admin, issuer=registry.address, factor_g_per_kwh=FACTOR, minimum_retirement=0,
                       region="intervals", directory=deployments_dir)
    send(w3, admin, registry.functions.setSelfConsumptionHook(crev.token.address))
    send(w3, admin, registry.functions.setHookGasLimit(600_000))
    device = Account.create()
    mid = meter_id("intervals/roof")
    register_meter(w3, admin, registry, meter_id=mid, signer=device.address, owner=alice.address,
                   kind="prosumer", colour="solar", certified=True, rated_power_w=RATED_W)
    signer = ReadingSigner(device.key, w3.eth.chain_id, registry.address)
    state = {"end": get_meter(registry, mid)["valid_from"], "seq": 0}

    def read(start: int, seconds: int, wh: int) -> Reading:
        state["seq"] += 1
        return Reading(meter_id=mid, sequence=state["seq"], interval_start=start, interval_end=start + seconds,
                       generation_wh=wh, consumption_wh=wh, export_wh=0, import_wh=0, frequency_mhz=50_000)

    def submit(*readings: Reading) -> dict:
        """Submit once every interval is over; all accepted, and the C-REV hook never failed."""
        _warp(w3, max(r.interval_end for r in readings))
        res = submit_readings(w3, wallets[1], registry, [signer.sign(r) for r in readings])
        assert len(res.accepted) == len(readings), res.rejected
        receipt = w3.eth.get_transaction_receipt(res.tx_hash)
        assert not registry.events.SelfConsumptionHookFailed().process_receipt(receipt, errors=DISCARD)
        state["end"] = max(state["end"], *(r.interval_end for r in readings))
        return receipt

    def next_start(seconds: int) -> int:
        return -(-state["end"] // seconds) * seconds

    return {"registry": registry, "crev": crev, "mid": mid, "read": read, "submit": submit,
            "next_start": next_start, "admin": admin}


@pytest.mark.parametrize("seconds", [900, 1800, 60, 86_400])
def test_lots_and_factor_at_every_interval_length(w3, wallets, region, seconds):
    registry, crev, mid, admin = region["registry"], region["crev"], region["mid"], region["admin"]
    alice, bob, carol = wallets[2], wallets[5], wallets[6]
    if seconds != 900:  # with the C-REV hook installed (issue 16's stopgap refused this)
        send(w3, admin, registry.functions.setIntervalLength(seconds))
    wh = min(1000, RATED_W * seconds // 3600)

    s1 = region["next_start"](seconds)
    region["submit"](region["read"](s1, seconds, wh))
    set_emission_factor(w3, admin, crev, 300)  # for intervals starting 15 minutes from now on
    effective = emission_factor_schedule(crev)[-1][0]
    assert effective == w3.eth.get_block("latest")["timestamp"] + 900
    s2 = s1 + seconds  # starts before the change: keeps 450 even though it is read after it
    s3 = max(-(-effective // seconds) * seconds, s2 + seconds)  # the first one starting at or after it
    region["submit"](region["read"](s2, seconds, wh), region["read"](s3, seconds, wh))

    expected = [(s1, FACTOR), (s2, FACTOR), (s3, 300)]
    for lot_id, (start, factor) in enumerate(expected, 1):
        info = lot_info(crev, lot_id)
        assert lot_of(crev, mid, start) == lot_id
        assert (info.meter_id, info.interval_start, info.interval_seconds, info.interval_end, info.owner) == (
            mid, start, seconds, start + seconds, alice.address)
        assert (info.self_consumed_wh, info.factor_g_per_kwh, info.amount) == (wh, factor, crev_amount(wh, factor))
        assert crev.token.functions.emissionFactorAt(start).call() == factor

    # The LotIssued logs, decoded by the SDK, and the carbon report's ledger: a lot's interval_id is
    # the 15-minute interval of its reading's start, as for the readings themselves.
    logged = issued_lots(w3, crev, from_block=crev.deploy_block)
    assert [(e.lot_id, e.meter_id, e.interval_start, e.interval_seconds, e.owner, e.amount) for e in logged] == [
        (i, mid, s, seconds, alice.address, crev_amount(wh, f)) for i, (s, f) in enumerate(expected, 1)]
    ledger = load_ledger(w3, crev.address, from_block=crev.deploy_block)
    lots = [ledger.lots[i] for i in sorted(ledger.lots)]
    assert [(x.meter_id, x.interval_id, x.amount) for x in lots] == [
        (mid, s // 900, crev_amount(wh, f)) for s, f in expected]
    readings = load_readings(w3, registry.address, from_block=crev.deploy_block)
    assert [(r.meter_id, r.interval_id) for r in readings] == [(x.meter_id, x.interval_id) for x in lots]
    # The report's grid factor per 15-minute interval follows the schedule by interval start.
    per_interval = crev_factor_schedule(w3, crev.address)
    assert per_interval(interval_of_factor(effective) - 1) == FACTOR and per_interval(interval_of_factor(effective)) == 300

    # The trail, exact to the Wh through every holder: alice -> bob -> carol, carol retires.
    lot1 = crev_amount(wh, FACTOR)
    send(w3, alice, crev.token.functions.transfer(bob.address, lot1 + 10**9))  # lot 1 and 10^9 units (1 Wh x 1 g/kWh) of lot 2
    send(w3, bob, crev.token.functions.transfer(carol.address, lot1 + 10**9))
    cert = retire(w3, carol, crev, lot1 + 10**9, beneficiary_name="Carol's cafe")
    t = trace(w3, crev, cert)
    assert [(x.info.lot_id, x.info.interval_start, x.info.interval_seconds, x.retired_amount) for x in t.lots] == [
        (1, s1, seconds, lot1), (2, s2, seconds, 10**9)]
    assert t.holders == [alice.address, bob.address, carol.address]
    text = format_trace(t)
    assert f"lot 1: meter 0x{mid.hex()} interval {format_interval(s1, seconds)} issued to {alice.address}" in text
    assert f"{wh} Wh x 450 g/kWh" in text
    assert balance(w3, crev, alice.address).total == crev_amount(wh, FACTOR) - 10**9 + crev_amount(wh, 300)


def test_length_changes_under_the_hook_keep_every_lot(w3, wallets, region):
    """The DAO goes 15 → 30 → 1 → 60 minutes → a day → 15 minutes on one meter: every reading earns
    exactly once, under its own start, with its own length."""
    registry, crev, mid, admin = region["registry"], region["crev"], region["mid"], region["admin"]
    seen = []
    for seconds in (900, 1800, 60, 3600, 86_400, 900):
        send(w3, admin, registry.functions.setIntervalLength(seconds))
        start = region["next_start"](seconds)
        wh = min(1000, RATED_W * seconds // 3600)
        region["submit"](region["read"](start, seconds, wh))
        seen.append((start, seconds, wh))
    n = crev.token.functions.lotCount().call()
    assert n == len(seen)
    assert [(i.interval_start, i.interval_seconds, i.self_consumed_wh)
            for i in (lot_info(crev, k) for k in range(1, n + 1))] == seen
    assert [lot_of(crev, mid, s) for s, _, _ in seen] == list(range(1, n + 1))
    assert crev.token.functions.totalSupply().call() == sum(crev_amount(wh, FACTOR) for *_, wh in seen)
