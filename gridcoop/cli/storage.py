"""``gridcoop storage …``: community batteries (status, deposit, withdraw, owed, pay, claim, grant).

The battery contract is the region's ``BatteryStorage`` (``--region``), or ``--storage ADDRESS``
for one deployed outside a region. Logic: :mod:`gridcoop_sdk.storage`.
"""

from __future__ import annotations

import functools
from decimal import Decimal

import click
from web3 import Web3

from gridcoop_sdk import storage as st
from gridcoop_sdk.units import parse_energy

from .common import Chain, account_from_env, chain_options, checked_address, group, key_env_option

TSL_UNIT = Decimal(10**18)
KEY_ENV = "GRIDCOOP_KEY"


def _tsl(amount: int) -> str:
    return f"{Decimal(amount) / TSL_UNIT:,.6f} TSL ({amount} base units)"


def _parse_tsl(text: str) -> int:
    """``"1.5"`` TSL or ``"1500000000000000000wei"`` base units → base units."""
    s = text.strip().lower()
    try:
        if s.endswith("wei"):
            value = int(s[:-3])
        else:
            d = Decimal(s) * TSL_UNIT
            if d != d.to_integral_value():
                raise click.BadParameter(f"{text!r} has more than 18 decimals")
            value = int(d)
    except (ArithmeticError, ValueError) as exc:
        raise click.BadParameter(f"not a TSL amount: {text!r} (use e.g. 2.5 or 2500000000000000000wei)") from exc
    if value <= 0:
        raise click.BadParameter(f"amount must be positive: {text!r}")
    return value


def _energy(ctx, param, value):  # noqa: ARG001
    if value is None:
        return None
    try:
        wh = parse_energy(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if wh <= 0:
        raise click.BadParameter("energy must be positive")
    return wh


def common(send: bool):
    """Options every battery command shares; ``send`` adds the key option."""

    def deco(fn):
        @click.option("--storage", "storage_addr", default=None, metavar="ADDRESS",
                      help="BatteryStorage address, for one deployed outside a region "
                           "(default: the region's BatteryStorage).")
        @chain_options
        @functools.wraps(fn)
        def wrapper(chain: Chain, storage_addr, **kw):
            if send:
                kw["account"] = account_from_env(kw.pop("key_env"), "the sender")
            contract = chain.contract("BatteryStorage", storage_addr, "--storage")
            return fn(w3=chain.w3, storage=contract, **kw)

        if send:
            wrapper = key_env_option(KEY_ENV, "the sender")(wrapper)
        return wrapper

    return deco


battery_arg = click.argument("battery_id", type=click.IntRange(min=1), metavar="BATTERY_ID")


@group("storage")
def storage() -> None:
    """Community batteries: keep WATT in a battery for a TSL fee per 15-minute slot.

    Fees: every started slot costs Wh × rate / 1000 TSL base units (rate per kWh per slot).
    Each fee is split 80% owners (by share) / 10% marketing / 10% platform. Commands that send a
    transaction sign with the key in $GRIDCOOP_KEY (see --key-env).
    """


@storage.command()
@battery_arg
@click.option("--user", default=None, metavar="ADDRESS", help="Also show this account's stored energy and fees owed.")
@common(send=False)
def status(w3, storage, battery_id: int, user: str | None) -> None:
    """Show a battery: meter, capacity, stored energy, efficiency, fee rate, owners."""
    user = checked_address(user, "--user")
    info = st.battery_info(storage, battery_id)
    click.echo(f"battery {battery_id} at {storage.address} (chain {w3.eth.chain_id})")
    click.echo(f"  meter        {st.bytes32_text(info.meter_id)}")
    click.echo(f"  capacity     {info.capacity_wh:,} Wh   stored {info.stored_wh:,} Wh   free {info.free_wh:,} Wh")
    click.echo(f"  efficiency   {info.efficiency_bps / 100:.2f} %   active {info.active}")
    click.echo(f"  fee rate     {Decimal(info.fee_rate) / TSL_UNIT:f} TSL per kWh per slot ({info.fee_rate} base units)")
    total = sum(s for _, s in info.owners)
    for addr, share in info.owners:
        click.echo(f"  owner        {addr}  share {share}/{total}  claimable {_tsl(st.claimable(storage, addr))}")
    if user:
        click.echo(f"  {user}: stored {st.stored(storage, battery_id, user):,} Wh, "
                   f"owes {_tsl(st.owed(storage, battery_id, user))}")


@storage.command()
@battery_arg
@click.argument("energy", callback=_energy, metavar="ENERGY")
@click.option("--colour", default=None, help="Source of the energy for traceability (solar, wind, …).")
@common(send=True)
def deposit(w3, storage, account, battery_id: int, energy: int, colour: str | None) -> None:
    """Charge ENERGY (1500Wh, 1.5kWh, …) of your WATT into BATTERY_ID (approves WATT as needed)."""
    receipt = st.deposit(w3, account, storage, battery_id, energy, colour=colour)
    click.echo(f"deposited {energy:,} Wh into battery {battery_id} (block {receipt['blockNumber']}); "
               f"fees now owed: {_tsl(st.owed(storage, battery_id, account.address))}")


@storage.command()
@battery_arg
@click.argument("energy", callback=_energy, metavar="ENERGY")
@click.option("--no-approve", is_flag=True, help="Do not approve TSL for the fees (use prepaid TSL only).")
@common(send=True)
def withdraw(w3, storage, account, battery_id: int, energy: int, no_approve: bool) -> None:
    """Discharge ENERGY of your own stored energy from BATTERY_ID (fees owed are paid first)."""
    out = st.withdraw(w3, account, storage, battery_id, energy, approve_fees=not no_approve)
    click.echo(f"withdrew {energy:,} Wh from battery {battery_id}: received {out:,} Wh, "
               f"{energy - out:,} Wh lost (burnt)")


@storage.command()
@battery_arg
@click.argument("user", metavar="ADDRESS")
@common(send=False)
def owed(w3, storage, battery_id: int, user: str) -> None:  # noqa: ARG001
    """Show what ADDRESS owes in fees for BATTERY_ID now (the current slot included)."""
    if not Web3.is_address(user):
        raise click.BadParameter(f"not an address: {user!r}", param_hint="ADDRESS")
    click.echo(f"{user} keeps {st.stored(storage, battery_id, user):,} Wh in battery {battery_id} and owes "
               f"{_tsl(st.owed(storage, battery_id, user))}")


@storage.command()
@battery_arg
@click.option("--prepay", "prepay_amount", default=None, metavar="TSL",
              help="Instead of paying now, prepay this much TSL (e.g. 2.5) for future fees.")
@common(send=True)
def pay(w3, storage, account, battery_id: int, prepay_amount: str | None) -> None:
    """Pay all fees you owe for BATTERY_ID (prepaid TSL first, then approved TSL)."""
    if prepay_amount:
        amount = _parse_tsl(prepay_amount)
        st.prepay(w3, account, storage, amount)
        click.echo(f"prepaid {_tsl(amount)}")
        return
    paid = st.pay_fees(w3, account, storage, battery_id)
    click.echo(f"paid {_tsl(paid)} for battery {battery_id}" if paid else "nothing owed")


@storage.command()
@click.option("--for", "payee", default=None, metavar="ADDRESS",
              help="Pay the fee parts credited to ADDRESS out to ADDRESS (not to you; you pay only the gas). "
                   "For payees that cannot send a transaction themselves: a region's ContributionShares "
                   "(the platform payee; its members then claim their part from it), a Safe, or an old "
                   "payee after setPayees. Anyone may do it. The marketing pool is not paid out this way.")
@common(send=True)
def claim(w3, storage, account, payee: str | None) -> None:
    """Withdraw everything due to you as an owner, the platform or the marketing payee.

    With --for ADDRESS, pay ADDRESS what is credited to it instead (the TSL goes to ADDRESS).
    """
    if payee is None:
        due = st.claimable(storage, account.address)
        if not due:
            raise click.ClickException(f"nothing to claim for {account.address}")
        click.echo(f"claimed {_tsl(st.claim(w3, account, storage))}")
        return
    if not Web3.is_address(payee):
        raise click.BadParameter(f"not an address: {payee!r}", param_hint="--for")
    payee = Web3.to_checksum_address(payee)
    if not st.credited(storage, payee):
        raise click.ClickException(f"nothing credited to {payee}")
    click.echo(f"paid {_tsl(st.claim_for(w3, account, storage, payee))} to {payee}")


@storage.command()
@common(send=True)
def grant(w3, storage, account) -> None:
    """Claim your one-time welcome grant of TSL (registered co-op participants only)."""
    click.echo(f"welcome grant received: {_tsl(st.claim_welcome_grant(w3, account, storage))}")
