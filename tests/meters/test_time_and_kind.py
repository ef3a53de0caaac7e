"""Issue 16, items 1–3: readings bound to real time and to the meter's kind (attacks first).

Each test signs what a tampered meter or a stolen device key would sign and checks that the
registry refuses it by name, mints and burns nothing, and leaves honest readings working.
"""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account
from web3.logs import DISCARD

from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.exceptions import TransactionFailed
from gridcoop_sdk.meters import check_reading, get_meter, register_meter, submit_readings
from gridcoop_sdk.readings import Reading, ReadingSigner, meter_id
from gridcoop_sdk.tx import send

from .conftest import warp

WH = 10**15
RATED_W = 8000
MAX_WH = RATED_W * 900 // 3600  # 2000 Wh: the most an 8 kW meter can measure in 15 minutes


def _now(w3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


def _reading(mid: bytes, start: int, *, gen: int = 0, cons: int = 0, exp: int = 0, imp: int = 0,
             seq: int | None = None) -> Reading:
    return Reading(meter_id=mid, sequence=start // 900 if seq is None else seq, interval_start=start,
                   interval_end=start + 900, generation_wh=gen, consumption_wh=cons, export_wh=exp,
                   import_wh=imp, frequency_mhz=50_000)


def _meter(w3, deployer, registry, owner, name: str, kind: str, *, colour="solar", certified=False):
    dev = Account.create()
    mid = meter_id(f"attack/{name}")
    register_meter(w3, deployer, registry, meter_id=mid, signer=dev.address, owner=owner.address, kind=kind,
                   colour=colour, certified=certified, rated_power_w=RATED_W)
    return mid, ReadingSigner(dev.key, w3.eth.chain_id, registry.address)


def _supply(watt) -> int:
    return watt.functions.totalSupply().call()


def test_a_day_of_future_readings_at_rated_power_mints_nothing(w3, deployer, registry, watt, owner, gateway):
    mid, signer = _meter(w3, deployer, registry, owner, "future", "prosumer")
    registered = get_meter(registry, mid)["valid_from"]
    first = (registered // 900 + 1) * 900  # the first interval that starts after registration
    warp(w3, first + 900 + 30)  # that interval is over; the next 96 are not
    # The attack: the next 24 hours at the meter's maximum output, signed now.
    future = [signer.sign(_reading(mid, first + 900 * k, gen=MAX_WH, exp=MAX_WH)) for k in range(1, 97)]
    res = submit_readings(w3, gateway, registry, future)
    assert not res.accepted and len(res.rejected) == 96
    assert {r[2] for r in res.rejected} == {"FutureInterval"}
    assert _supply(watt) == 0
    assert get_meter(registry, mid)["last_interval_end"] == 0  # the meter's clock was not pushed ahead
    # The honest reading for the interval that is over is still accepted (not locked out).
    honest = signer.sign(_reading(mid, first, gen=1500, cons=500, exp=1000))
    assert submit_readings(w3, gateway, registry, [honest]).accepted == [honest.key()]
    assert _supply(watt) == 1000 * WH
    # Once its interval is over, the next one is accepted as well.
    nxt = signer.sign(_reading(mid, first + 900, gen=800, cons=300, exp=500))
    assert check_reading(w3, registry, nxt) == "FutureInterval"
    warp(w3, first + 1800)
    assert submit_readings(w3, gateway, registry, [nxt]).accepted == [nxt.key()]
    assert _supply(watt) == 1500 * WH


def test_clock_drift_up_to_max_clock_drift_is_accepted(w3, deployer, wallets, registry, owner, gateway):
    mid, signer = _meter(w3, deployer, registry, owner, "drift", "prosumer")
    first = (get_meter(registry, mid)["valid_from"] // 900 + 1) * 900
    assert registry.functions.maxClockDrift().call() == 120
    end = first + 900
    # A gateway 100 s ahead of the chain: accepted; 121 s ahead: refused as FutureInterval.
    warp(w3, end - 121)
    early = signer.sign(_reading(mid, first, gen=300, cons=300))
    assert check_reading(w3, registry, early) == "FutureInterval"
    warp(w3, end - 100)
    assert check_reading(w3, registry, early) is None
    # The DAO (PARAMETER_ROLE) may widen it up to 900 s; nobody else may change it.
    with pytest.raises(TransactionFailed) as err:
        send(w3, wallets[5], registry.functions.setMaxClockDrift(300))
    assert err.value.error_name == "AccessControlUnauthorizedAccount"
    with pytest.raises(TransactionFailed) as err:
        send(w3, deployer, registry.functions.setMaxClockDrift(901))
    assert err.value.error_name == "MeterInvalidParameter"
    rcpt = send(w3, deployer, registry.functions.setMaxClockDrift(300))
    assert registry.events.MaxClockDriftSet().process_receipt(rcpt)[0].args.seconds_ == 300
    later = signer.sign(_reading(mid, first + 900, gen=300, cons=300))  # ends 1000 s from now
    assert check_reading(w3, registry, later) == "FutureInterval"
    warp(w3, first + 1800 - 290)
    assert check_reading(w3, registry, later) is None


def test_readings_from_before_registration_mint_nothing(w3, deployer, registry, watt, owner, gateway):
    mid, signer = _meter(w3, deployer, registry, owner, "backdated", "prosumer")
    registered = get_meter(registry, mid)["valid_from"]
    assert abs(registered - _now(w3)) < 60
    warp(w3, registered + 3600)
    containing = registered // 900 * 900  # the interval in which the meter was registered
    backdated = [
        signer.sign(_reading(mid, 900, gen=MAX_WH, exp=MAX_WH, seq=1)),  # 1970
        signer.sign(_reading(mid, containing - 86400, gen=MAX_WH, exp=MAX_WH, seq=2)),  # the day before
    ]
    if containing < registered:  # began before registration (unless registered on the boundary)
        backdated.append(signer.sign(_reading(mid, containing, gen=MAX_WH, exp=MAX_WH, seq=3)))
    res = submit_readings(w3, gateway, registry, backdated)
    assert not res.accepted and {r[2] for r in res.rejected} == {"BeforeRegistration"}
    assert _supply(watt) == 0 and get_meter(registry, mid)["last_sequence"] == 0
    first = (registered + 899) // 900 * 900
    ok = signer.sign(_reading(mid, first, gen=700, cons=200, exp=500, seq=4))
    assert submit_readings(w3, gateway, registry, [ok]).accepted == [ok.key()]
    assert _supply(watt) == 500 * WH


def test_consumer_meter_cannot_report_generation(w3, deployer, registry, watt, owner, gateway):
    mid, signer = _meter(w3, deployer, registry, owner, "consumer", "consumer", colour="grid")
    first = (get_meter(registry, mid)["valid_from"] // 900 + 1) * 900
    warp(w3, first + 1800)
    sells = signer.sign(_reading(mid, first, gen=1200, cons=200, exp=1000))
    hides = signer.sign(_reading(mid, first, gen=300, cons=300))  # generation, nothing exported
    for s in (sells, hides):
        assert check_reading(w3, registry, s) == "KindMismatch"
    res = submit_readings(w3, gateway, registry, [sells])
    assert res.rejected == [(sells.key()[0], sells.key()[1], "KindMismatch")] and _supply(watt) == 0
    # What a consumer may report: consumption and import (burnt, or recorded as energy debt).
    buys = signer.sign(_reading(mid, first + 900, cons=400, imp=400))
    assert submit_readings(w3, gateway, registry, [buys]).accepted == [buys.key()]
    assert registry.functions.energyDebtWh(owner.address).call() == 400


def test_battery_meter_mints_burns_and_issues_nothing(w3, deployer, registry, watt, owner, gateway):
    probe = deploy(w3, deployer, "SelfConsumptionProbe", record=False)
    send(w3, deployer, registry.functions.setSelfConsumptionHook(probe.address))
    mid, signer = _meter(w3, deployer, registry, owner, "battery", "battery", colour="solar", certified=True)
    first = (get_meter(registry, mid)["valid_from"] // 900 + 1) * 900
    warp(w3, first + 1800)
    discharge = signer.sign(_reading(mid, first, gen=1500, cons=20, exp=1480))  # energy users stored
    charge = signer.sign(_reading(mid, first + 900, cons=1000, imp=1000))
    res = submit_readings(w3, gateway, registry, [discharge, charge])
    assert len(res.accepted) == 2
    # Accepted as the battery's history, but no second source of WATT, no burn, no debt, no C-REV.
    assert _supply(watt) == 0
    assert registry.functions.energyDebtWh(owner.address).call() == 0
    assert probe.functions.calls().call() == 0
    ev = registry.events.ReadingAccepted().process_receipt(w3.eth.get_transaction_receipt(res.tx_hash))
    assert [(e.args.exportWh, e.args.importWh, e.args.selfConsumedWh) for e in ev] == [(1480, 0, 0), (0, 1000, 0)]


def test_interval_length_can_change_under_a_crev_hook(w3, deployer, registry, owner, gateway):
    """Issue 19: the hook gets the interval's start time and length, so the DAO may change the length
    with C-REV installed (issue 16 refused it as a stopgap while the hook got ``start / length`` ids)."""
    probe = deploy(w3, deployer, "SelfConsumptionProbe", record=False)
    send(w3, deployer, registry.functions.setSelfConsumptionHook(probe.address))
    mid, signer = _meter(w3, deployer, registry, owner, "half-hourly", "prosumer", certified=True)
    first = (get_meter(registry, mid)["valid_from"] // 900 + 1) * 900
    warp(w3, first + 900)
    quarter = signer.sign(_reading(mid, first, gen=600, cons=600))
    assert submit_readings(w3, gateway, registry, [quarter]).accepted == [quarter.key()]
    send(w3, deployer, registry.functions.setIntervalLength(1800))
    assert registry.functions.intervalLength().call() == 1800
    half = -(-(first + 900) // 1800) * 1800  # the first half hour after the last reading's end
    warp(w3, half + 1800)
    r = dataclasses.replace(_reading(mid, half, gen=1500, cons=1500), interval_end=half + 1800)
    signed = signer.sign(r)
    res = submit_readings(w3, gateway, registry, [signed])
    assert res.accepted == [signed.key()]
    receipt = w3.eth.get_transaction_receipt(res.tx_hash)
    assert not registry.events.SelfConsumptionHookFailed().process_receipt(receipt, errors=DISCARD)
    seen = [(e.args.intervalStart, e.args.intervalSeconds, e.args.selfConsumedWh)
            for e in probe.events.SelfConsumptionSeen().get_logs(from_block=0)]
    assert seen == [(first, 900, 600), (half, 1800, 1500)]


def _backfill(signer, mid, first_start: int, n: int, seq0: int) -> list:
    return [signer.sign(_reading(mid, first_start + 900 * k, gen=MAX_WH, exp=MAX_WH, seq=seq0 + k)) for k in range(n)]


def test_reactivation_does_not_let_a_key_backfill_the_suspension(w3, deployer, registry, watt, owner, gateway):
    """A meter suspended for a week (tamper alarm, owner moved out): after reactivation the same key
    must not mint rated-maximum readings for the week nobody measured (security review, M-1)."""
    mid, signer = _meter(w3, deployer, registry, owner, "suspended", "prosumer")
    first = (get_meter(registry, mid)["valid_from"] // 900 + 1) * 900
    warp(w3, first + 900)
    ok = signer.sign(_reading(mid, first, gen=300, cons=300, seq=1))
    assert submit_readings(w3, gateway, registry, [ok]).accepted
    send(w3, deployer, registry.functions.suspendMeter(mid))
    warp(w3, first + 900 + 7 * 86400)
    send(w3, deployer, registry.functions.reactivateMeter(mid))
    reactivated = get_meter(registry, mid)["valid_from"]
    assert reactivated >= first + 900 + 7 * 86400
    week = _backfill(signer, mid, first + 900, 96 * 7, 2)
    res = submit_readings(w3, gateway, registry, week[:100])
    assert not res.accepted and {r[2] for r in res.rejected} == {"BeforeRegistration"}
    assert _supply(watt) == 0
    # from the reactivation on, the meter reports as before
    start = (reactivated // 900 + 1) * 900
    warp(w3, start + 900)
    after = signer.sign(_reading(mid, start, gen=500, cons=100, exp=400, seq=10_000))
    assert submit_readings(w3, gateway, registry, [after]).accepted == [after.key()]
    assert _supply(watt) == 400 * WH


def test_a_rotated_key_cannot_vouch_for_the_time_before_it(w3, deployer, registry, watt, owner, gateway):
    """A dead meter's device is replaced after 30 days: the new key must not mint for those days."""
    mid, signer = _meter(w3, deployer, registry, owner, "rotated", "prosumer")
    first = (get_meter(registry, mid)["valid_from"] // 900 + 1) * 900
    warp(w3, first + 900)
    assert submit_readings(w3, gateway, registry, [signer.sign(_reading(mid, first, gen=300, cons=300, seq=1))]).accepted
    warp(w3, first + 900 + 30 * 86400)
    new = Account.create()
    send(w3, deployer, registry.functions.rotateKey(mid, new.address))
    new_signer = ReadingSigner(new.key, w3.eth.chain_id, registry.address)
    res = submit_readings(w3, gateway, registry, _backfill(new_signer, mid, first + 900, 96, 2))
    assert not res.accepted and {r[2] for r in res.rejected} == {"BeforeRegistration"}
    assert _supply(watt) == 0
    rotated = get_meter(registry, mid)["valid_from"]
    start = (rotated // 900 + 1) * 900
    warp(w3, start + 900)
    after = new_signer.sign(_reading(mid, start, gen=500, cons=100, exp=400, seq=10_000))
    assert submit_readings(w3, gateway, registry, [after]).accepted == [after.key()]
