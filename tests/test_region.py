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
from gridcoop_sdk.region import deploy_region, to_units
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


def test_tsl_goes_to_the_marketing_pool_and_the_treasury(w3, wallets, region):
    tsl = region["TeslaToken"]
    cfg = region.config
    pool = to_units(cfg.storage.marketing_pool_tsl, 18)
    grant = to_units(cfg.platform.treasury_tsl, 18)
    assert grant > 0
    assert tsl.functions.balanceOf(region["BatteryStorage"].address).call() == pool
    assert tsl.functions.balanceOf(region.dao.treasury.address).call() == grant
    # the rest of the platform's supply stays with the platform holder (here the deployer)
    assert tsl.functions.balanceOf(wallets[0].address).call() == 10**27 - pool - grant
    assert tsl.functions.totalSupply().call() == 10**27


def _two_region_configs():
    return load_region("sakura").scaled(3), load_region("kaede")


def _owners(cfg, wallets, first):
    return {h.name: wallets[first + i].address for i, h in enumerate(cfg.households)}


def test_two_regions_on_one_chain_share_the_single_tsl(w3, wallets, tmp_path):
    """The second region references the first's TSL: one TeslaToken on the chain, total supply
    exactly 10^9 after both, each region's TSL a transfer from the platform holder."""
    d = tmp_path / "deployments"
    sakura, kaede = _two_region_configs()
    holder = wallets[0]
    a = deploy_region(w3, holder, sakura, keeper=wallets[1].address, owners=_owners(sakura, wallets, 3),
                      directory=d)
    tsl = a["TeslaToken"]
    records = json.loads((d / f"{w3.eth.chain_id}.json").read_text())
    assert records["platform.TeslaToken"]["address"] == tsl.address == records["sakura.TeslaToken"]["address"]
    supply_after_one = tsl.functions.totalSupply().call()
    # the second region has another deployer: the platform holder approves it for the region's TSL
    need = to_units(kaede.storage.marketing_pool_tsl, 18) + to_units(kaede.platform.treasury_tsl, 18)
    kaede = kaede.model_copy(update={"platform": kaede.platform.model_copy(update={"funding_from": holder.address})})
    send(w3, holder, tsl.functions.approve(wallets[2].address, need))
    held_before = tsl.functions.balanceOf(holder.address).call()
    b = deploy_region(w3, wallets[2], kaede, keeper=wallets[1].address, owners=_owners(kaede, wallets, 6),
                      directory=d)
    supply_after_two = tsl.functions.totalSupply().call()
    print(f"TSL total supply after one region: {supply_after_one}, after two: {supply_after_two}")
    assert supply_after_one == supply_after_two == 10**27
    assert b["TeslaToken"].address == tsl.address
    shared = set(a.addresses().values()) & set(b.addresses().values())
    assert shared == {tsl.address}
    records = json.loads((d / f"{w3.eth.chain_id}.json").read_text())
    assert records["kaede.TeslaToken"]["address"] == tsl.address
    assert [k for k, v in records.items() if v["address"] == tsl.address] == [
        "kaede.TeslaToken", "platform.TeslaToken", "sakura.TeslaToken"]
    assert tsl.functions.balanceOf(holder.address).call() == held_before - need
    assert tsl.functions.allowance(holder.address, wallets[2].address).call() == 0
    assert tsl.functions.balanceOf(b.dao.treasury.address).call() == to_units(kaede.platform.treasury_tsl, 18)
    assert tsl.functions.balanceOf(b["BatteryStorage"].address).call() == to_units(
        kaede.storage.marketing_pool_tsl, 18)
    held = sum(tsl.functions.balanceOf(x).call() for x in (
        holder.address, wallets[2].address, a.dao.treasury.address, a["BatteryStorage"].address,
        b.dao.treasury.address, b["BatteryStorage"].address))
    assert held == 10**27  # every TSL accounted for: nothing minted for the second region
    # ContributionShares of both regions take the one TSL as revenue token
    for r in (a, b):
        assert r["BatteryStorage"].functions.tsl().call() == tsl.address


def test_a_region_without_its_tsl_funding_is_refused_before_any_transaction(w3, wallets, tmp_path):
    d = tmp_path / "deployments"
    sakura, kaede = _two_region_configs()
    deploy_region(w3, wallets[0], sakura, keeper=wallets[1].address, owners=_owners(sakura, wallets, 3),
                  directory=d)
    nonce = w3.eth.get_transaction_count(wallets[2].address)
    with pytest.raises(ConfigError, match=r"kaede: platform.funding_from: the deployer .* holds 0 TSL") as exc:
        deploy_region(w3, wallets[2], kaede, keeper=wallets[1].address, owners=_owners(kaede, wallets, 6),
                      directory=d)
    assert "\n" not in str(exc.value)
    approved = kaede.model_copy(update={"platform": kaede.platform.model_copy(
        update={"funding_from": wallets[0].address})})
    with pytest.raises(ConfigError, match="approved the deployer .* for 0 TSL"):
        deploy_region(w3, wallets[2], approved, keeper=wallets[1].address, owners=_owners(kaede, wallets, 6),
                      directory=d)
    assert w3.eth.get_transaction_count(wallets[2].address) == nonce


@pytest.mark.parametrize("what", ["no code", "not a TeslaToken"])
def test_a_tsl_address_that_is_no_teslatoken_is_refused(w3, wallets, tmp_path, region, what):
    address = wallets[9].address if what == "no code" else region["WattToken"].address
    kaede = load_region("kaede")
    cfg = kaede.model_copy(update={"platform": kaede.platform.model_copy(update={"tsl_address": address})})
    nonce = w3.eth.get_transaction_count(wallets[2].address)
    expect = "no contract at" if what == "no code" else "is not a TeslaToken"
    with pytest.raises(ConfigError, match=f"kaede: platform.tsl_address: .*{expect}") as exc:
        deploy_region(w3, wallets[2], cfg, keeper=wallets[1].address, owners=_owners(kaede, wallets, 6),
                      directory=tmp_path)
    assert "\n" not in str(exc.value)
    assert w3.eth.get_transaction_count(wallets[2].address) == nonce


def test_the_platform_slug_is_reserved():
    data = load_region("kaede").model_dump()
    with pytest.raises(ValueError, match="reserved"):
        type(load_region("kaede")).model_validate({**data, "slug": "platform"})


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
