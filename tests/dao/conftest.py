"""DAO fixtures: a freshly deployed DAO (4 founders, 2-of-N threshold) per test, time travel."""

from __future__ import annotations

import pytest

from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.dao import VotingParams, deploy_dao, handover


def warp(w3, seconds: int) -> None:
    """Advance anvil's clock by ``seconds`` and mine a block."""
    w3.provider.make_request("evm_increaseTime", [int(seconds)])
    w3.provider.make_request("evm_mine", [])


@pytest.fixture
def time_travel(w3):
    """``time_travel(seconds)`` advances anvil's clock and mines a block."""
    return lambda seconds: warp(w3, seconds)


@pytest.fixture
def members(wallets):
    """leader, treasurer, member, auditor (all founders); wallets[5] is an outsider."""
    return {"leader": wallets[1], "treasurer": wallets[2], "member": wallets[3], "auditor": wallets[4]}


@pytest.fixture
def outsider(wallets):
    return wallets[5]


@pytest.fixture
def dao(w3, deployer, members, deployments_dir):
    founders = [(acct.address, role) for role, acct in members.items()]
    return deploy_dao(w3, deployer, founders=founders, params=VotingParams(voting_period_s=3600, threshold=2))


@pytest.fixture
def param_box(w3, deployer, dao, deployments_dir):
    """A stand-in AccessControl contract with a fee parameter, handed over to the DAO."""
    box = deploy(w3, deployer, "ParamBox", deployer.address)
    handover(w3, deployer, {"ParamBox": box}, dao.treasury.address)
    return box
