"""`ape run dao …` end to end as a member would type it, against a self-started anvil.

The DAO is deployed with the SDK; the script connects to the running node through ape-foundry
(``APE_FOUNDRY_HOST``) with ape's test accounts, proposes a fee change, votes and executes it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gridcoop_sdk import Anvil, dev_accounts
from gridcoop_sdk.contracts import deploy
from gridcoop_sdk.dao import VotingParams, deploy_dao, handover

ROOT = Path(__file__).resolve().parents[2]
APE = str(Path(sys.executable).with_name("ape"))


@pytest.fixture
def node():
    with Anvil() as n:
        yield n


def _ape(env, *args, ok=True):
    proc = subprocess.run([APE, "run", "dao", *args, "--network", "ethereum:local:foundry"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    if ok and proc.returncode != 0:
        raise AssertionError(f"ape run dao {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_ape_script_proposes_votes_and_executes_a_fee_change(node, tmp_path):
    deps = tmp_path / "deployments"
    env = {**os.environ, "GRIDCOOP_DEPLOYMENTS": str(deps), "APE_FOUNDRY_HOST": node.url}
    env.pop("GRIDCOOP_MEMBER_KEY", None)
    w3, ws = node.w3, dev_accounts(5)
    dao = deploy_dao(w3, ws[0], founders=[(w.address, "member") for w in ws[1:4]],
                     params=VotingParams(voting_period_s=3600, threshold=2), directory=deps)
    box = deploy(w3, ws[0], "ParamBox", ws[0].address, record_as="default.ParamBox", directory=deps)
    handover(w3, ws[0], {"ParamBox": box}, dao.treasury.address)

    out = _ape(env, "propose", "--call", "default.ParamBox", "setFee", "250", "-d", "fee 1% -> 2.5%",
               "--account", "TEST::1").stdout
    assert "proposal 1 created" in out
    assert "for 1 / against 0" in _ape(env, "vote", "1", "--support", "for", "--account", "TEST::1").stdout
    early = _ape(env, "execute", "1", "--account", "TEST::1", ok=False)
    text = early.stdout + early.stderr
    assert early.returncode != 0 and "proposal 1 is still being voted on" in text and "voting ends at" in text, text
    missing = _ape(env, "vote", "99", "--support", "for", "--account", "TEST::1", ok=False)
    text = missing.stdout + missing.stderr
    assert missing.returncode != 0 and "no proposal 99 in DAO default" in text and "is None" not in text, text
    repeat = _ape(env, "vote", "1", "--support", "for", "--account", "TEST::1", ok=False)
    assert repeat.returncode != 0 and "already voted on proposal 1" in repeat.stdout + repeat.stderr
    outsider = _ape(env, "vote", "1", "--support", "for", "--account", "TEST::5", ok=False)
    assert outsider.returncode != 0 and "holds no active role with a vote" in outsider.stdout + outsider.stderr
    assert "Succeeded" in _ape(env, "vote", "1", "--support", "for", "--account", "TEST::2").stdout
    assert box.functions.feeBps().call() == 100
    assert "proposal 1 executed" in _ape(env, "execute", "1", "--account", "TEST::3").stdout
    assert box.functions.feeBps().call() == 250
    status = _ape(env, "status", "1").stdout
    assert "#1 Executed" in status and "fee 1% -> 2.5%" in status
    again = _ape(env, "execute", "1", "--account", "TEST::3", ok=False)
    assert again.returncode != 0 and "is Executed" in again.stdout + again.stderr


def test_ape_deploy_with_founders_hands_the_region_to_the_dao(node, tmp_path):
    deps = tmp_path / "deployments"
    env = {**os.environ, "GRIDCOOP_DEPLOYMENTS": str(deps), "APE_FOUNDRY_HOST": node.url}
    ws = dev_accounts(4)
    proc = subprocess.run(
        [APE, "run", "deploy", "--network", "ethereum:local:foundry", "--region", "kyoto",
         "--founder", f"{ws[1].address}:leader", "--founder", f"{ws[2].address}:treasurer",
         "--founder", f"{ws[3].address}:member", "--treasury-tsl", "1000000"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "handover: kyoto.WattToken: deployer" in proc.stdout
    from gridcoop_sdk.contracts import at
    from gridcoop_sdk.dao import load_dao

    w3 = node.w3
    dao = load_dao(w3, "kyoto", directory=deps)
    watt = at(w3, "WattToken", record_name="kyoto.WattToken", directory=deps)
    tsl = at(w3, "TeslaToken", record_name="kyoto.TeslaToken", directory=deps)
    assert tsl.functions.balanceOf(dao.treasury.address).call() == 10**24  # --treasury-tsl 1000000
    assert tsl.address == at(w3, "TeslaToken", record_name="platform.TeslaToken", directory=deps).address
    assert tsl.functions.totalSupply().call() == 10**27
    assert tsl.functions.balanceOf(ws[0].address).call() == 10**27 - 10**24  # the platform holder keeps the rest
    admin = b"\x00" * 32
    assert watt.functions.hasRole(admin, dao.treasury.address).call()
    assert not watt.functions.hasRole(admin, ws[0].address).call()
    assert not dao.role_nft.functions.hasRole(admin, ws[0].address).call()
    assert dao.role_nft.functions.totalVotingWeight().call() == 3
