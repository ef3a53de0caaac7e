"""Small profile of the load test (bench/bench_load.py runs the bigger one in ``make bench``):
gateways push readings to the keeper relay and clients submit orders concurrently; nothing lost,
nothing duplicated (the checks are inside :func:`bench.bench_load.load`)."""

from __future__ import annotations

import os

import pytest

from bench.bench_load import load
from gridcoop_sdk import Anvil, dev_accounts


@pytest.mark.parametrize("profile", [
    dict(gateways=3, meters_per_gateway=4, clients=4, orders_per_client=3, intervals=2),
    pytest.param(dict(gateways=8, meters_per_gateway=10, clients=12, orders_per_client=5, intervals=4),
                 marks=[pytest.mark.slow, pytest.mark.skipif(os.environ.get("GRIDCOOP_TEST_FULL") != "1",
                                                             reason="make test-full")]),
], ids=["small", "full"])
def test_concurrent_gateways_and_clients(tmp_path, profile):
    with Anvil(accounts=20) as node:
        out = load(node.w3, dev_accounts(20), workdir=tmp_path, **profile)
    n = profile["gateways"] * profile["meters_per_gateway"] * profile["intervals"]
    assert out["load_readings"] == n
    assert out["load_orders"] == profile["clients"] * profile["orders_per_client"] * profile["intervals"]
    assert out["load_readings_per_s"] > 0 and out["load_orders_per_s"] > 0
    print(out)
