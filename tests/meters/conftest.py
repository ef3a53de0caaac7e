"""Fixtures for the meter registry and bridge tests: a registry wired to a fresh WATT."""

from __future__ import annotations

import pytest
from eth_account import Account

from gridcoop_sdk.meters import deploy_meters, register_meter
from gridcoop_sdk.readings import Reading, ReadingSigner, meter_id
from meter_bridge.simulator import ManualClock

T0 = 1_800_000_000 // 900 * 900  # an aligned interval start (2027-01-15), after the chain's start
#: The chain's clock after the ``meter`` fixture: 100 intervals after T0, so every reading these
#: tests sign (sequences < 100) is over, and began after the meter was registered (before T0).
AFTER = T0 + 900 * 100


def warp(w3, ts: int) -> None:
    """Move the chain's clock forward to ``ts`` (a chain's time only moves forward)."""
    now = w3.eth.get_block("latest")["timestamp"]
    if ts > now:
        w3.provider.make_request("evm_setNextBlockTimestamp", [int(ts)])
        w3.provider.make_request("evm_mine", [])


class ChainClock(ManualClock):
    """A manual clock that the chain follows, as a real chain follows the wall clock: setting it
    moves the chain's time too, so the gateway's intervals are over on chain when it pushes them."""

    def __init__(self, t: float, w3):
        super().__init__(t)
        self.w3 = w3
        warp(w3, int(t))

    def set(self, t: float) -> None:
        super().set(t)
        warp(self.w3, int(t))


@pytest.fixture(autouse=True)
def _chain_time_restored(w3):
    """Each test here moves the session chain's clock forward to its readings' intervals (the
    registry refuses intervals that are not over yet); the snapshot puts the clock and state back."""
    snap = w3.provider.make_request("evm_snapshot", [])["result"]
    yield
    w3.provider.make_request("evm_revert", [snap])


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
    warp(w3, AFTER)
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
