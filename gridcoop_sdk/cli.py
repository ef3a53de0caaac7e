"""``gridcoop`` command line: the co-op demo and region deployment.

Run ``gridcoop --help`` (or ``gridcoop COMMAND --help``) for every option.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time

import click
from eth_account import Account

from . import deployments
from .chain import Anvil, connect, dev_accounts
from .exceptions import GridcoopError
from .region import deploy_region


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def _sigterm_as_interrupt() -> None:
    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail (every transaction).")
def main(verbose: bool) -> None:
    """gridcoop: a neighbourhood electricity co-op on an EVM chain."""
    _setup_logging(verbose)


@main.command()
@click.option("--rpc-url", default=None, metavar="URL",
              help="Use this node instead of starting a local anvil (e.g. http://127.0.0.1:8545).")
@click.option("--region", "region_name", default="demo", show_default=True,
              help="Region name; contracts are recorded as <region>.<Contract>.")
def demo(rpc_url: str | None, region_name: str) -> None:
    """Run the co-op on the embedded default: start anvil, deploy a region, report.

    Without --rpc-url a fresh anvil is started on a free loopback port and stopped at the end
    (also on Ctrl-C). Deployed addresses go to deployments/<chainId>.json.
    """
    _sigterm_as_interrupt()
    started = time.monotonic()
    node: Anvil | None = None
    try:
        if rpc_url:
            w3 = connect(rpc_url)
            url = rpc_url
        else:
            node = Anvil().start()
            w3, url = node.w3, node.url
            click.echo(f"started anvil at {url} (chain id {node.chain_id})")
        deployer = dev_accounts(1)[0]
        region = deploy_region(w3, deployer, name=region_name)
        click.echo(f"\nregion {region_name!r} on chain {w3.eth.chain_id} ({url}):")
        for contract, addr in region.addresses().items():
            click.echo(f"  {contract:<14} {addr}")
        watt, tsl = region["WattToken"], region["TeslaToken"]
        click.echo(
            f"\n  WATT supply {watt.functions.totalSupply().call()} base units; "
            f"TSL supply {tsl.functions.totalSupply().call() // 10**18:,} TSL held by {deployer.address}"
        )
        click.echo(f"  recorded in {deployments.path_for(w3.eth.chain_id)}")
        click.echo(f"\ndone in {time.monotonic() - started:.1f}s")
    except KeyboardInterrupt:
        click.echo("\ninterrupted", err=True)
        sys.exit(130)
    except GridcoopError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    finally:
        if node:
            node.stop()
            click.echo(f"stopped anvil at {node.url}")


@main.command()
@click.option("--rpc-url", required=True, metavar="URL", help="JSON-RPC endpoint of the target chain.")
@click.option("--chain-id", type=int, default=None, help="Refuse to deploy unless the node serves this chain id.")
@click.option("--key-env", default="GRIDCOOP_DEPLOYER_KEY", show_default=True,
              help="Environment variable holding the deployer's hex private key.")
@click.option("--region", "region_name", default="default", show_default=True, help="Region name.")
@click.option("--treasury", default=None, help="Address that receives TSL's fixed supply (default: deployer).")
def deploy(rpc_url: str, chain_id: int | None, key_env: str, region_name: str, treasury: str | None) -> None:
    """Deploy a region's contracts to the chain at --rpc-url and record their addresses."""
    key = os.environ.get(key_env)
    if not key:
        raise click.UsageError(f"set {key_env} to the deployer's private key (hex)")
    try:
        w3 = connect(rpc_url, expected_chain_id=chain_id)
        acct = Account.from_key(key)
        region = deploy_region(w3, acct, name=region_name, treasury=treasury)
    except GridcoopError as exc:
        raise click.ClickException(str(exc)) from exc
    for contract, addr in region.addresses().items():
        click.echo(f"{region_name}.{contract} {addr}")


# Command groups that live beside their component (``gridcoop battery …``, ``gridcoop crev …``).
# Each entry is "module:attribute" of a click group; one line per component.
SUBCOMMANDS: list[str] = [
    "gridcoop_sdk.crev_cli:crev",
    "gridcoop_sdk.storage_cli:battery",
    "keeper.cli:main",
]


def _register_subcommands() -> None:
    import importlib

    for spec in SUBCOMMANDS:
        module, _, attr = spec.partition(":")
        main.add_command(getattr(importlib.import_module(module), attr))


_register_subcommands()

if __name__ == "__main__":
    main()
