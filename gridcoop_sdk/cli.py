"""``gridcoop`` command line: the co-op demo and region deployment.

Run ``gridcoop --help`` (or ``gridcoop COMMAND --help``) for every option.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

import click
from eth_account import Account

from . import deployments
from .chain import connect
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
@click.option("--config", "config", default="sakura", show_default=True, metavar="FILE|NAME",
              help="Region config (YAML); a bare name means configs/regions/NAME.yaml.")
@click.option("--second-config", default="kaede", show_default=True, metavar="FILE|NAME",
              help="A second region deployed on the same chain with the same code.")
@click.option("--no-second", is_flag=True, help="Skip the second region.")
@click.option("--households", type=click.IntRange(1, 200), default=None,
              help="Number of households (default: as many as the config lists).")
@click.option("--intervals", type=click.IntRange(1, 96 * 7), default=96, show_default=True,
              help="15-minute intervals to simulate (96 = one day).")
@click.option("--start-hour", type=click.FloatRange(0, 23.75), default=0.0, show_default=True,
              help="Hour of the day (UTC) the run starts at, e.g. 10 for a short sunny run.")
@click.option("--second-intervals", type=click.IntRange(1, 96), default=8, show_default=True,
              help="Intervals the second region runs (from 10:00 of the next day).")
@click.option("--speed", type=click.FloatRange(min=1, min_open=False), default=3600.0, show_default=True,
              help="Simulated seconds per real second; the day never runs ahead of the work.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Report folder (default: reports/demo-<timestamp>).")
@click.option("--rpc-url", default=None, metavar="URL",
              help="Use this node (it must allow evm_setNextBlockTimestamp) instead of starting anvil.")
@click.option("--dao-via-sdk", is_flag=True,
              help="Run the noon DAO vote through the SDK instead of the `ape run dao` scripts (faster).")
def demo(config, second_config, no_second, households, intervals, start_hour, second_intervals, speed, out,
         rpc_url, dao_via_sdk) -> None:
    """Run a simulated co-op day end to end on a self-started local chain.

    Starts anvil on a free port, deploys the region from --config and hands every admin role to
    its DAO, starts Modbus meter simulators, the meter bridge and the keeper's HTTP API, and
    plays the day: signed readings, signed orders cleared and settled every 15 minutes, battery
    storage with TSL fees, a DAO vote at noon, C-REV issuance and a retirement. Writes CSVs, PNG
    plots and index.html into the report folder, then deploys and runs the second region. The
    chain it started is stopped at the end (also on Ctrl-C).
    """
    from coop_demo.day import Demo, DemoOptions

    _sigterm_as_interrupt()
    logging.getLogger().setLevel(logging.WARNING)
    opts = DemoOptions(config=config, second_config=None if no_second else second_config,
                       households=households, intervals=intervals, start_hour=start_hour,
                       second_intervals=second_intervals,
                       speed=speed, out=out, rpc_url=rpc_url, dao_vote_via_scripts=not dao_via_sdk)
    d = Demo(opts)
    try:
        d.run()
    except KeyboardInterrupt:
        click.echo("\ninterrupted", err=True)
        sys.exit(130)
    except GridcoopError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    finally:
        d.close()


@main.command()
@click.option("--config", "config", required=True, metavar="FILE|NAME",
              help="Region config (YAML); households with `account` (and `meter_signer`) are registered.")
@click.option("--rpc-url", required=True, metavar="URL", help="JSON-RPC endpoint of the target chain.")
@click.option("--chain-id", type=int, default=None, help="Refuse to deploy unless the node serves this chain id.")
@click.option("--key-env", default="GRIDCOOP_DEPLOYER_KEY", show_default=True,
              help="Environment variable holding the deployer's hex private key.")
@click.option("--keeper", required=True, metavar="ADDRESS", help="Account that gets the market's KEEPER_ROLE.")
def deploy(config: str, rpc_url: str, chain_id: int | None, key_env: str, keeper: str) -> None:
    """Deploy a region from its config to the chain at --rpc-url and hand every role to its DAO.

    Addresses are recorded in deployments/<chainId>.json as <slug>.<Contract>. After this
    command the deployer holds no role on any contract: changes go through DAO proposals.
    """
    from .region_config import load_region

    key = os.environ.get(key_env)
    if not key:
        raise click.UsageError(f"set {key_env} to the deployer's private key (hex)")
    try:
        cfg = load_region(config)
        w3 = connect(rpc_url, expected_chain_id=chain_id)
        acct = Account.from_key(key)
        owners = {h.name: h.account for h in cfg.households if h.account}
        signers = {h.name: h.meter_signer for h in cfg.households if h.meter_signer}
        region = deploy_region(w3, acct, cfg, keeper=keeper, owners=owners, device_signers=signers,
                               progress=lambda m: click.echo(f"  {m}"))
    except GridcoopError as exc:
        raise click.ClickException(str(exc)) from exc
    for contract, addr in region.addresses().items():
        click.echo(f"{cfg.slug}.{contract} {addr}")
    click.echo(f"recorded in {deployments.path_for(w3.eth.chain_id)}")


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
