"""ape run deploy — deploy a gridcoop region with an ape account and record its addresses.

    ape run deploy --region kyoto                      # local anvil, test account 0 by default
    ape run deploy --network ethereum:sepolia:node --account deployer --region kyoto

Addresses are written to deployments/<chainId>.json as <region>.<Contract>, the file every
gridcoop service reads.
"""

from __future__ import annotations

import click
from ape import accounts, project
from ape.cli import ConnectedProviderCommand, account_option

from gridcoop_sdk import deployments


@click.command(cls=ConnectedProviderCommand)
@account_option(prompt=False)
@click.option("--region", "region_name", default="default", show_default=True, help="Region name (record prefix).")
@click.option("--treasury", default=None, help="Receiver of TSL's fixed supply (default: the account).")
def cli(ecosystem, network, provider, account, region_name, treasury):
    """Deploy WATT and TSL for a region and record them."""
    chain_id = provider.chain_id
    if account is None:
        if not network.is_local:
            raise click.UsageError("--account is required on a non-local network")
        account = accounts.test_accounts[0]
    treasury = treasury or account.address
    for name, args in (("WattToken", [account.address]), ("TeslaToken", [treasury])):
        contract = account.deploy(getattr(project, name), *args)
        receipt = contract.creation_metadata.receipt if contract.creation_metadata else None
        deployments.record(
            chain_id, f"{region_name}.{name}", contract.address,
            receipt.block_number if receipt else 0, receipt.txn_hash if receipt else "",
        )
        click.echo(f"{region_name}.{name} {contract.address}")
    click.echo(f"recorded in {deployments.path_for(chain_id)}")
