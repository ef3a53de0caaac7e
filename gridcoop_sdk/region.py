"""Deploying a gridcoop region: the whole contract suite of one community from its config file.

Order (each step needs the one before):

1. the local currency (a LocalCurrency ERC-20, or an existing token from the config);
2. the DAO (RoleNFT, Treasury, ContributionShares) with the founders' roles;
3. WATT, and TSL whose fixed supply goes to the deployer for the initial distribution
   (marketing pool, then everything else to the DAO treasury);
4. MeterRegistry (holds WATT's minter and burner roles), EnergyMarket (keeper role to the
   keeper account; local currency and TSL allow-listed), BatteryStorage (platform share to the
   DAO's ContributionShares, paid into it by anyone's ``claimFor``; welcome grants for the
   registry's participants) and C-REV (issued
   only by the registry through its self-consumption hook); the grid participant (the config's
   ``grid.account``: the market may mint and burn WATT for the grid's trades and clear paid energy
   debt in the registry), the network fee and the households' feeders;
5. meters and batteries of the config (when their owners' addresses are given);
6. hand-over: every role the deployer holds on every contract goes to the treasury and the
   deployer renounces them, so from then on only a passed proposal changes the rules.

Contracts are recorded in ``deployments/<chainId>.json`` as ``<slug>.<Contract>``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from . import crev as crev_sdk
from . import dao as dao_sdk
from . import grid as grid_sdk
from . import meters as meters_sdk
from . import orders as orders_sdk
from . import storage as storage_sdk
from .contracts import at, deploy
from .exceptions import ConfigError
from .region_config import RegionConfig
from .tx import send

log = logging.getLogger("gridcoop.region")

TSL_UNIT = 10**18
#: Gas the MeterRegistry gives the C-REV hook per reading.
HOOK_GAS_LIMIT = 600_000


def to_units(amount: float | Decimal, decimals: int) -> int:
    """Whole units (as in a config file) → token base units, exactly for decimal input."""
    return int(Decimal(str(amount)) * (Decimal(10) ** decimals))


def household_meter_id(slug: str, household: str) -> str:
    return f"{slug}:{household}:main"


def battery_meter_id(slug: str, battery: str) -> str:
    return f"{slug}:{battery}:battery"


@dataclass
class Region:
    """A deployed region: its config, contracts by name, and ids assigned at registration."""

    name: str
    config: RegionConfig | None = None
    contracts: dict[str, Contract] = field(default_factory=dict)
    dao: dao_sdk.Dao | None = None
    crev: crev_sdk.Crev | None = None
    battery_ids: dict[str, int] = field(default_factory=dict)
    meter_ids: dict[str, str] = field(default_factory=dict)  # household/battery name → meter id text
    handover_log: list[str] = field(default_factory=list)

    def __getitem__(self, key: str) -> Contract:
        return self.contracts[key]

    def addresses(self) -> dict[str, str]:
        return {k: c.address for k, c in self.contracts.items()}

    @property
    def currency_decimals(self) -> int:
        return int(self.contracts["LocalCurrency"].functions.decimals().call())


def deploy_tokens(
    w3: Web3, deployer: LocalAccount, *, name: str = "default", treasury: str | None = None,
    directory: Path | None = None,
) -> Region:
    """Only WATT and TSL (TSL's fixed supply to ``treasury``, default the deployer)."""
    region = Region(name)
    region.contracts["WattToken"] = deploy(w3, deployer, "WattToken", deployer.address,
                                           record_as=f"{name}.WattToken", directory=directory)
    region.contracts["TeslaToken"] = deploy(w3, deployer, "TeslaToken", treasury or deployer.address,
                                            record_as=f"{name}.TeslaToken", directory=directory)
    return region


def deploy_region(
    w3: Web3,
    deployer: LocalAccount,
    cfg: RegionConfig,
    *,
    keeper: str,
    owners: Mapping[str, str],
    device_signers: Mapping[str, str] | None = None,
    directory: Path | None = None,
    progress: Callable[[str], None] | None = None,
    before_handover: Callable[[Region], None] | None = None,
    grid_account: str | None = None,
) -> Region:
    """Deploy the region described by ``cfg`` and hand every admin role to its DAO treasury.

    ``owners`` maps household names to their accounts (founders and battery owners must be in
    it). ``device_signers`` maps household and battery names to meter device-key addresses;
    meters are registered only for names present there. ``before_handover`` runs while the
    deployer still holds every role (the demo funds households from it). ``grid_account`` is the
    utility's account when the config names none (the demo's utility).
    """
    say = progress or (lambda msg: log.info("%s", msg))
    slug = cfg.slug
    region = Region(slug, cfg)
    signers = dict(device_signers or {})
    missing = [f.household for f in cfg.dao.founders if f.household not in owners]
    missing += [o.household for b in cfg.batteries for o in b.owners if o.household not in owners]
    if missing:
        raise ConfigError(f"no account given for households {sorted(set(missing))}", source=cfg.slug)
    for warning in cfg.warnings():
        log.warning("region %s: %s", slug, warning)
        say(f"WARNING: {warning}")

    def rec(contract: str) -> str:
        return f"{slug}.{contract}"

    # 1. money of the region
    cur = cfg.local_currency
    if cur.address:
        region.contracts["LocalCurrency"] = at(w3, "LocalCurrency", cur.address)
        say(f"local currency {cur.symbol}: existing token {cur.address}")
    else:
        region.contracts["LocalCurrency"] = deploy(
            w3, deployer, "LocalCurrency", cur.name, cur.symbol, cur.decimals, deployer.address,
            record_as=rec("LocalCurrency"), directory=directory)
        say(f"local currency {cur.symbol} deployed at {region.contracts['LocalCurrency'].address}")

    # 2. the DAO
    founders = [(owners[f.household], f.role) for f in cfg.dao.founders]
    params = dao_sdk.VotingParams(voting_period_s=cfg.dao.voting_period_s, threshold=cfg.dao.threshold,
                                  execution_delay_s=cfg.dao.execution_delay_s)
    # 3. energy economy tokens (TSL needs the revenue token list of the shares distributor)
    tokens = deploy_tokens(w3, deployer, name=slug, directory=directory)
    region.contracts.update(tokens.contracts)
    watt, tsl = region["WattToken"], region["TeslaToken"]
    founding: dict[str, int] = {}
    for f in cfg.dao.founders:
        founding[owners[f.household]] = founding.get(owners[f.household], 0) + f.shares
    dao = dao_sdk.deploy_dao(w3, deployer, founders=founders, params=params, revenue_tokens=[tsl.address],
                             name=slug, directory=directory, founding_shares=founding)
    region.dao = dao
    region.contracts.update({"RoleNFT": dao.role_nft, "Treasury": dao.treasury, "ContributionShares": dao.shares})
    say(f"DAO treasury {dao.treasury.address} with {len(founders)} founders, {cfg.dao.threshold}-of-N votes")

    # 4. the co-op's contracts
    registry = meters_sdk.deploy_meters(w3, deployer, watt, record_as=rec("MeterRegistry"), directory=directory)
    region.contracts["MeterRegistry"] = registry
    market = orders_sdk.deploy_market(
        w3, deployer, watt, keeper=keeper,
        payment_tokens=[region["LocalCurrency"].address, tsl.address],
        gate_closure_delay=cfg.market.gate_closure_s, max_batch_size=cfg.market.max_batch_size,
        record_as=rec("EnergyMarket"), directory=directory)
    region.contracts["EnergyMarket"] = market
    # the grid participant: the market mints what the grid sells, burns what it buys, clears paid debt
    for role in ("MINTER_ROLE", "BURNER_ROLE"):
        send(w3, deployer, watt.functions.grantRole(getattr(watt.functions, role)().call(), market.address))
    send(w3, deployer, registry.functions.grantRole(registry.functions.DEBT_SETTLER_ROLE().call(), market.address))
    currency = region["LocalCurrency"].address
    utility = cfg.grid.account or grid_account
    if utility:
        grid_sdk.set_grid(w3, deployer, market, account=utility, token=currency,
                          feed_in_price=to_units(cfg.grid.feed_in_price, cur.decimals),
                          retail_price=to_units(cfg.grid.retail_price, cur.decimals), debt_ledger=registry.address)
        say(f"grid participant {utility}: bids {cfg.grid.feed_in_price} {cur.symbol}/kWh (feed-in), offers "
            f"{cfg.grid.retail_price} {cur.symbol}/kWh (retail); energy debt paid at retail")
    else:
        say("WARNING: no grid.account: the grid is not a market participant (energy debt cannot be paid on chain)")
    fee = cfg.grid.network_fee
    if fee:
        grid_sdk.set_network_fee(w3, deployer, market, currency, grid_sdk.NetworkFee(
            to_units(fee.per_kwh, cur.decimals), to_units(fee.intra_feeder_per_kwh, cur.decimals)), payee=fee.payee)
        say(f"network fee {fee.per_kwh} {cur.symbol}/kWh ({fee.intra_feeder_per_kwh} inside a feeder) to {fee.payee}")
    feeders = {owners[h.name]: h.feeder for h in cfg.households if h.feeder and h.name in owners}
    grid_sdk.set_feeders(w3, deployer, market, feeders)
    storage = storage_sdk.deploy_storage(
        w3, deployer, watt, tsl, platform_treasury=dao.shares.address, marketing=dao.treasury.address,
        participants=registry.address, welcome_grant=to_units(cfg.storage.welcome_grant_tsl, 18),
        record_as=rec("BatteryStorage"), directory=directory)
    region.contracts["BatteryStorage"] = storage
    crev = crev_sdk.deploy_crev(w3, deployer, issuer=registry.address, factor_g_per_kwh=cfg.grid.crev_factor,
                                minimum_retirement=0, region=slug, directory=directory)
    region.crev = crev
    region.contracts["CarbonReductionValue"] = crev.token
    region.contracts["RetirementCertificate"] = crev.certificate
    send(w3, deployer, registry.functions.setSelfConsumptionHook(crev.token.address))
    # C-REV issuance of a holder's first lot costs ~285k gas (bench_crev); leave headroom
    send(w3, deployer, registry.functions.setHookGasLimit(HOOK_GAS_LIMIT))
    say(f"MeterRegistry, EnergyMarket, BatteryStorage and C-REV deployed (factor {cfg.grid.crev_factor} g/kWh)")

    # 5. meters and batteries
    for h in cfg.households:
        if h.name not in signers or h.name not in owners:
            continue
        mid = household_meter_id(slug, h.name)
        meters_sdk.register_meter(
            w3, deployer, registry, meter_id=mid, signer=signers[h.name], owner=owners[h.name],
            kind="consumer" if h.kind == "consumer" else "prosumer", colour=h.colour,
            certified=h.certified, rated_power_w=h.rated_power_w, location=h.location)
        region.meter_ids[h.name] = mid
    for b in cfg.batteries:
        mid = battery_meter_id(slug, b.id)
        first_owner = owners[b.owners[0].household]
        if b.id in signers:
            meters_sdk.register_meter(
                w3, deployer, registry, meter_id=mid, signer=signers[b.id], owner=first_owner,
                kind="battery", colour="battery", certified=False,
                rated_power_w=b.rated_power_w, location=b.location)
            region.meter_ids[b.id] = mid
        region.battery_ids[b.id] = storage_sdk.register_battery(
            w3, deployer, storage, meter_id=mid, capacity_wh=int(b.capacity_kwh * 1000),
            efficiency_bps=int(round(b.efficiency * 10_000)),
            fee_rate=to_units(b.fee_tsl_per_kwh_slot, 18),
            owners=[(owners[o.household], o.share) for o in b.owners])
    say(f"registered {len(region.meter_ids)} meters and {len(region.battery_ids)} community batteries")

    # TSL: marketing pool first, the rest to the DAO treasury
    pool = to_units(cfg.storage.marketing_pool_tsl, 18)
    if pool:
        storage_sdk.fund_marketing_pool(w3, deployer, storage, pool)
    if before_handover:
        before_handover(region)
    rest = tsl.functions.balanceOf(deployer.address).call()
    if rest:
        send(w3, deployer, tsl.functions.transfer(dao.treasury.address, rest))
    say(f"TSL: {pool // TSL_UNIT:,} to the marketing pool, {rest // TSL_UNIT:,} to the DAO treasury")

    # 6. hand-over
    governed = {k: v for k, v in region.contracts.items()
                if k not in ("RoleNFT", "Treasury", "ContributionShares", "TeslaToken", "RetirementCertificate")}
    if cur.address:
        governed.pop("LocalCurrency")
    region.handover_log = dao_sdk.handover(w3, deployer, governed, dao.treasury.address)
    say(f"hand-over: {sum('granted' in line for line in region.handover_log)} roles now held by the DAO treasury; "
        "the deployer holds none")
    return region


def region_summary(region: Region) -> dict[str, Any]:
    return {"region": region.config.region if region.config else region.name, **region.addresses()}
