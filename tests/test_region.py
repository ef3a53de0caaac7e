"""A whole region from its config file: deployed in order, wired, and handed to the DAO."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from gridcoop_sdk import dao as dao_sdk
from gridcoop_sdk.exceptions import ConfigError, TransactionFailed
from gridcoop_sdk.region import deploy_region
from gridcoop_sdk.region_config import CONFIG_DIR, load_region
from gridcoop_sdk.tx import send


@pytest.fixture(scope="module")
def region(w3, wallets, tmp_path_factory):
    d = tmp_path_factory.mktemp("deployments")
    cfg = load_region("sakura").scaled(3)
    owners = {h.name: wallets[3 + i].address for i, h in enumerate(cfg.households)}
    signers = {h.name: wallets[6 + i].address for i, h in enumerate(cfg.households)}
    return deploy_region(w3, wallets[0], cfg, keeper=wallets[1].address, owners=owners,
                         device_signers=signers, directory=d)


def test_every_role_of_every_contract_is_the_treasurys(w3, wallets, region):
    deployer, treasury = wallets[0].address, region.dao.treasury.address
    checked = 0
    for name, c in region.contracts.items():
        roles = dao_sdk.role_constants(c) if any(e.get("name") == "hasRole" for e in c.abi) else {}
        for role_name, role in roles.items():
            assert not c.functions.hasRole(role, deployer).call(), f"deployer still holds {name}.{role_name}"
            checked += 1
        if "DEFAULT_ADMIN_ROLE" in roles and name not in ("RoleNFT", "ContributionShares"):
            assert c.functions.hasRole(roles["DEFAULT_ADMIN_ROLE"], treasury).call(), name
    assert checked >= 20
    market = region["EnergyMarket"]
    assert market.functions.hasRole(market.functions.KEEPER_ROLE().call(), wallets[1].address).call()
    watt = region["WattToken"]
    registry = region["MeterRegistry"]
    assert watt.functions.hasRole(watt.functions.MINTER_ROLE().call(), registry.address).call()
    assert registry.functions.selfConsumptionHook().call() == region.crev.token.address


def test_the_deployer_cannot_change_the_rules_but_a_proposal_can(w3, wallets, region):
    storage = region["BatteryStorage"]
    bid = next(iter(region.battery_ids.values()))
    with pytest.raises(TransactionFailed) as exc:
        send(w3, wallets[0], storage.functions.setFeeRate(bid, 1))
    assert exc.value.error_name == "AccessControlUnauthorizedAccount"
    with pytest.raises(TransactionFailed):
        send(w3, wallets[0], region["CarbonReductionValue"].functions.setEmissionFactor(1))
    founders = [wallets[3], wallets[4]]
    old = storage.functions.feeRate(bid).call()
    pid = dao_sdk.propose(w3, founders[0], region.dao, [dao_sdk.encode_call(storage, "setFeeRate", bid, old * 2)],
                          "double the fee")
    for f in founders:
        dao_sdk.vote(w3, f, region.dao, pid, "for")
    st = dao_sdk.status(w3, region.dao, pid)
    assert st["state"] == "Succeeded", st
    # executed an hour later: a new fee slot makes setFeeRate costlier than the estimate at the
    # latest block; the SDK's gas margin covers it
    w3.provider.make_request("evm_increaseTime", [3600])
    dao_sdk.execute(w3, founders[0], region.dao, pid)
    slot = storage.functions.currentSlot().call()
    assert storage.functions.feeRateAt(bid, slot + 1).call() == old * 2


def test_tsl_goes_to_the_marketing_pool_and_the_treasury(region):
    tsl = region["TeslaToken"]
    cfg = region.config
    pool = int(cfg.storage.marketing_pool_tsl * 10**18)
    assert tsl.functions.balanceOf(region["BatteryStorage"].address).call() == pool
    assert tsl.functions.balanceOf(region.dao.treasury.address).call() == 10**27 - pool


def test_missing_founder_account_is_refused(w3, wallets, tmp_path):
    cfg = load_region("sakura").scaled(3)
    with pytest.raises(ConfigError, match="hh02"):
        deploy_region(w3, wallets[0], cfg, keeper=wallets[1].address, owners={"hh01": wallets[3].address},
                      directory=tmp_path)


def test_gridcoop_deploy_cli_deploys_a_config_with_accounts(anvil, wallets, tmp_path):
    data = yaml.safe_load((CONFIG_DIR / "kaede.yaml").read_text())
    for i, h in enumerate(data["households"]):
        h["account"] = wallets[4 + i].address
        h["meter_signer"] = wallets[8 - i].address
    cfg = tmp_path / "kaede.yaml"
    cfg.write_text(yaml.safe_dump(data))
    env = {**os.environ, "GRIDCOOP_DEPLOYER_KEY": wallets[2].key.hex(), "GRIDCOOP_DEPLOYMENTS": str(tmp_path / "d")}
    gridcoop = [sys.executable, "-m", "gridcoop"]
    proc = subprocess.run([*gridcoop, "region", "deploy", "--config", str(cfg), "--rpc-url", anvil.url, "--chain-id",
                           str(anvil.chain_id), "--keeper", wallets[1].address], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "kaede.EnergyMarket 0x" in proc.stdout
    recorded = json.loads((tmp_path / "d" / f"{anvil.chain_id}.json").read_text())
    assert {"kaede.MeterRegistry", "kaede.Treasury", "kaede.CarbonReductionValue"} <= set(recorded)
    # a wrong chain id is refused before anything is sent
    proc = subprocess.run([*gridcoop, "region", "deploy", "--config", str(cfg), "--rpc-url", anvil.url, "--chain-id", "1",
                           "--keeper", wallets[1].address], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "chain id" in proc.stderr and "Traceback" not in proc.stderr


def test_founders_hold_their_founding_shares_from_the_start(region):
    """Revenue reaching ContributionShares (the platform's share of battery fees) is split among
    shares that exist when it arrives: the founders' are recorded before the hand-over."""
    shares = region.dao.shares
    founders = region.config.dao.founders
    assert shares.functions.totalShares().call() == sum(f.shares for f in founders) > 0
    for f, w in zip(founders, region.dao.founder_roles, strict=True):
        assert shares.functions.sharesOf(w).call() == f.shares
