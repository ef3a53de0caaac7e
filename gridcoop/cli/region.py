"""``gridcoop region …``: deploy a region from its config file, list the regions recorded on a chain,
show one. Logic: :mod:`gridcoop_sdk.region`, :mod:`gridcoop_sdk.region_config`."""

from __future__ import annotations

import click

from gridcoop_sdk import deployments

from .common import (
    Chain,
    account_from_env,
    address_callback,
    chain_options,
    group,
    key_env_option,
    token_info,
)


@group("region")
def region() -> None:
    """Regions: deploy one from its config (configs/regions/*.yaml), list and show the recorded ones.

    A region's contracts are recorded in deployments/<chainId>.json as <region>.<Contract>; every
    other command finds them with --region NAME. TSL is the platform's token, one per chain
    (platform.TeslaToken), which every region references as <region>.TeslaToken.
    """


@region.command()
@click.option("--config", "config", required=True, metavar="FILE|NAME",
              help="Region config (YAML); a bare name means configs/regions/NAME.yaml. Households with an "
                   "`account` (and a `meter_signer`) get their meters registered; founders and battery owners "
                   "need an `account`. configs/regions/example.yaml deploys to a fresh anvil as it is.")
@click.option("--rpc-url", envvar="GRIDCOOP_RPC_URL", required=True, metavar="URL",
              help="JSON-RPC endpoint of the target chain (or $GRIDCOOP_RPC_URL).")
@click.option("--chain-id", type=click.IntRange(min=1), default=None, metavar="ID",
              help="Refuse to deploy unless the node serves this chain id.")
@click.option("--deployments", "deployments_dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Folder of the deployment records <chainId>.json (default: the project's deployments/ "
                   "or $GRIDCOOP_DEPLOYMENTS).")
@key_env_option("GRIDCOOP_DEPLOYER_KEY", "the deployer (it pays the gas and holds no role afterwards)")
@click.option("--keeper", required=True, metavar="ADDRESS", callback=address_callback,
              help="Account that gets the market's KEEPER_ROLE (the key `gridcoop keeper serve` runs with).")
def deploy(config: str, rpc_url: str, chain_id: int | None, deployments_dir, key_env: str, keeper: str) -> None:
    """Deploy a region from its config to the chain at --rpc-url and hand every role to its DAO.

    Every input is checked before the first transaction. Addresses are recorded in
    deployments/<chainId>.json as <slug>.<Contract>. Afterwards the deployer holds no role on any
    contract: changes go through DAO proposals (gridcoop dao propose).

    TSL is the chain's, not the region's: one TeslaToken (fixed supply 10^9) per chain, recorded as
    platform.TeslaToken. The config's `platform.tsl_address` names it (refused unless a TeslaToken
    is there); without it the recorded platform TSL is used, and deployed, its whole supply to this
    deployer, only on a chain that has none. The region's TSL (storage.marketing_pool_tsl and
    platform.treasury_tsl) is transferred from `platform.funding_from`: `deployer` (the default: the
    deployer's own TSL) or the platform holder's address, which approved the deployer for it.
    """
    from pathlib import Path

    from gridcoop_sdk.region import deploy_region
    from gridcoop_sdk.region_config import load_region

    acct = account_from_env(key_env, "the deployer")
    cfg = load_region(config)
    need = sorted({f.household for f in cfg.dao.founders} | {o.household for b in cfg.batteries for o in b.owners})
    owners = {h.name: h.account for h in cfg.households if h.account}
    missing = [n for n in need if n not in owners]
    if missing:
        raise click.ClickException(
            f"{config}: households {', '.join(missing)} need an `account:` address (DAO founders and battery owners "
            "must have one); add them, or start from configs/regions/example.yaml")
    signers = {h.name: h.meter_signer for h in cfg.households if h.meter_signer}
    directory = Path(deployments_dir) if deployments_dir else None
    chain = Chain(rpc_url, None, chain_id, directory)
    w3 = chain.w3
    balance = w3.eth.get_balance(acct.address)
    if balance == 0:
        raise click.ClickException(f"the deployer {acct.address} (${key_env}) has no ETH on chain {w3.eth.chain_id} "
                                   "to pay for gas; fund it first")
    if cfg.slug in chain.regions():
        click.echo(f"note: region {cfg.slug} is already recorded on chain {w3.eth.chain_id}; its records are "
                   "replaced by this deployment", err=True)
    region_ = deploy_region(w3, acct, cfg, keeper=keeper, owners=owners, device_signers=signers,
                            directory=directory, progress=lambda m: click.echo(f"  {m}"))
    for contract, addr in region_.addresses().items():
        shared = " (the platform's TSL, shared by every region on the chain)" if contract == "TeslaToken" else ""
        click.echo(f"{cfg.slug}.{contract} {addr}{shared}")
    click.echo(f"recorded in {deployments.path_for(w3.eth.chain_id, directory)}")
    click.echo(f"next: gridcoop keeper serve --rpc-url {rpc_url} --region {cfg.slug} --relay")


@region.command("list")
@chain_options
def list_regions(chain: Chain) -> None:
    """List the regions recorded for the chain at --rpc-url."""
    regions = chain.regions()
    if not regions:
        click.echo(f"no regions recorded for chain {chain.w3.eth.chain_id} in {chain.record_file()} "
                   "(deploy one with `gridcoop region deploy`)")
        return
    for name, contracts in sorted(regions.items()):
        click.echo(f"{name}: {len(contracts)} contracts ({', '.join(sorted(contracts))})")
    platform_tsl = chain.records().get("platform.TeslaToken")
    if platform_tsl:
        click.echo(f"platform: TeslaToken (TSL) {platform_tsl['address']}, shared by every region")


@region.command()
@click.argument("name", required=False)
@chain_options
def show(name: str | None, chain: Chain) -> None:
    """Show region NAME (or --region): its contracts, currency and DAO treasury."""
    if name:
        chain.region = name
    region_name = chain.require_region()
    if region_name not in chain.regions():
        chain.address("WattToken")  # raises: names the recorded regions
    contracts = chain.regions()[region_name]
    click.echo(f"region {region_name} on chain {chain.w3.eth.chain_id} ({chain.record_file()})")
    for contract, addr in sorted(contracts.items()):
        click.echo(f"  {contract:<22} {addr}")
    if "LocalCurrency" in contracts:
        t = token_info(chain.w3, contracts["LocalCurrency"])
        click.echo(f"  currency               {t.symbol} ({t.decimals} decimals); prices on the command line are "
                   f"in {t.symbol} per kWh")
