"""The same contracts through ape's own fixtures (`project`, `accounts`), as `ape test` users
write them: proves ape compiles and deploys the project's artifacts on its anvil provider."""

from __future__ import annotations

import ape
import pytest


@pytest.fixture
def owner(accounts):
    return accounts[0]


def test_ape_deploys_watt_and_enforces_the_minter_role(project, accounts, owner):
    watt = owner.deploy(project.WattToken, owner)
    user = accounts[1]
    with ape.reverts(project.WattToken.AccessControlUnauthorizedAccount):
        watt.mint(user, 10**15, sender=user)
    watt.grantRole(watt.MINTER_ROLE(), owner, sender=owner)
    receipt = watt.mint(user, 10**15, sender=owner)
    assert watt.balanceOf(user) == 10**15
    (event,) = receipt.events
    assert event.event_name == "Transfer" and event.value == 10**15


def test_ape_tsl_supply_is_fixed(project, accounts, owner):
    tsl = owner.deploy(project.TeslaToken, accounts[2])
    assert tsl.totalSupply() == 10**27 == tsl.balanceOf(accounts[2])
    tsl.transfer(accounts[3], 5, sender=accounts[2])
    assert tsl.totalSupply() == 10**27
