"""ape run deploy — deploy a gridcoop region with an ape account and record its addresses.

    ape run deploy --region kyoto                      # local anvil, test account 0 by default
    ape run deploy --network ethereum:sepolia:node --account deployer --region kyoto
    ape run deploy --region kyoto --founder 0xA…:leader --founder 0xB…:treasurer --founder 0xC…:member

Addresses are written to deployments/<chainId>.json as <region>.<Contract>, the file every
gridcoop service reads. With --founder the region's DAO is deployed too (RoleNFT, Treasury,
ContributionShares recorded as <region>.*), TSL's fixed supply goes to the DAO treasury, and every
admin role of every recorded <region>.* contract is handed to the treasury: afterwards the
deployer can change nothing, and parameters change only through proposals.
"""

from __future__ import annotations

import os

import click
from ape import accounts, project
from ape.cli import ConnectedProviderCommand, account_option
from eth_account import Account

from gridcoop_sdk import deployments
from gridcoop_sdk.dao import DEFAULT_ROLE_TYPES, VotingParams, deploy_dao, handover_region


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
@click.option("--treasury", default=None,
              help="Receiver of TSL's fixed supply (default: the DAO treasury with --founder, else the account).")
@click.option("--founder", "founders", multiple=True, callback=_founder, metavar="ADDRESS:ROLE",
              help="A founding DAO member and role type (leader, treasurer, member, auditor, observer). "
                   "Repeatable; when given, the DAO is deployed and handed every admin role.")
@click.option("--threshold", type=int, default=2, show_default=True, help="DAO: vote weight a proposal needs (M of N).")
@click.option("--voting-period", type=int, default=3 * 24 * 3600, show_default=True, help="DAO: voting period in seconds.")
@click.option("--execution-delay", type=int, default=0, show_default=True, help="DAO: delay before a passed proposal executes (s).")
def cli(ecosystem, network, provider, account, region_name, treasury, founders, threshold, voting_period, execution_delay):
    """Deploy WATT and TSL (and, with --founder, the DAO and the hand-over) for a region and record them."""
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
    treasury = treasury or (dao.treasury.address if dao else account.address)
    for name, args in (("WattToken", [account.address]), ("TeslaToken", [treasury])):
        contract = account.deploy(getattr(project, name), *args)
        receipt = contract.creation_metadata.receipt if contract.creation_metadata else None
        deployments.record(
            chain_id, f"{region_name}.{name}", contract.address,
            receipt.block_number if receipt else 0, receipt.txn_hash if receipt else "",
        )
        click.echo(f"{region_name}.{name} {contract.address}")
    if dao:
        for line in handover_region(provider.web3, signer, region_name, dao.treasury.address):
            click.echo(f"handover: {line}")
    click.echo(f"recorded in {deployments.path_for(chain_id)}")
