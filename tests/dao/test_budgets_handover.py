"""Budgets paid without a vote, and the hand-over of every admin role to the treasury."""

from __future__ import annotations

import pytest

from gridcoop_sdk import TransactionFailed
from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.dao import (
    budget,
    encode_call,
    execute,
    handover,
    propose,
    revoke_role_call,
    set_budget_call,
    spend,
    vote,
)
from gridcoop_sdk.tx import send

DAY = 86400


def _pass(w3, dao, members, calls, description):
    pid = propose(w3, members["leader"], dao, calls, description)
    for role in ("leader", "treasurer", "member"):
        vote(w3, members[role], dao, pid, "for")
    return execute(w3, members["leader"], dao, pid)


@pytest.fixture
def funded(w3, deployer, dao):
    """The treasury holding 1,000 units of a local currency and 5 ETH."""
    coin = deploy(w3, deployer, "LocalCurrency", "Kyoto Coin", "KYO", 18, deployer.address, record=False)
    send(w3, deployer, coin.functions.issue(dao.treasury.address, 1000))
    # anvil's dev accounts are unlocked: a plain ETH transfer hits the treasury's receive()
    tx = w3.eth.send_transaction({"from": deployer.address, "to": dao.treasury.address, "value": 5 * 10**18})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    (ev,) = dao.treasury.events.Received().process_receipt(receipt)
    assert ev["args"]["amount"] == 5 * 10**18
    return coin


def test_budget_spend_limit_reset_and_events(w3, dao, members, outsider, funded, time_travel):
    coin, t = funded, dao.treasury
    (treasurer_role,) = dao.role_nft.functions.rolesOf(members["treasurer"].address).call()
    _pass(w3, dao, members, [set_budget_call(t, treasurer_role, coin.address, 100, DAY)],
          "treasurer may pay 100 KYO a day")
    receipt = spend(w3, members["treasurer"], dao, treasurer_role, coin.address, outsider.address, 60, "solar panel cleaning")
    (ev,) = t.events.BudgetSpent().process_receipt(receipt)
    assert ev["args"]["amount"] == 60 and ev["args"]["to"] == outsider.address
    assert ev["args"]["memo"] == "solar panel cleaning" and ev["args"]["spender"] == members["treasurer"].address
    assert coin.functions.balanceOf(outsider.address).call() == 60
    assert budget(w3, dao, treasurer_role, coin.address)["remaining"] == 40
    with pytest.raises(TransactionFailed) as err:
        spend(w3, members["treasurer"], dao, treasurer_role, coin.address, outsider.address, 41)
    assert err.value.error_name == "TreasuryBudgetExceeded"
    assert err.value.error_args == {"roleId": treasurer_role, "token": coin.address, "remaining": 40, "requested": 41}
    spend(w3, members["treasurer"], dao, treasurer_role, coin.address, outsider.address, 40)
    time_travel(DAY)
    assert budget(w3, dao, treasurer_role, coin.address)["remaining"] == 100
    spend(w3, members["treasurer"], dao, treasurer_role, coin.address, outsider.address, 100)
    assert coin.functions.balanceOf(outsider.address).call() == 200
    assert coin.functions.balanceOf(t.address).call() == 800


def test_budget_needs_authority_and_an_active_role(w3, dao, members, outsider, funded):
    coin, t, rn = funded, dao.treasury, dao.role_nft
    (member_role,) = rn.functions.rolesOf(members["member"].address).call()
    (treasurer_role,) = rn.functions.rolesOf(members["treasurer"].address).call()
    _pass(w3, dao, members, [set_budget_call(t, member_role, coin.address, 100, DAY),
                             set_budget_call(t, treasurer_role, None, 10**18, 0)], "budgets")
    with pytest.raises(TransactionFailed) as err:  # the member type has no budget authority
        spend(w3, members["member"], dao, member_role, coin.address, outsider.address, 1)
    assert err.value.error_name == "TreasuryNoBudgetAuthority"
    with pytest.raises(TransactionFailed) as err:  # someone else's role token
        spend(w3, members["leader"], dao, treasurer_role, None, outsider.address, 1)
    assert err.value.error_name == "TreasuryNoBudgetAuthority"
    before = w3.eth.get_balance(outsider.address)
    spend(w3, members["treasurer"], dao, treasurer_role, None, outsider.address, 4 * 10**17)
    assert w3.eth.get_balance(outsider.address) - before == 4 * 10**17
    _pass(w3, dao, members, [revoke_role_call(rn, treasurer_role)], "revoke the treasurer")
    with pytest.raises(TransactionFailed) as err:
        spend(w3, members["treasurer"], dao, treasurer_role, None, outsider.address, 1)
    assert err.value.error_name == "TreasuryNoBudgetAuthority"


def test_budget_can_only_be_set_by_proposal(w3, dao, members):
    with pytest.raises(TransactionFailed) as err:
        send(w3, members["leader"], dao.treasury.functions.setBudget(1, members["leader"].address, 10**30, 1))
    assert err.value.error_name == "TreasuryOnlySelf"


def test_handover_leaves_the_deployer_powerless_and_proposals_in_charge(w3, deployer, dao, members, outsider):
    watt = deploy(w3, deployer, "WattToken", deployer.address, record=False)
    tsl = deploy(w3, deployer, "TeslaToken", dao.treasury.address, record=False)
    coin = deploy(w3, deployer, "LocalCurrency", "Kyoto Coin", "KYO", 18, deployer.address, record=False)
    box = deploy(w3, deployer, "ParamBox", deployer.address, record=False)
    send(w3, deployer, watt.functions.grantRole(watt.functions.MINTER_ROLE().call(), deployer.address))
    log = handover(w3, deployer, {"WattToken": watt, "TeslaToken": tsl, "LocalCurrency": coin, "ParamBox": box},
                   dao.treasury.address)
    assert "WattToken: granted MINTER_ROLE to treasury " + dao.treasury.address in log
    assert "TeslaToken: not an AccessControl contract (no roles), nothing to hand over" in log
    assert any(line.startswith("ParamBox: deployer") and "renounced DEFAULT_ADMIN_ROLE" in line for line in log)
    for c in (watt, coin, box):
        for name in ("DEFAULT_ADMIN_ROLE", *[e["name"] for e in c.abi if e.get("name", "").endswith("_ROLE")]):
            role = getattr(c.functions, name)().call()
            assert not c.functions.hasRole(role, deployer.address).call(), name
    # the deployer can change nothing any more
    attempts = [
        (watt.functions.grantRole(watt.functions.MINTER_ROLE().call(), deployer.address), "AccessControlUnauthorizedAccount"),
        (watt.functions.mint(deployer.address, 1), "AccessControlUnauthorizedAccount"),
        (coin.functions.issue(deployer.address, 1), "AccessControlUnauthorizedAccount"),
        (coin.functions.grantRole(coin.functions.ISSUER_ROLE().call(), outsider.address), "AccessControlUnauthorizedAccount"),
        (box.functions.setFee(1), "AccessControlUnauthorizedAccount"),
        (dao.role_nft.functions.grant(deployer.address, 1, 0), "AccessControlUnauthorizedAccount"),
        (dao.shares.functions.recordContribution(deployer.address, 1, "x"), "AccessControlUnauthorizedAccount"),
    ]
    for fn, error in attempts:
        with pytest.raises(TransactionFailed) as err:
            send(w3, deployer, fn)
        assert err.value.error_name == error
        assert err.value.error_args["account"] == deployer.address
    # … while a proposal can
    minter = watt.functions.MINTER_ROLE().call()
    _pass(w3, dao, members, [
        encode_call(watt, "grantRole", minter, outsider.address),
        encode_call(box, "setFee", 42),
        encode_call(coin, "issue", outsider.address, 7),
    ], "appoint a meter-registry minter, change the fee, pay a grant")
    assert watt.functions.hasRole(minter, outsider.address).call()
    assert box.functions.feeBps().call() == 42
    assert coin.functions.balanceOf(outsider.address).call() == 7


def test_handover_keep_leaves_named_roles(w3, deployer, dao):
    box = deploy(w3, deployer, "ParamBox", deployer.address, record=False)
    handover(w3, deployer, {"ParamBox": box}, dao.treasury.address, keep=("PAUSER_ROLE",))
    assert box.functions.hasRole(box.functions.PAUSER_ROLE().call(), deployer.address).call()
    assert not box.functions.hasRole(b"\x00" * 32, deployer.address).call()
    assert box.functions.hasRole(box.functions.PAUSER_ROLE().call(), dao.treasury.address).call()
