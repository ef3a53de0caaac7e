"""What every area of the ``gridcoop`` command shares: the chain options (``--rpc-url``,
``--region``, ``--chain-id``, ``--deployments``), keys from environment variables, amounts in a
token's units, and errors as one line.

A region is chosen one way: ``--region NAME`` (or ``$GRIDCOOP_REGION``), resolved from the
deployment records ``deployments/<chainId>.json`` that ``gridcoop region deploy`` writes
(``<region>.<Contract>``). A few commands also take a contract address (``--market ADDRESS``,
``--storage ADDRESS`` …) for a contract deployed outside a region.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from gridcoop_sdk import deployments
from gridcoop_sdk.chain import connect
from gridcoop_sdk.exceptions import GridcoopError
from gridcoop_sdk.keys import PrivateKeyError, account_from_hex

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
DEFAULT_RPC_URL = "http://127.0.0.1:8545"
DEFAULT_KEEPER_URL = "http://127.0.0.1:8700"

#: The environment variables that hold keys, by who holds them (``gridcoop --help`` lists them).
KEY_ENVS = {
    "GRIDCOOP_KEY": "a participant's key: orders, battery, C-REV",
    "GRIDCOOP_DEPLOYER_KEY": "the deployer of a region (holds no role after the deployment)",
    "GRIDCOOP_MEMBER_KEY": "a DAO member (propose, vote, execute)",
    "GRIDCOOP_KEEPER_KEY": "the keeper account (needs the market's KEEPER_ROLE)",
    "GRIDCOOP_RELAY_KEY": "the keeper's gas account for relayed meter readings",
    "GRIDCOOP_REGISTRAR_KEY": "an account holding the MeterRegistry's REGISTRAR_ROLE",
    "METER_KEY_PASSPHRASE": "the passphrase of meter device keystores",
}

# ----------------------------------------------------------------------------------- keys


def key_from_text(text: str, env: str) -> LocalAccount:
    """A private key in hex (``0x`` optional) → account; a clear :class:`click.UsageError` otherwise."""
    try:
        return account_from_hex(text, env)
    except PrivateKeyError as exc:
        raise click.UsageError(str(exc)) from exc


def account_from_env(env: str, who: str = "the sender") -> LocalAccount:
    """The account whose key is in environment variable ``env`` (never on the command line)."""
    text = os.environ.get(env)
    if not text:
        raise click.UsageError(f"no private key: set the environment variable {env} to {who}'s hex private key "
                               "(keys are never passed as arguments; --key-env names another variable)")
    return key_from_text(text, env)


def key_env_option(default: str, who: str, flag: str = "--key-env") -> Callable:
    return click.option(flag, default=default, show_default=True, metavar="NAME",
                        help=f"Environment variable with the hex private key of {who} (never pass keys as "
                             "arguments).")


# ----------------------------------------------------------------------------------- addresses and amounts


def checked_address(value: str | None, hint: str) -> str | None:
    if value is None:
        return None
    if not Web3.is_address(value):
        raise click.BadParameter(f"{value!r} is not an address (0x and 40 hex digits)", param_hint=hint)
    return Web3.to_checksum_address(value)


def address_callback(ctx, param, value):  # noqa: ARG001 - click's callback signature
    return checked_address(value, param.opts[0] if param.opts else param.name)


def parse_amount(text: str, decimals: int, symbol: str, what: str = "amount") -> int:
    """``"30"`` / ``"0.25"`` in a token's units → base units (refuses more decimals than the token has)."""
    try:
        d = Decimal(str(text).strip().replace("_", ""))
    except InvalidOperation as exc:
        raise click.BadParameter(f"{text!r} is not a number of {symbol} (e.g. 30 or 22.5)") from exc
    if not d.is_finite() or d <= 0:
        raise click.BadParameter(f"the {what} must be a positive number of {symbol}, got {text!r}")
    units = d * (Decimal(10) ** decimals)
    if units != units.to_integral_value():
        raise click.BadParameter(f"{text} {symbol} has more decimals than {symbol} ({decimals})")
    return int(units)


def format_amount(units: int | str | None, decimals: int, symbol: str) -> str:
    """Base units → ``"22.5 SKC"`` (exact, no trailing zeros)."""
    if units is None:
        return "-"
    d = Decimal(int(units)) / (Decimal(10) ** decimals)
    text = format(d.normalize(), "f") if d else "0"
    return f"{text} {symbol}"


@dataclass(frozen=True)
class Token:
    address: str
    symbol: str
    decimals: int

    def fmt(self, units: int | str | None) -> str:
        return format_amount(units, self.decimals, self.symbol)

    def parse(self, text: str, what: str = "amount") -> int:
        return parse_amount(text, self.decimals, self.symbol, what)


def token_info(w3: Web3, address: str) -> Token:
    """Symbol and decimals of an ERC-20, read from chain."""
    from gridcoop_sdk.contracts import at

    c = at(w3, "LocalCurrency", address)  # any ERC-20 ABI with symbol()/decimals()
    if not w3.eth.get_code(c.address):
        raise GridcoopError(f"no token contract at {c.address} on chain {w3.eth.chain_id}")
    try:
        return Token(c.address, str(c.functions.symbol().call()), int(c.functions.decimals().call()))
    except Exception as exc:
        raise GridcoopError(f"{c.address} is not an ERC-20 token with symbol() and decimals() ({exc})") from exc


# ----------------------------------------------------------------------------------- the chain and a region


@dataclass
class Chain:
    """Where a command works: a node, a region in its deployment records, or explicit addresses."""

    rpc_url: str
    region: str | None = None
    chain_id: int | None = None
    deployments_dir: Path | None = None
    _w3: Web3 | None = field(default=None, repr=False)

    @property
    def w3(self) -> Web3:
        if self._w3 is None:
            self._w3 = connect(self.rpc_url, expected_chain_id=self.chain_id)
        return self._w3

    def records(self) -> dict[str, dict[str, Any]]:
        return deployments.load(self.w3.eth.chain_id, self.deployments_dir)

    def record_file(self) -> Path:
        return deployments.path_for(self.w3.eth.chain_id, self.deployments_dir)

    def regions(self) -> dict[str, dict[str, str]]:
        """``{region: {Contract: address}}`` of every prefixed record on this chain (the ``platform.``
        records, the chain's single TSL, belong to no region; each region records it as its own too)."""
        out: dict[str, dict[str, str]] = {}
        for name, info in self.records().items():
            prefix, _, contract = name.rpartition(".")
            if prefix and prefix != "platform":
                out.setdefault(prefix, {})[contract] = info["address"]
        return out

    def require_region(self) -> str:
        if self.region:
            return self.region
        known = ", ".join(sorted(self.regions())) or "none yet"
        raise click.UsageError(f"choose a region with --region NAME (or $GRIDCOOP_REGION); regions recorded on "
                               f"chain {self.w3.eth.chain_id}: {known}")

    def address(self, contract: str, override: str | None = None, option: str | None = None) -> str:
        """The address of ``contract``: ``override`` if given, else ``<region>.<contract>``."""
        if override:
            return checked_address(override, option or contract) or ""
        region = self.require_region()
        regions = self.regions()
        if region not in regions:
            known = ", ".join(sorted(regions)) or "none"
            raise GridcoopError(f"no region {region!r} recorded on chain {self.w3.eth.chain_id} in "
                                f"{self.record_file()} (recorded: {known}); deploy it with `gridcoop region deploy` "
                                "or check --rpc-url and --deployments")
        if contract not in regions[region]:
            hint = f" or give {option} ADDRESS" if option else ""
            raise GridcoopError(f"region {region} has no {contract} recorded in {self.record_file()}{hint}")
        return Web3.to_checksum_address(regions[region][contract])

    def contract(self, contract: str, override: str | None = None, option: str | None = None,
                 abi_name: str | None = None) -> Contract:
        from gridcoop_sdk.contracts import at

        addr = self.address(contract, override, option)
        if not self.w3.eth.get_code(addr):
            where = f"{option} {addr}" if override else f"{self.region}.{contract} ({addr})"
            raise GridcoopError(f"no contract at {where} on chain {self.w3.eth.chain_id}: wrong --rpc-url, or the "
                                "node was restarted since the deployment (deploy the region again)")
        return at(self.w3, abi_name or contract, addr)

    def label(self) -> str:
        return f"region {self.region}" if self.region else "the given contract"


def chain_options(fn: Callable | None = None, *, rpc_required: bool = False):
    """Add ``--rpc-url``, ``--region``, ``--chain-id`` and ``--deployments``; the command gets ``chain``."""

    def deco(f: Callable) -> Callable:
        @click.option("--rpc-url", envvar="GRIDCOOP_RPC_URL", required=rpc_required,
                      default=None if rpc_required else DEFAULT_RPC_URL, show_default=not rpc_required,
                      metavar="URL", help="JSON-RPC endpoint of the chain (or $GRIDCOOP_RPC_URL).")
        @click.option("--region", envvar="GRIDCOOP_REGION", default=None, metavar="NAME",
                      help="Region whose recorded contracts to use (<region>.<Contract> in "
                           "deployments/<chainId>.json, as `gridcoop region deploy` wrote them; or $GRIDCOOP_REGION).")
        @click.option("--chain-id", type=click.IntRange(min=1), default=None, metavar="ID",
                      help="Refuse to run unless the node serves this chain id.")
        @click.option("--deployments", "deployments_dir", type=click.Path(file_okay=False, path_type=Path),
                      default=None, metavar="DIR",
                      help="Folder of the deployment records <chainId>.json (default: the project's deployments/ "
                           "or $GRIDCOOP_DEPLOYMENTS).")
        @functools.wraps(f)
        def wrapper(*args, rpc_url, region, chain_id, deployments_dir, **kw):
            return f(*args, chain=Chain(rpc_url, region, chain_id, deployments_dir), **kw)

        return wrapper

    return deco(fn) if fn is not None else deco


# ----------------------------------------------------------------------------------- errors and logs


def service_logging(log_format: str = "text") -> None:
    """Long-running services (keeper serve, bridge run/simulate) log what they do at INFO;
    ``log_format="json"``: one JSON object per line (gridcoop_sdk.logs.JsonFormatter)."""
    import logging

    root = logging.getLogger()
    if root.level > logging.INFO:
        root.setLevel(logging.INFO)
    if log_format == "json":
        from gridcoop_sdk.logs import use_json_logs

        use_json_logs()


log_format_option = click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
    envvar="GRIDCOOP_LOG_FORMAT",
    help="Log lines as text, or as one JSON object per line (time, level, logger, message and fields such as "
         "interval_id) for a log collector (or $GRIDCOOP_LOG_FORMAT).")


def one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text


class ErrorsAsMessages(click.Group):
    """A group that turns every library error into one ``Error: …`` line and exit code 1, and lists
    its commands in the order they were added.

    ``gridcoop -v …`` shows the traceback of an unexpected error instead.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort,
                SystemExit, KeyboardInterrupt):
            raise
        except GridcoopError as exc:
            raise click.ClickException(one_line(exc)) from exc
        except Exception as exc:
            from sqlalchemy.exc import SQLAlchemyError

            if isinstance(exc, SQLAlchemyError):
                raise click.ClickException(f"database error: {str(exc).splitlines()[0]} (check --db)") from exc
            if (ctx.obj or {}).get("verbose"):
                raise
            raise click.ClickException(f"unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
                                       "(run `gridcoop -v …` for the traceback and report it)") from exc


def group(name: str | None = None, **kw: Any) -> Callable:
    """A click group with the shared context settings."""
    return click.group(name, context_settings=CONTEXT, **kw)
