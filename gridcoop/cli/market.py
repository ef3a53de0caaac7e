"""``gridcoop market …``: a participant signs orders and sends them to the keeper, lists them,
cancels them, and reads an interval's result; shows the grid participant and the network fee, and
pays energy debt. Prices are in the payment token's units per kWh
(``--price 30`` = 30 SKC/kWh); the token's decimals are read from chain."""

from __future__ import annotations

import click
from web3 import Web3

from gridcoop_sdk.exceptions import GridcoopError, NodeUnreachableError
from gridcoop_sdk.orders import Order, sign_order
from gridcoop_sdk.units import INTERVAL_SECONDS, parse_energy

from .common import Chain, Token, account_from_env, chain_options, group, key_env_option, token_info
from .keeper import keeper_url_option

KEY_ENV = "GRIDCOOP_KEY"
ZERO = "0x0000000000000000000000000000000000000000"


def payment_token(chain: Chain, token: str | None) -> Token:
    """``--token``: an address, the symbol of the region's currency or TSL, or (default) the
    region's local currency."""
    if token and Web3.is_address(token):
        return token_info(chain.w3, token)
    if not chain.region:
        if token:
            raise click.BadParameter(f"{token!r}: give an address, or --region NAME to use a symbol",
                                     param_hint="--token")
        raise click.UsageError("choose what you pay with: --region NAME (the region's local currency) "
                               "or --token ADDRESS (or $GRIDCOOP_PAYMENT_TOKEN)")
    candidates = [token_info(chain.w3, chain.address(c)) for c in ("LocalCurrency", "TeslaToken")
                  if c in chain.regions().get(chain.region, {})]
    if not candidates:
        chain.address("LocalCurrency")  # raises: region unknown or without a currency
    if not token:
        return candidates[0]
    for t in candidates:
        if t.symbol.lower() == token.lower():
            return t
    raise click.BadParameter(f"{token!r} is not a payment token of region {chain.region} "
                             f"(have: {', '.join(t.symbol for t in candidates)}) nor an address",
                             param_hint="--token")


class _Tokens:
    """Token units for display; falls back to base units when the node cannot be reached."""

    def __init__(self, chain: Chain):
        self.chain, self.cache, self.offline = chain, {}, False

    def fmt(self, token: str | None, units) -> str:
        if units is None:
            return "-"
        if token and not self.offline:
            if token not in self.cache:
                try:
                    self.cache[token] = token_info(self.chain.w3, token)
                except (NodeUnreachableError, GridcoopError):
                    self.offline = True
            if token in self.cache:
                return self.cache[token].fmt(units)
        return f"{units} base units"


def _price(ctx, param, value):  # noqa: ARG001 - click callback
    """A positive number (its decimals are checked against the token's once it is known)."""
    from decimal import Decimal, InvalidOperation

    try:
        d = Decimal(str(value).strip())
    except InvalidOperation:
        d = Decimal(0)
    if not d.is_finite() or d <= 0:
        raise click.BadParameter(f"{value!r} is not a positive price (in the payment token's units per kWh, e.g. 30 "
                                 "or 22.5)")
    return str(value).strip()


def _resolve_interval(text: str, now: float) -> int:
    current = int(now) // INTERVAL_SECONDS
    if text == "next":
        return current + 1
    if text.startswith("+") and text[1:].isdigit():
        return current + int(text[1:])
    if text.isdigit():
        return int(text)
    raise click.BadParameter(f"{text!r}: use 'next', '+N' (N intervals ahead) or an interval id",
                             param_hint="--interval")


@group("market")
def market() -> None:
    """The energy market as a participant: signed orders sent to the keeper, cleared every 15 minutes.

    Orders are signed with the key in $GRIDCOOP_KEY (see --key-env) and sent to the keeper at
    --keeper-url ($GRIDCOOP_KEEPER_URL). Prices are in the payment token's units per kWh.
    """


@market.command()
@click.argument("side", type=click.Choice(["buy", "sell"]))
@click.argument("amount")
@click.option("--price", required=True, metavar="PRICE", callback=_price,
              help="Limit price per kWh in the payment token's units (30 = 30 SKC/kWh; decimals read from chain).")
@click.option("--interval", "interval_text", default="next", show_default=True,
              help="Delivery interval: 'next', '+N' or an interval id (Unix start / 900).")
@click.option("--token", envvar="GRIDCOOP_PAYMENT_TOKEN", default=None, metavar="ADDRESS|SYMBOL",
              help="Payment token: an address, or the symbol of the region's currency or TSL "
                   "(default: the region's local currency; or $GRIDCOOP_PAYMENT_TOKEN).")
@click.option("--fill-or-kill", is_flag=True, help="All of the amount or nothing.")
@click.option("--colour", default="", help="Sell: the source colour offered; buy: the colour required (e.g. solar).")
@click.option("--counterparty", default=ZERO, metavar="ADDRESS",
              help="Trade only with this address (signed: the chain refuses anyone else).")
@click.option("--prefer", multiple=True, metavar="ADDRESS",
              help="A preferred partner, best first (repeat, at most 16): matched first at the uniform price, "
                   "the rest of the order through the open book (not signed: a preference, not a constraint).")
@click.option("--expiry-minutes", type=click.IntRange(min=1), default=120, show_default=True,
              help="Order validity from now, in minutes.")
@key_env_option(KEY_ENV, "the participant")
@keeper_url_option
@chain_options
def order(side, amount, price, interval_text, token, fill_or_kill, colour, counterparty, prefer, expiry_minutes,
          key_env, keeper_url, chain: Chain):
    """Sign and submit an order: SIDE is buy or sell, AMOUNT energy like 1.5kWh, 1500Wh or 1500 (Wh).

    Example: `gridcoop market order buy 1.5kWh --price 30 --region sakura` (30 SKC/kWh, next interval).
    """
    from keeper.client import KeeperClient

    try:
        wh = parse_energy(amount)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="AMOUNT") from exc
    if wh <= 0:
        raise click.BadParameter("energy must be positive", param_hint="AMOUNT")
    if not Web3.is_address(counterparty):
        raise click.BadParameter(f"{counterparty!r} is not an address", param_hint="--counterparty")
    for p in prefer:
        if not Web3.is_address(p):
            raise click.BadParameter(f"{p!r} is not an address", param_hint="--prefer")
    acct = account_from_env(key_env, "the participant")
    with KeeperClient(keeper_url) as c:
        h = c.health()
        iid = _resolve_interval(interval_text, h["time"])
        tok = payment_token(chain, token)
        if chain.w3.eth.chain_id != h["chain_id"]:
            raise click.ClickException(f"the keeper at {keeper_url} serves chain {h['chain_id']}, but --rpc-url "
                                       f"{chain.rpc_url} is chain {chain.w3.eth.chain_id}")
        try:
            limit = tok.parse(price, "price")
        except click.BadParameter as exc:
            exc.param_hint = "--price"
            raise
        o = Order(maker=acct.address, side=side, interval_id=iid, amount_wh=wh, limit_price=limit,
                  payment_token=tok.address, expiry=int(h["time"]) + expiry_minutes * 60,
                  partially_fillable=not fill_or_kill, counterparty=Web3.to_checksum_address(counterparty),
                  colour=colour)
        signed = sign_order(o, acct.key, h["chain_id"], h["market"])
        res = c.submit_order(signed, prefer=[Web3.to_checksum_address(p) for p in prefer])
    click.echo(f"order {res['hash']} {side} {wh} Wh @ {tok.fmt(limit)}/kWh for interval {iid}: {res['status']}")


@market.command("orders")
@click.option("--interval", "interval_id", type=click.IntRange(min=0), default=None, metavar="ID",
              help="Only this interval.")
@click.option("--maker", default=None, metavar="ADDRESS",
              help="Only this maker (default: the account of --key-env if that variable is set, else everyone).")
@key_env_option(KEY_ENV, "the participant (whose orders are listed)")
@keeper_url_option
@chain_options
def list_orders(interval_id, maker, key_env, keeper_url, chain: Chain):
    """List orders at the keeper (yours by default): interval, side, energy, limit price, status, fill."""
    import os

    from keeper.client import KeeperClient

    if maker is None and os.environ.get(key_env):
        maker = account_from_env(key_env).address
    elif maker is not None and not Web3.is_address(maker):
        raise click.BadParameter(f"{maker!r} is not an address", param_hint="--maker")
    with KeeperClient(keeper_url) as c:
        rows = c.orders(interval=interval_id, maker=maker)
    if not rows:
        which = " ".join(x for x in (f"of {maker}" if maker else "", f"for interval {interval_id}"
                                     if interval_id is not None else "") if x)
        click.echo(f"no orders {which}".rstrip() + f" at the keeper {keeper_url}")
        return
    tokens = _Tokens(chain)
    for o in rows:
        price = tokens.fmt(o.get("payment_token"), o["limit_price"])
        click.echo(f"{o['hash'][:18]} {o['interval_id']} {o['side']:<4} {o['amount_wh']:>8} Wh @ {price:>12}/kWh "
                   f"{o['status']:<16} filled {o['filled_wh']}")


@market.command()
@click.argument("order_hash")
@key_env_option(KEY_ENV, "the order's maker")
@keeper_url_option
def cancel(order_hash, key_env, keeper_url):
    """Cancel one of your orders at the keeper (the SDK's cancel_order cancels it on chain)."""
    from keeper.client import KeeperClient

    acct = account_from_env(key_env, "the order's maker")
    with KeeperClient(keeper_url) as c:
        res = c.cancel(order_hash, acct.key)
    click.echo(f"order {res['hash']}: {res['status']}")


@market.command()
@click.argument("interval_id", type=click.IntRange(min=0))
@keeper_url_option
@chain_options
def results(interval_id, keeper_url, chain: Chain):
    """Show an interval's result: clearing price, volume, trades and the settlement transaction."""
    from keeper.client import KeeperClient

    with KeeperClient(keeper_url) as c:
        r = c.interval(interval_id)
    tokens = _Tokens(chain)
    token = (r["trades"][0].get("payment_token") if r["trades"] else None)
    click.echo(f"interval {interval_id}: {r['state']} price {tokens.fmt(token, r['price'])}/kWh volume "
               f"{r['volume_wh']} Wh money {tokens.fmt(token, r['money'])} (rounding dust "
               f"{tokens.fmt(token, r.get('rounding_dust', 0))}) tx {r['tx_hash']} gas {r['gas_used']}")
    for t in r["trades"]:
        # money is rounded per order on chain: each trade's share of it, seller's and buyer's side
        tk = t.get("payment_token")
        click.echo(f"  {t['seller']} -> {t['buyer']} {t['wh']} Wh @ {tokens.fmt(tk, t['price'])}/kWh: seller receives "
                   f"{tokens.fmt(tk, t.get('seller_received', t['money']))}, buyer pays "
                   f"{tokens.fmt(tk, t.get('buyer_paid', t['money']))}")


@market.command()
@chain_options
def grid(chain: Chain):
    """Show the grid participant (the utility's account, its feed-in and retail prices) and the
    network fee of the region's local currency. The DAO changes them (setGridTariff, setNetworkFee)."""
    from gridcoop_sdk import grid as grid_sdk

    market = chain.contract("EnergyMarket")
    g = grid_sdk.grid_terms(market)
    if not g.active:
        click.echo("no grid participant: the market has no buyer or seller of last resort "
                   "(the DAO sets one with setGrid)")
    else:
        tok = token_info(chain.w3, g.token)
        click.echo(f"grid participant {g.account}: bids {tok.fmt(g.feed_in_price)}/kWh (feed-in), offers "
                   f"{tok.fmt(g.retail_price)}/kWh (retail); energy debt paid at retail to it")
    tok = payment_token(chain, None) if chain.region else None
    if tok is not None:
        fee = grid_sdk.network_fee(market, tok.address)
        if fee.per_kwh:
            payee = market.functions.networkFeePayee().call()
            click.echo(f"network fee {tok.fmt(fee.per_kwh)}/kWh ({tok.fmt(fee.intra_feeder_per_kwh)}/kWh inside "
                       f"a feeder), paid by buyers to {payee}")
        else:
            click.echo(f"no network fee in {tok.symbol}")


@market.command("pay-debt")
@click.option("--for", "owner", default=None, metavar="ADDRESS",
              help="Whose energy debt to pay (default: your own account).")
@click.option("--wh", type=click.IntRange(min=1), default=None, help="How much of it, in Wh (default: all).")
@key_env_option(KEY_ENV, "the payer")
@chain_options
def pay_debt(owner, wh, key_env, chain: Chain):
    """Pay energy debt (energy imported beyond the WATT held) at the grid's retail price, in its
    token, to the utility. The payer needs that amount and an allowance for the market."""
    from gridcoop_sdk import grid as grid_sdk

    acct = account_from_env(key_env, "the payer")
    owner = Web3.to_checksum_address(owner) if owner else acct.address
    market, registry = chain.contract("EnergyMarket"), chain.contract("MeterRegistry")
    debt = grid_sdk.energy_debt_wh(registry, owner)
    if debt == 0:
        click.echo(f"{owner} owes no energy debt")
        return
    g = grid_sdk.grid_terms(market)
    if not g.active:
        raise click.ClickException("the market has no grid participant: energy debt cannot be paid on chain")
    amount_wh = debt if wh is None else wh
    if amount_wh > debt:
        raise click.BadParameter(f"{owner} owes {debt} Wh, not {amount_wh}", param_hint="--wh")
    tok = token_info(chain.w3, g.token)
    cost = grid_sdk.debt_payment(amount_wh, g.retail_price)
    try:
        rc = grid_sdk.pay_energy_debt(chain.w3, acct, market, owner, amount_wh)
    except GridcoopError as exc:
        raise click.ClickException(f"payment refused: {exc}") from exc
    click.echo(f"paid {amount_wh} Wh of {owner}'s energy debt: {tok.fmt(cost)} to {g.account} "
               f"(tx {rc['transactionHash'].hex()}); {debt - amount_wh} Wh left")
