"""Token amounts in reports (issue 17): exact helpers, and the demo report's CSVs, summary and fee plot
with amounts past 2**64 base units."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from coop_demo.report import DemoReport, fee_shares, write_report
from keeper.reports.amounts import exact, fmt, for_csv, sum_by, to_display, total

BIG = 2**64 + 1


def test_exact_takes_integers_and_refuses_floats():
    assert exact(np.int64(5)) == 5 and exact(np.uint64(2**64 - 1)) == 2**64 - 1
    assert exact("123456789012345678901234") == 123456789012345678901234 and exact(Decimal("7")) == 7
    for bad in (1e18, float("nan"), None, True, Decimal("1.5"), "1.5"):
        with pytest.raises(TypeError):
            exact(bad)


def test_totals_and_group_sums_do_not_wrap():
    values = [9 * 10**18] * 4  # each fits int64, the sum does not
    assert pd.Series(values).sum() != sum(values)  # what pandas does: int64 wraps silently
    assert total(values) == total(pd.Series(values)) == 36 * 10**18
    df = pd.DataFrame({"who": ["a", "b", "a", "a", "b"], "amount": [*values, BIG]})
    sums = sum_by(df, ["who"], "amount", "total").set_index("who")["total"]
    assert sums["a"] == 27 * 10**18 and sums["b"] == 9 * 10**18 + BIG
    assert sums.dtype == object and all(type(v) is int for v in sums)


def test_display_is_exact_and_fixed_point():
    assert to_display(BIG, 18) == Decimal("18.446744073709551617")
    assert fmt(to_display(0, 18)) == "0" and fmt(to_display(1, 18)) == "0.000000000000000001"
    assert fmt(to_display(100 * 10**18, 18)) == "100" and fmt(to_display(25 * 10**5, 6)) == "2.5"
    df = pd.DataFrame({"units": pd.Series([None, BIG], dtype=object),
                       "shown": pd.Series([None, to_display(BIG, 18)], dtype=object)})
    out = for_csv(df)
    assert list(out["units"]) == [None, BIG] and list(out["shown"]) == [None, "18.446744073709551617"]


def _report(fee_units: list[int]) -> DemoReport:
    payees = [f"owner hh0{i}" for i in range(1, len(fee_units) - 1)] + ["marketing", "platform (DAO shares)"]
    fees = pd.DataFrame({"payee": payees, "role": ["owner"] * (len(payees) - 2) + ["marketing", "platform"]})
    fees["fee_base_units"] = pd.Series(fee_units, dtype=object)
    fees["fee_tsl"] = pd.Series([to_display(u, 18) for u in fee_units], dtype=object)
    n = 4
    intervals = pd.DataFrame({"interval": range(n), "time": ["11:00", "11:15", "11:30", "11:45"],
                              "volume_wh": [100, 0, 200, 50], "trades": [1, 0, 2, 1], "gas_used": [1, 0, 2, 1],
                              "battery_soc_wh": [0, 1000, 2000, 1500]})
    prices = [76 * 10**18 + 1, None, BIG, 9 * 10**18]
    intervals["price_base_units"] = pd.Series(prices, dtype=object)
    intervals["price_per_kwh"] = pd.Series([None if p is None else to_display(p, 18) for p in prices], dtype=object)
    per = [0, 9 * 10**18, 9 * 10**18, sum(fee_units) - 18 * 10**18]
    intervals["fees_base_units"] = pd.Series(per, dtype=object)
    intervals["fees_tsl"] = pd.Series([to_display(f, 18) for f in per], dtype=object)
    households = pd.DataFrame({"interval": [0, 0], "household": ["hh01", "hh02"], "kind": ["pv", "consumer"],
                               "generation_wh": [500, 0], "consumption_wh": [100, 300], "import_wh": [0, 300],
                               "export_wh": [400, 0], "self_consumed_wh": [100, 0], "bought_wh": [0, 100],
                               "sold_wh": [100, 0], "renewable_wh": [100, 100], "renewable_ratio": [1.0, 0.33],
                               "co2_g": [0.0, 88.2]})
    balances = pd.DataFrame({"household": ["hh01"], "TSL_base_units": pd.Series([BIG], dtype=object),
                             "TSL": pd.Series([to_display(BIG, 18)], dtype=object)})
    return DemoReport(region="Test Hills", intervals=intervals, households=households, balances=balances, fees=fees,
                      summary={"battery fees (TSL)": to_display(sum(fee_units), 18)})


def test_demo_report_writes_exact_amounts_past_int64(tmp_path):
    owners = [11_797_866 * 10**12, 7_078_719_600_000_000_001, 4_719_146_400_000_000_000]
    fee_units = [*owners, BIG, 2 * BIG]  # an owner past 2**63, marketing and platform past 2**64
    rep = _report(fee_units)
    html = write_report(rep, tmp_path)

    fees = pd.read_csv(tmp_path / "fees.csv", dtype=str)
    assert list(fees.columns) == ["payee", "role", "fee_base_units", "fee_tsl"]
    assert [int(u) for u in fees["fee_base_units"]] == fee_units
    assert [Decimal(t) for t in fees["fee_tsl"]] == [Decimal(u) / 10**18 for u in fee_units]
    iv = pd.read_csv(tmp_path / "intervals.csv", dtype=str, keep_default_na=False)
    assert [int(p) if p else None for p in iv["price_base_units"]] == list(rep.intervals["price_base_units"])
    assert sum(int(f) for f in iv["fees_base_units"]) == sum(fee_units)
    assert int(pd.read_csv(tmp_path / "balances.csv", dtype=str)["TSL_base_units"][0]) == BIG
    assert f"<td>{fmt(Decimal(sum(fee_units)) / 10**18)}</td>" in html.read_text()
    assert (tmp_path / "fee_split.png").stat().st_size > 0

    shares = fee_shares(rep.fees)  # what the fee-split plot shows
    assert [t for _, t, _ in shares] == [Decimal(u) / 10**18 for u in fee_units]
    assert all(p > 0 for _, _, p in shares) and sum(p for _, _, p in shares) == pytest.approx(Decimal(100))
