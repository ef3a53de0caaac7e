"""The ``gridcoop`` command: one tree, ``gridcoop <area> <verb>``, above the SDK and the applications.

Each area is one module of this package and only parses options and calls the code that does the
work (:mod:`gridcoop_sdk`, :mod:`keeper`, :mod:`meter_bridge`, :mod:`coop_demo`):

- ``region``  deploy a region from its config; list and show the recorded regions
- ``meters``  device keys, registration, a meter's on-chain state
- ``market``  orders (buy/sell), the order list, cancel, an interval's results
- ``storage`` community batteries
- ``crev``    C-REV balances, retirement, certificate traces, emission factor
- ``dao``     proposals, votes, execution, budgets, roles
- ``keeper``  the operator's service: serve, settle, status
- ``bridge``  the meter gateway: run, status, simulate
- ``demo``    a simulated co-op day
"""

from __future__ import annotations

import logging

import click

from gridcoop import __version__

from .bridge import bridge
from .common import CONTEXT, KEY_ENVS, ErrorsAsMessages
from .crev import crev
from .dao import dao
from .demo import demo
from .keeper import keeper
from .market import market
from .meters import meters
from .region import region
from .relay import relay
from .storage import storage

#: Loggers of libraries that log every request at INFO (httpx: "HTTP Request: GET …").
QUIET_LOGGERS = ("httpx", "httpcore", "urllib3", "web3", "pymodbus", "asyncio")

_KEYS = "\n".join(f"  {name:<24} {who}" for name, who in KEY_ENVS.items())


def setup_logging(verbose: bool) -> None:
    """Commands print their results; the libraries' log lines show only warnings (services raise it
    to INFO with :func:`~gridcoop.cli.common.service_logging`), everything with ``-v``."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


@click.group(cls=ErrorsAsMessages, context_settings=CONTEXT,
             epilog=f"\b\nKeys are read from environment variables, never from arguments:\n{_KEYS}\n\n"
                    "Other environment variables: GRIDCOOP_RPC_URL (--rpc-url), GRIDCOOP_REGION (--region), "
                    "GRIDCOOP_KEEPER_URL (--keeper-url), GRIDCOOP_PAYMENT_TOKEN (--token), GRIDCOOP_DEPLOYMENTS "
                    "(--deployments), GRIDCOOP_KEEPER_DB (keeper --db), GRIDCOOP_LOG_FORMAT (--log-format).")
@click.version_option(__version__, "-V", "--version", prog_name="gridcoop", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail (every transaction); show tracebacks.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """gridcoop: a neighbourhood electricity co-op on an EVM chain.

    One command tree: `gridcoop AREA VERB [OPTIONS]`; `gridcoop AREA --help` lists an area's verbs
    and `gridcoop AREA VERB --help` explains every option. A region's contracts are found with
    --region NAME in the deployment records that `gridcoop region deploy` writes. Prices are in the
    payment token's units per kWh (--price 30 = 30 SKC/kWh).
    """
    ctx.ensure_object(dict)["verbose"] = verbose
    setup_logging(verbose)


AREAS = {
    region: "Deploy a region from its config; list and show recorded regions.",
    meters: "Meter device keys, registration, a meter's on-chain state.",
    market: "Orders to the keeper (buy/sell), your orders, cancel, results.",
    storage: "Community batteries: deposit, withdraw, fees, claims, grants.",
    crev: "C-REV: balances by lot, retire, trace a certificate, factor.",
    dao: "The region's DAO: propose, vote, execute, status, budgets, roles.",
    keeper: "Operator: serve the order API and settle, settle by hand, status.",
    bridge: "Meter gateway: run it, its outbox status, a Modbus simulator.",
    relay: "Relay workers: meter readings from an MQTT broker to chain.",
    demo: "A simulated co-op day end to end on a local chain.",
}
for _cmd, _short in AREAS.items():
    _cmd.short_help = _short
    main.add_command(_cmd)

#: Commands of the old ``gridcoop`` program, now elsewhere in the tree (hidden; they say where).
RENAMED = {"deploy": "gridcoop region deploy", "battery": "gridcoop storage"}


def _renamed(old: str, new: str) -> click.Command:
    @click.command(old, hidden=True, add_help_option=False,
                   context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def moved() -> None:
        raise click.UsageError(f"`gridcoop {old}` is now `{new}` (see `{new} --help`)")

    return moved


for _old, _new in RENAMED.items():
    if _old not in main.commands:
        main.add_command(_renamed(_old, _new))

__all__ = ["main"]
