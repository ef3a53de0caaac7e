"""ape run deploy — deploy a gridcoop region with an ape account and record its addresses.

    ape run deploy --region kyoto                      # local anvil, test account 0 by default
    ape run deploy --network ethereum:sepolia:node --account deployer --region kyoto
    ape run deploy --region kyoto --founder 0xA…:leader --founder 0xB…:treasurer --founder 0xC…:member

Addresses are written to deployments/<chainId>.json as <region>.<Contract>, the file every
gridcoop service reads. TSL is the platform's, not the region's: one TeslaToken per chain (fixed
supply 10^9), recorded as platform.TeslaToken and referenced by every region as <region>.TeslaToken.
--tsl names it; without it the recorded one is used, and deployed (its supply to --treasury, default
the account) only when the chain has none. With --founder the region's DAO is deployed too (RoleNFT,
Treasury, ContributionShares recorded as <region>.*), --treasury-tsl TSL go from the account to the
DAO treasury, and every admin role of every recorded <region>.* contract is handed to the treasury:
afterwards the deployer can change nothing, and parameters change only through proposals.
"""

from __future__ import annotations

import os

import click
from ape import accounts, project
from ape.cli import ConnectedProviderCommand, account_option
from eth_account import Account

from gridcoop_sdk import deployments
from gridcoop_sdk import platform as platform_sdk
from gridcoop_sdk.dao import DEFAULT_ROLE_TYPES, VotingParams, deploy_dao, handover_region
from gridcoop_sdk.exceptions import GridcoopError


def _founder(ctx, param, values):
    out = []
    names = {rt.name for rt in DEFAULT_ROLE_TYPES}
    for v in values:
        addr, _, role = v.partition(":")
        if not addr.startswith("0x") or len(addr) != 42 or role not in names:
            raise click.BadParameter(f"{v!r}: expected ADDRESS:ROLE with ROLE one of {', '.join(sorted(names))}")
        out.append((addr, role))
    return out


@click.command(cls=ConnectedProviderCommand)
@account_option(prompt=False)
@click.option("--region", "region_name", default="default", show_default=True, help="Region name (record prefix).")
@click.option("--tsl", "tsl_address", default=None, metavar="ADDRESS",
              help="The chain's TeslaToken (default: the recorded platform.TeslaToken, deployed if the chain has "
                   "none). Refused unless a TeslaToken with the fixed 10^9 supply is there.")
@click.option("--treasury", default=None,
              help="Holder of TSL's fixed supply when this run deploys the platform TSL (default: the account).")
@click.option("--treasury-tsl", type=click.IntRange(min=0, max=10**9), default=0, show_default=True,
              help="With --founder: whole TSL the account transfers to the region's DAO treasury.")
@click.option("--founder", "founders", multiple=True, callback=_founder, metavar="ADDRESS:ROLE",
              help="A founding DAO member and role type (leader, treasurer, member, auditor, observer). "
                   "Repeatable; when given, the DAO is deployed and handed every admin role.")
@click.option("--threshold", type=int, default=2, show_default=True, help="DAO: vote weight a proposal needs (M of N).")
@click.option("--voting-period", type=int, default=3 * 24 * 3600, show_default=True, help="DAO: voting period in seconds.")
@click.option("--execution-delay", type=int, default=0, show_default=True, help="DAO: delay before a passed proposal executes (s).")
def cli(ecosystem, network, provider, account, region_name, tsl_address, treasury, treasury_tsl, founders, threshold,
        voting_period, execution_delay):
    """Deploy a region's WATT (and, with --founder, the DAO and the hand-over), referencing the chain's single
    TSL (deployed only if the chain has none), and record them."""
    chain_id = provider.chain_id
    if account is None:
        if not network.is_local:
            raise click.UsageError("--account is required on a non-local network")
        account = accounts.test_accounts[0]
    dao = None
    if founders:
        key = os.environ.get("GRIDCOOP_DEPLOYER_KEY") or getattr(account, "private_key", None)
        if not key:  # keyfile accounts keep their key inside ape; the SDK signs with eth-account
            raise click.UsageError("with --founder, use a test account or set GRIDCOOP_DEPLOYER_KEY to the "
                                   "deployer's hex key (the DAO is deployed through gridcoop_sdk)")
        signer = Account.from_key(key)
        dao = deploy_dao(provider.web3, signer, founders=founders, name=region_name,
                         params=VotingParams(voting_period_s=voting_period, threshold=threshold,
                                             execution_delay_s=execution_delay))
        for name, addr in dao.addresses().items():
            click.echo(f"{region_name}.{name} {addr}")
    if region_name == platform_sdk.PLATFORM:
        raise click.BadParameter("`platform` is reserved for the chain's platform records", param_hint="--region")
    w3 = provider.web3
    try:
        tsl = platform_sdk.check_tsl(w3, tsl_address, key="--tsl") if tsl_address else platform_sdk.recorded_tsl(w3)
    except GridcoopError as exc:
        raise click.ClickException(str(exc)) from None
    if tsl is None:
        contract = account.deploy(project.TeslaToken, treasury or account.address)
        _record(chain_id, platform_sdk.TSL_RECORD, contract)
        click.echo(f"{platform_sdk.TSL_RECORD} {contract.address} (the chain's TSL: 10^9 to "
                   f"{treasury or account.address})")
        tsl_address = contract.address
    else:
        tsl_address = tsl.address
        if tsl_address != deployments.load(chain_id).get(platform_sdk.TSL_RECORD, {}).get("address"):
            platform_sdk.record_reference(w3, platform_sdk.TSL_RECORD, tsl_address)
        click.echo(f"{platform_sdk.TSL_RECORD} {tsl_address} (the chain's TSL, not deployed again)")
    if dao and treasury_tsl:
        held = project.TeslaToken.at(tsl_address).balanceOf(account.address)
        if held < treasury_tsl * 10**18:
            raise click.ClickException(f"--treasury-tsl {treasury_tsl}: the account {account.address} holds only "
                                       f"{held / 10**18:,} TSL of the chain's TeslaToken {tsl_address}")
    watt = account.deploy(project.WattToken, account.address)
    _record(chain_id, f"{region_name}.WattToken", watt)
    click.echo(f"{region_name}.WattToken {watt.address}")
    platform_sdk.record_reference(w3, f"{region_name}.TeslaToken", tsl_address)
    click.echo(f"{region_name}.TeslaToken {tsl_address} (the platform's TSL)")
    if dao and treasury_tsl:
        project.TeslaToken.at(tsl_address).transfer(dao.treasury.address, treasury_tsl * 10**18, sender=account)
        click.echo(f"{treasury_tsl:,} TSL to the DAO treasury {dao.treasury.address}")
    if dao:
        for line in handover_region(provider.web3, signer, region_name, dao.treasury.address):
            click.echo(f"handover: {line}")
    click.echo(f"recorded in {deployments.path_for(chain_id)}")


def _record(chain_id: int, name: str, contract) -> None:
    receipt = contract.creation_metadata.receipt if contract.creation_metadata else None
    deployments.record(chain_id, name, contract.address, receipt.block_number if receipt else 0,
                       receipt.txn_hash if receipt else "")
