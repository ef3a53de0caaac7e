"""``gridcoop keeper …``: run the keeper (order API, clearing, settlement, readings relay), settle an
interval by hand, show its health. Logic: :mod:`keeper`."""

from __future__ import annotations

import json
import signal
import sys
import threading

import click
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from gridcoop_sdk.exceptions import GridcoopError

from .common import (
    DEFAULT_KEEPER_URL,
    Chain,
    account_from_env,
    chain_options,
    group,
    key_env_option,
    log_format_option,
    service_logging,
)

DEFAULT_DB = "sqlite:///keeper.db"

market_option = click.option("--market", default=None, metavar="ADDRESS",
                             help="EnergyMarket address, for a market deployed outside a region "
                                  "(default: the region's EnergyMarket).")
db_option = click.option("--db", "db_url", envvar="GRIDCOOP_KEEPER_DB", default=DEFAULT_DB, show_default=True,
                         metavar="URL",
                         help="The keeper's database (or $GRIDCOOP_KEEPER_DB): sqlite:///file.db (one keeper per "
                              "file), or postgresql://user[:password]@host[:port]/db (several keepers; one settles "
                              "at a time). Its schema is migrated to the newest revision when the keeper opens it "
                              "(see `gridcoop keeper db`).")
mode_option = click.option("--mode", type=click.Choice(["uniform", "pay_as_bid"]), default="uniform",
                           show_default=True, help="Clearing rule: uniform price (pay-as-clear) or pay-as-bid.")
keeper_url_option = click.option("--keeper-url", "keeper_url", envvar="GRIDCOOP_KEEPER_URL",
                                 default=DEFAULT_KEEPER_URL, show_default=True, metavar="URL",
                                 help="Base URL of the keeper API (or $GRIDCOOP_KEEPER_URL).")


def check_db_url(db_url: str) -> None:
    """Refuse a database URL whose driver is not installed, before anything starts."""
    scheme = db_url.split(":", 1)[0].lower()
    if scheme.startswith("postgres"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise click.ClickException(
                f"--db {db_url.split('@')[-1] if '@' in db_url else db_url}: PostgreSQL support needs the psycopg "
                "driver, which is not installed; install the postgres extra (pip install 'gridcoop[postgres]') "
                f"or use --db {DEFAULT_DB}") from None


def require_keeper_role(market: Contract, account: LocalAccount, where: str, key_env: str) -> None:
    role = market.functions.KEEPER_ROLE().call()
    if not market.functions.hasRole(role, account.address).call():
        raise click.ClickException(
            f"refusing to start: {account.address} (the key in ${key_env}) lacks KEEPER_ROLE on the EnergyMarket "
            f"{market.address} of {where}; use the keeper account the region was deployed with "
            "(gridcoop region deploy --keeper) or have the DAO grant it the role by proposal")


def _keeper(chain: Chain, market_addr: str | None, db_url: str, key_env: str, mode: str, *, clock=None,
            poll: float = 1.0, before_start=None):
    """Check every input (database, key, market, what ``before_start`` checks, the keeper role), then
    build the keeper."""
    from keeper.clock import chain_clock
    from keeper.db import Database
    from keeper.service import Keeper
    from keeper.settler import SettlerBusy

    check_db_url(db_url)
    account = account_from_env(key_env, "the keeper account")
    market = chain.contract("EnergyMarket", market_addr, "--market")
    if before_start is not None:
        before_start()
    try:
        Database(db_url).engine.dispose()  # the URL, the driver and the file's folder, before the role check
    except ImportError as exc:
        raise click.ClickException(f"--db {db_url}: a database driver is missing ({exc}); install it or use "
                                   f"--db {DEFAULT_DB}") from exc
    require_keeper_role(market, account, chain.label(), key_env)
    try:
        return Keeper(chain.w3, account, market, db_url, clock=clock or chain_clock(chain.w3), mode=mode,
                      poll_interval=poll)
    except SettlerBusy as exc:
        raise click.ClickException(f"refusing to start: {exc}") from None


@group("keeper")
def keeper() -> None:
    """The operator's keeper: order API, clearing and settlement of the energy market, and the
    relay of meter readings for gateways without gas.

    Keys: $GRIDCOOP_KEEPER_KEY (the account with the market's KEEPER_ROLE) and $GRIDCOOP_RELAY_KEY
    (a separate gas account for relayed readings).
    """


@keeper.command()
@chain_options
@market_option
@db_option
@key_env_option("GRIDCOOP_KEEPER_KEY", "the keeper account (it needs the market's KEEPER_ROLE)")
@mode_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the HTTP API listens on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8700, show_default=True, help="Port of the HTTP API.")
@click.option("--speed", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Run the keeper's clock this many times faster than real time (demo); default: chain time.")
@click.option("--poll", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              help="Seconds between settlement rounds.")
@click.option("--relay", is_flag=True,
              help="Also relay meter readings (POST /v1/readings) to the region's MeterRegistry.")
@log_format_option
@click.option("--registry", default=None, metavar="ADDRESS",
              help="Relay readings to the MeterRegistry at ADDRESS (implies --relay; default: the region's).")
@key_env_option("GRIDCOOP_RELAY_KEY", "the relay's gas account (not the keeper's: each account keeps its own "
                "nonce sequence); with --relay", flag="--relay-key-env")
def serve(chain: Chain, market, db_url, key_env, mode, host, port, speed, poll, relay, registry, relay_key_env,
          log_format):
    """Serve the order API and settle every interval once its gate has closed.

    For a region deployed with `gridcoop region deploy`: `gridcoop keeper serve --region sakura --relay`.
    The key must hold the market's KEEPER_ROLE, or the keeper refuses to start. Prometheus metrics
    are served at GET /metrics on the API's port.

    Several keepers may serve one market on one PostgreSQL database (--db postgresql://…): all take
    orders, exactly one settles (it holds the market's advisory lock) and another takes over within
    --poll seconds if it dies. On SQLite a second keeper on the same file refuses to start.
    """
    from keeper.api import create_app, serve_in_thread
    from keeper.clock import AcceleratedClock

    service_logging(log_format)
    relay = relay or registry is not None
    relay_account = account_from_env(relay_key_env, "the relay's gas account") if relay else None
    clock = AcceleratedClock(speed) if speed else None
    routers = []

    def relay_router() -> None:
        from keeper.relay import readings_router

        reg = chain.contract("MeterRegistry", registry, "--registry")
        routers.append(readings_router(chain.w3, relay_account, reg))

    k = _keeper(chain, market, db_url, key_env, mode, clock=clock, poll=poll,
                before_start=relay_router if relay else None)
    try:
        handle = serve_in_thread(create_app(k, routers=routers), host, port, log_level="info")
    except RuntimeError as exc:
        raise click.ClickException(f"{exc} (is --port {port} in use?)") from exc
    click.echo(f"keeper API on {handle.url}; settling market {k.market.address} as {k.account.address}"
               + (" and relaying readings" if relay else "") + " (Ctrl-C stops)")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        k.run(stop)
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
        click.echo("keeper stopped")


@keeper.command()
@chain_options
@market_option
@db_option
@key_env_option("GRIDCOOP_KEEPER_KEY", "the keeper account (it needs the market's KEEPER_ROLE)")
@mode_option
@click.option("--interval", "interval_id", type=click.IntRange(0, 2**63 - 1), required=True, metavar="ID",
              help="Interval id (Unix start / 900).")
def settle(chain: Chain, market, db_url, key_env, mode, interval_id):
    """Settle one interval now (idempotent: a settled interval prints its stored result)."""
    res = _keeper(chain, market, db_url, key_env, mode).settle_interval(interval_id)
    click.echo(json.dumps(res.__dict__, indent=2, default=str))
    if res.state not in ("settled", "empty"):
        sys.exit(1)


@keeper.command()
@keeper_url_option
@click.option("--interval", "interval_id", type=click.IntRange(min=0), default=None, metavar="ID",
              help="Show this interval's result too.")
def status(keeper_url, interval_id):
    """Show the keeper's health: chain, market, keeper account, open orders (and one interval)."""
    from keeper.client import KeeperClient

    with KeeperClient(keeper_url) as c:
        click.echo(json.dumps(c.health(), indent=2))
        if interval_id is not None:
            click.echo(json.dumps(c.interval(interval_id), indent=2))


def resolve_relay_registry(value: str) -> list[str]:
    """Old ``--relay-registry ADDRESS|RECORD`` → new options (for the ``keeper`` alias)."""
    if Web3.is_address(value):
        return ["--registry", value]
    region, _, _ = value.rpartition(".")
    if not region:
        raise GridcoopError(f"--relay-registry {value}: give an address or <region>.MeterRegistry")
    return ["--region", region, "--relay"]


@keeper.group("db")
def db() -> None:
    """The keeper's database schema (Alembic migrations in keeper/migrations).

    `keeper serve` and `keeper settle` migrate the database to the newest revision when they open
    it; these commands do it (or show it) without starting a keeper, e.g. before a rolling upgrade.
    """


@db.command()
@db_option
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def upgrade(db_url, revision):
    """Migrate the database to REVISION (default: the newest); creates the tables in an empty one."""
    from keeper.db import Database

    check_db_url(db_url)
    d = Database(db_url, migrate=False)
    try:
        before = d.current_revision()
        d.upgrade(revision)
        click.echo(f"{_safe_url(db_url)}: schema {before or 'empty'} -> {d.current_revision()}")
    finally:
        d.dispose()


@db.command()
@db_option
def current(db_url):
    """Show the database's schema revision and the newest one this keeper knows."""
    from keeper.db import Database

    check_db_url(db_url)
    d = Database(db_url, migrate=False)
    try:
        cur, head = d.current_revision(), Database.head_revision()
        click.echo(json.dumps({"database": _safe_url(db_url), "revision": cur, "head": head,
                               "up_to_date": cur == head}, indent=2))
    finally:
        d.dispose()


def _safe_url(url: str) -> str:
    """The URL without its password."""
    head, sep, rest = url.partition("://")
    if "@" in rest:
        cred, _, host = rest.rpartition("@")
        rest = cred.split(":", 1)[0] + "@" + host
    return head + sep + rest
