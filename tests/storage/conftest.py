"""Fixtures for the BatteryStorage tests: tokens, a test participant registry, a deployed storage
contract with one co-owned battery (shares 3/5/7) and funded users."""

from __future__ import annotations

import pytest
from storage_helpers import GRANT, TSL, Env

from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.storage import deploy_storage, register_battery
from gridcoop_sdk.tx import send


@pytest.fixture
def env(w3, wallets, deployer, deployments_dir) -> Env:
    watt = deploy(w3, deployer, "WattToken", deployer.address)
    tsl = deploy(w3, deployer, "TeslaToken", deployer.address)
    registry = deploy(w3, deployer, "TestParticipantRegistry")
    platform, marketing = wallets[7], wallets[8]
    storage = deploy_storage(
        w3, deployer, watt, tsl, platform_treasury=platform.address, marketing=marketing.address,
        participants=registry.address, welcome_grant=GRANT,
    )
    owners = [wallets[4], wallets[5], wallets[6]]
    battery = register_battery(
        w3, deployer, storage, meter_id="bat-meter-1", capacity_wh=13_500, efficiency_bps=9_000,
        fee_rate=2 * 10**15 + 1, owners=[(owners[0].address, 3), (owners[1].address, 5), (owners[2].address, 7)],
    )
    send(w3, deployer, watt.functions.grantRole(watt.functions.MINTER_ROLE().call(), deployer.address))
    users = [wallets[1], wallets[2], wallets[3]]
    for u in users:
        send(w3, deployer, watt.functions.mint(u.address, 50_000 * 10**15))
        send(w3, deployer, tsl.functions.transfer(u.address, 1_000 * TSL))
    return Env(w3, watt, tsl, registry, storage, battery, deployer, users, owners, platform, marketing)
