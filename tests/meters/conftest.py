"""Fixtures for the meter registry and bridge tests: a registry wired to a fresh WATT."""

from __future__ import annotations

import pytest
from eth_account import Account

from gridcoop_sdk.meters import deploy_meters, register_meter
from gridcoop_sdk.readings import Reading, ReadingSigner, meter_id

T0 = 1_800_000_000 // 900 * 900  # an aligned interval start


@pytest.fixture
def registry(w3, deployer, watt, deployments_dir):
    return deploy_meters(w3, deployer, watt)


@pytest.fixture
def device():
    """A meter's device key (fresh per test)."""
    return Account.create()


@pytest.fixture
def owner(wallets):
    return wallets[3]


@pytest.fixture
def gateway(wallets):
    return wallets[4]


@pytest.fixture
def meter(w3, deployer, registry, device, owner):
    """A certified solar prosumer meter, 8 kW (2000 Wh per 15 minutes)."""
    mid = meter_id("test/house-1/pv")
    register_meter(w3, deployer, registry, meter_id=mid, signer=device.address, owner=owner.address,
                   kind="prosumer", colour="solar", certified=True, rated_power_w=8000, location="xn76urx")
    return mid


@pytest.fixture
def signer(w3, registry, device):
    return ReadingSigner(device.key, w3.eth.chain_id, registry.address)


def make_reading(mid: bytes, seq: int, *, gen=400, cons=250, exp=None, imp=None, freq=50_000, start=None) -> Reading:
    """A balanced reading for interval ``seq`` after T0 (export/import derived if not given)."""
    if exp is None:
        exp = max(gen - cons, 0)
    if imp is None:
        imp = cons + exp - gen
    s = T0 + 900 * seq if start is None else start
    return Reading(meter_id=mid, sequence=seq, interval_start=s, interval_end=s + 900, generation_wh=gen,
                   consumption_wh=cons, export_wh=exp, import_wh=imp, frequency_mhz=freq)
