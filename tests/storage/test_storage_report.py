"""Keeper battery report: use per slot, fee split per payee, SoC reconciliation with a flag."""

from __future__ import annotations

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
    assert sum(int(a) for a in parts["amount"]) == int(total["amount"])
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
