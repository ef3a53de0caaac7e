"""``keeper`` command line: run the keeper, settle by hand, and place/list/cancel orders.

Participants: ``keeper order buy 1.5kWh --price 30 --interval next --token 0x…`` signs an order
with the key in $GRIDCOOP_KEY and submits it to the keeper at --url. Operators: ``keeper serve``.
Every command has ``--help``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time

import click
from eth_account import Account
from sqlalchemy.exc import SQLAlchemyError
from web3 import Web3

from gridcoop_sdk.exceptions import GridcoopError
from gridcoop_sdk.orders import Order, sign_order
from gridcoop_sdk.units import INTERVAL_SECONDS, parse_energy

from .client import KeeperClient, KeeperClientError

DEFAULT_URL = "http://127.0.0.1:8700"


def _key(key_env: str) -> str:
    key = os.environ.get(key_env)
    if not key:
        raise click.UsageError(f"set {key_env} to the hex private key that signs (never pass keys as arguments)")
    try:
        Account.from_key(key)
    except Exception as exc:
        raise click.ClickException(f"{key_env} does not hold a valid hex private key") from exc
    return key


def _connect_market(rpc_url: str, market: str | None, chain_id: int | None):
    from gridcoop_sdk.chain import connect
    from gridcoop_sdk.contracts import at

    if market is not None and not Web3.is_address(market):
        raise click.BadParameter(f"not an address: {market!r}", param_hint="--market")
    w3 = connect(rpc_url, expected_chain_id=chain_id)
    m = at(w3, "EnergyMarket", market)
    if not w3.eth.get_code(m.address):
        raise click.ClickException(f"no contract at {m.address} on chain {w3.eth.chain_id} (--market)")
    return w3, m


url_option = click.option("--url", default=lambda: os.environ.get("GRIDCOOP_KEEPER_URL", DEFAULT_URL),
                          show_default=f"$GRIDCOOP_KEEPER_URL or {DEFAULT_URL}", help="Keeper API base URL.")
rpc_option = click.option("--rpc-url", required=True, envvar="GRIDCOOP_RPC_URL", metavar="URL",
                          help="JSON-RPC endpoint of the chain (or $GRIDCOOP_RPC_URL).")
market_option = click.option("--market", default=None, metavar="ADDRESS",
                             help="EnergyMarket address (default: the 'EnergyMarket' record in deployments/<chainId>.json).")
chain_option = click.option("--chain-id", type=int, default=None, help="Refuse to run unless the node serves this chain id.")
db_option = click.option("--db", "db_url", default="sqlite:///keeper.db", show_default=True,
                         help="SQLAlchemy database URL (sqlite:///file.db or postgresql://user@host/db).")
keeper_key_option = click.option("--key-env", default="GRIDCOOP_KEEPER_KEY", show_default=True,
                                 help="Environment variable holding the keeper account's private key.")
mode_option = click.option("--mode", type=click.Choice(["uniform", "pay_as_bid"]), default="uniform",
                           show_default=True, help="Clearing rule: uniform price (pay-as-clear) or pay-as-bid.")


@click.group(name="keeper", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def main(verbose: bool) -> None:
    """gridcoop keeper: order intake, clearing and settlement of the energy market."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s", datefmt="%H:%M:%S")


def _keeper(rpc_url, market, chain_id, db_url, key_env, mode, clock=time.time, poll=1.0):
    from .service import Keeper

    w3, m = _connect_market(rpc_url, market, chain_id)
    return Keeper(w3, Account.from_key(_key(key_env)), m, db_url, clock=clock, mode=mode, poll_interval=poll)


@main.command()
@rpc_option
@market_option
@chain_option
@db_option
@keeper_key_option
@mode_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the HTTP API listens on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8700, show_default=True, help="Port of the HTTP API.")
@click.option("--speed", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Run the keeper's clock this many times faster than real time (demo); default: chain time.")
@click.option("--poll", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              help="Seconds between settlement rounds.")
@click.option("--relay-registry", default=None, metavar="ADDRESS|RECORD",
              help="Also relay meter readings (POST /v1/readings) to this MeterRegistry (address or "
                   "deployment record such as sakura.MeterRegistry).")
@click.option("--relay-key-env", default="GRIDCOOP_RELAY_KEY", show_default=True,
              help="Environment variable with the hex key of the relay's gas account (not the keeper's: "
                   "each account keeps its own nonce sequence).")
def serve(rpc_url, market, chain_id, db_url, key_env, mode, host, port, speed, poll, relay_registry, relay_key_env):
    """Serve the order API and settle every interval once its gate has closed."""
    from .api import create_app, serve_in_thread
    from .clock import AcceleratedClock, chain_clock

    try:
        w3, m = _connect_market(rpc_url, market, chain_id)
        from .service import Keeper

        clock = AcceleratedClock(speed) if speed else chain_clock(w3)
        k = Keeper(w3, Account.from_key(_key(key_env)), m, db_url, clock=clock, mode=mode, poll_interval=poll)
        routers = []
        if relay_registry:
            from gridcoop_sdk.contracts import at
            from gridcoop_sdk.deployments import address_of

            from .relay import readings_router

            try:
                addr = relay_registry if relay_registry.startswith("0x") else address_of(w3.eth.chain_id,
                                                                                         relay_registry)
            except GridcoopError as exc:
                raise click.BadParameter(str(exc), param_hint="--relay-registry") from exc
            if not Web3.is_address(addr) or not w3.eth.get_code(Web3.to_checksum_address(addr)):
                raise click.BadParameter(f"no MeterRegistry contract at {addr!r}", param_hint="--relay-registry")
            routers.append(readings_router(w3, Account.from_key(_key(relay_key_env)), at(w3, "MeterRegistry", addr)))
    except GridcoopError as exc:
        raise click.ClickException(str(exc)) from exc
    except SQLAlchemyError as exc:
        raise click.ClickException(f"--db {db_url}: {str(exc).splitlines()[0]}") from exc
    try:
        handle = serve_in_thread(create_app(k, routers=routers), host, port, log_level="info")
    except RuntimeError as exc:
        raise click.ClickException(f"{exc} (is --port {port} in use?)") from exc
    click.echo(f"keeper API on {handle.url}; settling market {m.address} (Ctrl-C stops)")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        k.run(stop)
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
        click.echo("keeper stopped")


@main.command()
@rpc_option
@market_option
@chain_option
@db_option
@keeper_key_option
@mode_option
@click.option("--interval", "interval_id", type=click.IntRange(0, 2**63 - 1), required=True,
              help="Interval id (unix start / 900).")
def settle(rpc_url, market, chain_id, db_url, key_env, mode, interval_id):
    """Settle one interval now (idempotent: a settled interval prints its stored result)."""
    try:
        res = _keeper(rpc_url, market, chain_id, db_url, key_env, mode).settle_interval(interval_id)
    except GridcoopError as exc:
        raise click.ClickException(str(exc)) from exc
    except SQLAlchemyError as exc:
        raise click.ClickException(f"--db {db_url}: {str(exc).splitlines()[0]}") from exc
    click.echo(json.dumps(res.__dict__, indent=2, default=str))
    if res.state not in ("settled", "empty"):
        sys.exit(1)


@main.command()
@url_option
@click.option("--interval", "interval_id", type=int, default=None, help="Show this interval's result too.")
def status(url, interval_id):
    """Show the keeper's health (and one interval's result)."""
    try:
        with KeeperClient(url) as c:
            click.echo(json.dumps(c.health(), indent=2))
            if interval_id is not None:
                click.echo(json.dumps(c.interval(interval_id), indent=2))
    except KeeperClientError as exc:
        raise click.ClickException(str(exc)) from exc


def _resolve_interval(text: str, now: float) -> int:
    current = int(now) // INTERVAL_SECONDS
    if text == "next":
        return current + 1
    if text.startswith("+") and text[1:].isdigit():
        return current + int(text[1:])
    if text.isdigit():
        return int(text)
    raise click.BadParameter(f"{text!r}: use 'next', '+N' (N intervals ahead) or an interval id")


@main.command()
@click.argument("side", type=click.Choice(["buy", "sell"]))
@click.argument("amount")
@click.option("--price", type=click.IntRange(min=1), required=True,
              help="Limit price in payment-token base units per kWh.")
@click.option("--interval", "interval_text", default="next", show_default=True,
              help="Delivery interval: 'next', '+N' or an interval id.")
@click.option("--token", envvar="GRIDCOOP_PAYMENT_TOKEN", required=True,
              help="Payment token address (or $GRIDCOOP_PAYMENT_TOKEN).")
@click.option("--fill-or-kill", is_flag=True, help="All of the amount or nothing.")
@click.option("--colour", default="", help="Sell: the source colour offered; buy: the colour required (e.g. solar).")
@click.option("--counterparty", default="0x0000000000000000000000000000000000000000",
              help="Trade only with this address.")
@click.option("--expiry-minutes", type=int, default=120, show_default=True, help="Order validity from now.")
@click.option("--key-env", default="GRIDCOOP_KEY", show_default=True, help="Environment variable with your private key.")
@url_option
def order(side, amount, price, interval_text, token, fill_or_kill, colour, counterparty, expiry_minutes, key_env, url):
    """Sign and submit an order, e.g. ``keeper order buy 1.5kWh --price 30 --interval next``.

    AMOUNT is energy like 1.5kWh, 1500Wh or 1500 (Wh).
    """
    try:
        wh = parse_energy(amount)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="AMOUNT") from exc
    acct = Account.from_key(_key(key_env))
    try:
        with KeeperClient(url) as c:
            h = c.health()
            iid = _resolve_interval(interval_text, h["time"])
            o = Order(maker=acct.address, side=side, interval_id=iid, amount_wh=wh, limit_price=price,
                      payment_token=token, expiry=int(h["time"]) + expiry_minutes * 60,
                      partially_fillable=not fill_or_kill, counterparty=counterparty, colour=colour)
            signed = sign_order(o, acct.key, h["chain_id"], h["market"])
            res = c.submit_order(signed)
    except (KeeperClientError, GridcoopError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"order {res['hash']} {side} {wh} Wh @ {price}/kWh for interval {iid}: {res['status']}")


@main.command("orders")
@url_option
@click.option("--interval", "interval_id", type=int, default=None, help="Only this interval.")
@click.option("--maker", default=None, help="Only this maker (default: the address of --key-env if set).")
@click.option("--key-env", default="GRIDCOOP_KEY", show_default=True, help="Environment variable with your private key.")
def list_orders(url, interval_id, maker, key_env):
    """List orders (yours by default)."""
    if maker is None and os.environ.get(key_env):
        maker = Account.from_key(os.environ[key_env]).address
    try:
        with KeeperClient(url) as c:
            rows = c.orders(interval=interval_id, maker=maker)
    except KeeperClientError as exc:
        raise click.ClickException(str(exc)) from exc
    for o in rows:
        click.echo(f"{o['hash'][:18]} {o['interval_id']} {o['side']:<4} {o['amount_wh']:>8} Wh @ {o['limit_price']:>6} "
                   f"{o['status']:<16} filled {o['filled_wh']}")


@main.command()
@click.argument("order_hash")
@url_option
@click.option("--key-env", default="GRIDCOOP_KEY", show_default=True, help="Environment variable with your private key.")
def cancel(order_hash, url, key_env):
    """Cancel one of your orders at the keeper (use the SDK's cancel_order for on-chain cancel)."""
    try:
        with KeeperClient(url) as c:
            res = c.cancel(order_hash, _key(key_env))
    except KeeperClientError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"order {res['hash']}: {res['status']}")


@main.command()
@click.argument("interval_id", type=int)
@url_option
def results(interval_id, url):
    """Show a settled interval: price, volume, trades and transaction."""
    try:
        with KeeperClient(url) as c:
            r = c.interval(interval_id)
    except KeeperClientError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"interval {interval_id}: {r['state']} price {r['price']} volume {r['volume_wh']} Wh "
               f"money {r['money']} (rounding dust {r.get('rounding_dust', 0)}) tx {r['tx_hash']} "
               f"gas {r['gas_used']}")
    for t in r["trades"]:
        # money is rounded per order on chain: each trade's share of it, seller's and buyer's side
        click.echo(f"  {t['seller']} -> {t['buyer']} {t['wh']} Wh @ {t['price']}: seller receives "
                   f"{t.get('seller_received', t['money'])}, buyer pays {t.get('buyer_paid', t['money'])}")


if __name__ == "__main__":
    main()
