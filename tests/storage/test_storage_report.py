"""Keeper battery report: use per slot, fee split per payee, SoC reconciliation with a flag."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest
from storage_helpers import SLOT, next_slot_start, set_next_timestamp

from gridcoop_sdk.storage import send_with_margin as send
from keeper.reports import battery as rep


def test_report_from_chain_events(env, tmp_path):
    w3, s, alice, bob = env.w3, env.storage, env.users[0], env.users[1]
    for u in (alice, bob):
        send(w3, u, env.watt.functions.approve(s.address, 10**30))
        send(w3, u, env.tsl.functions.approve(s.address, 10**30))
    t0 = next_slot_start(w3, 10)
    set_next_timestamp(w3, t0)
    send(w3, alice, s.functions.deposit(env.battery, 3_000, b"solar".ljust(32, b"\0")))
    set_next_timestamp(w3, t0 + 20)
    send(w3, bob, s.functions.deposit(env.battery, 1_000, b"wind".ljust(32, b"\0")))
    set_next_timestamp(w3, t0 + 2 * SLOT + 5)
    send(w3, alice, s.functions.withdraw(env.battery, 2_000))  # 1,800 out, 200 lost
    set_next_timestamp(w3, t0 + 2 * SLOT + 6)
    send(w3, bob, s.functions.payFees(env.battery))

    report = rep.battery_report(w3, s, soc={env.battery: pd.DataFrame({
        "timestamp": [t0 + 100, t0 + SLOT, t0 + 2 * SLOT + 100, t0 + 3 * SLOT],
        "soc_wh": [4_010, 3_990, 2_030, 900],  # the last reading is 1,100 Wh short: tampered/faulty
    })})
    use = report["use"]
    first, second = use.iloc[0], use.iloc[1]
    assert (first["slot"], first["charged_wh"], first["stored_wh"]) == (t0 // SLOT, 4_000, 4_000)
    assert (second["discharged_wh"], second["loss_wh"], second["stored_wh"]) == (1_800, 200, 2_000)
    assert second["cycles"] == pytest.approx(1_800 / 13_500)

    fees = report["fees"]
    total = fees[fees["role"] == "fees_paid"].iloc[0]
    assert bool(total["check"])
    parts = fees[fees["role"] != "fees_paid"]
    assert sum(parts["amount_base_units"]) == total["amount_base_units"] == s.functions.totalFeesPaid().call()
    assert set(parts[parts["role"] == "owner"]["payee"]) == {o.address for o in env.owners}

    rec = report["reconciliation"]
    assert list(rec["onchain_wh"]) == [4_000, 4_000, 2_000, 2_000]
    assert list(rec["discrepancy_wh"]) == [10, -10, 30, -1_100]
    assert list(rec["mismatch"]) == [False, False, False, True]

    paths = rep.write_csv(report, tmp_path)
    assert {p.name for p in paths} == {"battery_use.csv", "battery_fees.csv", "battery_reconciliation.csv"}


def test_reconcile_refuses_a_series_without_the_needed_columns():
    with pytest.raises(ValueError, match="soc_wh"):
        rep.reconcile_soc(pd.DataFrame({"timestamp": [1]}), [], battery_id=1)


def test_reconcile_before_any_event_compares_with_zero():
    out = rep.reconcile_soc(pd.DataFrame({"timestamp": [900, 1800], "soc_wh": [0, 500]}), [], battery_id=1,
                            tolerance_wh=100)
    assert list(out["onchain_wh"]) == [0, 0] and list(out["mismatch"]) == [False, True]


def _fee_events(amounts: list[int], shares=(50, 30, 20), owners=("0xA", "0xB", "0xC"), battery: int = 1) -> list[dict]:
    """FeePaid / OwnerCredited records split like the contract: 10% marketing, 10% platform, owners by
    share with owners[0] taking the remainder."""
    events = []
    for amount in amounts:
        mk = pf = amount * 1000 // 10_000
        ow = amount - mk - pf
        parts = [ow * s // sum(shares) for s in shares[1:]]
        parts = [ow - sum(parts), *parts]
        events.append({"event": "FeePaid", "batteryId": battery, "amount": amount, "ownersPart": ow,
                       "marketingPart": mk, "platformPart": pf})
        events += [{"event": "OwnerCredited", "batteryId": battery, "owner": o, "amount": p}
                   for o, p in zip(owners, parts, strict=True)]
    return events


def test_fee_split_is_exact_past_int64(tmp_path):
    # issue 17: fees each within int64 that add up past 2**64, and single fees above 2**64
    amounts = [9 * 10**18 + 7] * 5 + [2**64 + 12_345, 3 * 2**64 + 1]
    events = _fee_events(amounts)
    fees = rep.fee_split(events)
    total = fees[fees["role"] == "fees_paid"].iloc[0]
    assert total["amount_base_units"] == sum(amounts) and bool(total["check"])
    credited: dict[str, int] = {}
    for e in events:
        if e["event"] == "OwnerCredited":
            credited[e["owner"]] = credited.get(e["owner"], 0) + e["amount"]
    owners = fees[fees["role"] == "owner"]
    assert dict(zip(owners["payee"], owners["amount_base_units"], strict=True)) == credited
    assert all(type(a) is int and a > 0 for a in fees["amount_base_units"])  # Python ints, never int64
    assert fees[fees["role"] == "marketing"].iloc[0]["amount_base_units"] == sum(a * 1000 // 10_000 for a in amounts)
    assert sum(fees[fees["role"] != "fees_paid"]["amount_base_units"]) == sum(amounts)
    assert total["amount_tsl"] == Decimal(sum(amounts)) / 10**18

    path = {p.name: p for p in rep.write_csv({"fees": fees}, tmp_path)}["battery_fees.csv"]
    back = pd.read_csv(path, dtype=str)
    assert [int(a) for a in back["amount_base_units"]] == list(fees["amount_base_units"])
    assert [Decimal(t) for t in back["amount_tsl"]] == [Decimal(a) / 10**18 for a in fees["amount_base_units"]]


def test_fee_split_check_fails_on_one_missing_unit():
    events = _fee_events([9 * 10**18] * 4)
    events[-1] = {**events[-1], "amount": events[-1]["amount"] - 1}  # an owner credited one unit short
    total = rep.fee_split(events)
    assert not bool(total[total["role"] == "fees_paid"].iloc[0]["check"])
    events = _fee_events([9 * 10**18] * 4)
    events[0] = {**events[0], "platformPart": events[0]["platformPart"] + 2**64}  # a part that int64 would hide
    total = rep.fee_split(events)
    assert not bool(total[total["role"] == "fees_paid"].iloc[0]["check"])
