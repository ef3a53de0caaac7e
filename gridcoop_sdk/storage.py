"""Community batteries (``BatteryStorage``): deploy, register, deposit/withdraw, fees, claims.

Units: energy in whole Wh (the contract moves ``wh * 10**15`` WATT base units); fee rates in TSL
base units per kWh per 15-minute slot; fees and claims in TSL base units.

Fees accrue for every *started* slot the energy is in the battery (the slot of the deposit counts).
Withdrawing needs the fees owed to be paid; :func:`withdraw` approves TSL for them (plus one slot of
margin, in case the slot turns while the transaction is mined) unless told not to.

Every failing call raises :class:`~gridcoop_sdk.exceptions.TransactionFailed` naming the decoded
custom error (``StorageFeesOwed(batteryId=1, user=0x…, owed=…)``); bad input is refused before
anything is sent with :class:`StorageInputError`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from .contracts import deploy
from .exceptions import GridcoopError
from .tx import build, call, send
from .units import WATT_PER_WH

log = logging.getLogger("gridcoop.storage")

ZERO = "0x0000000000000000000000000000000000000000"
BPS = 10_000
SLOT_SECONDS = 900
MAX_OWNERS = 16


class StorageInputError(GridcoopError, ValueError):
    """An argument for a battery operation is invalid; the message says which and why."""


@dataclass(frozen=True)
class BatteryInfo:
    """A battery's on-chain state (see ``IBatteryStorage.Battery``)."""

    battery_id: int
    meter_id: bytes
    capacity_wh: int
    stored_wh: int
    efficiency_bps: int
    active: bool
    registered_slot: int
    fee_rate: int
    owners: list[tuple[str, int]]

    @property
    def free_wh(self) -> int:
        return self.capacity_wh - self.stored_wh


# ----------------------------------------------------------------------------- encoding helpers


def to_bytes32(value: bytes | str | None, *, what: str = "value") -> bytes:
    """``bytes`` (≤ 32, right-padded), ``0x``-hex of 32 bytes, or a short text (right-padded ASCII,
    like Solidity's ``bytes32("solar")``). ``None`` → 32 zero bytes."""
    if value is None:
        return b"\x00" * 32
    if isinstance(value, bytes):
        raw = value
    elif isinstance(value, str) and value.startswith("0x") and len(value) == 66:
        try:
            raw = bytes.fromhex(value[2:])
        except ValueError as exc:
            raise StorageInputError(f"{what} {value!r} is not valid hex") from exc
    elif isinstance(value, str):
        raw = value.encode()
    else:
        raise StorageInputError(f"{what} must be bytes or text, got {type(value).__name__}")
    if len(raw) > 32:
        raise StorageInputError(f"{what} {value!r} is longer than 32 bytes")
    return raw.ljust(32, b"\x00")


def bytes32_text(value: bytes) -> str:
    """Inverse of :func:`to_bytes32` for short texts (``b"solar\\0…"`` → ``"solar"``); hex otherwise."""
    stripped = bytes(value).rstrip(b"\x00")
    try:
        text = stripped.decode("ascii")
        if text.isprintable():
            return text
    except UnicodeDecodeError:
        pass
    return "0x" + bytes(value).hex()


def _positive_int(value: Any, what: str, *, allow_zero: bool = False) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise StorageInputError(f"{what} must be an integer, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise StorageInputError(f"{what} must be {'≥ 0' if allow_zero else '> 0'}, got {value}")
    return value


def _events(contract: Contract, receipt: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [dict(e["args"]) for e in getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD)]


def send_with_margin(w3: Web3, account: LocalAccount, fn: Any, *, extra_gas: int = 600_000) -> dict[str, Any]:
    """Send a storage call with ``extra_gas`` over the estimate (unused gas is not charged).

    The estimate is simulated at the latest block; if the 15-minute slot turns before the
    transaction is mined, the new slot's fee accrues and may be paid and split inside it (up to 16
    owners credited from zero), which costs far more gas than estimated. Reverts are still explained
    (decoded custom error) as with :func:`gridcoop_sdk.tx.send`.
    """
    estimate = build(w3, account, fn)["gas"]
    return send(w3, account, fn, gas=estimate + extra_gas)


def _address(value: Any, what: str) -> str:
    if not isinstance(value, str) or not Web3.is_address(value) or int(value, 16) == 0:
        raise StorageInputError(f"{what} must be a non-zero address, got {value!r}")
    return Web3.to_checksum_address(value)


def _role(contract: Contract, name: str) -> bytes:
    return getattr(contract.functions, name)().call()


# ----------------------------------------------------------------------------- deployment/admin


def deploy_storage(
    w3: Web3,
    deployer: LocalAccount,
    watt: Contract,
    tsl: Contract,
    *,
    platform_treasury: str,
    marketing: str | None = None,
    participants: str = ZERO,
    welcome_grant: int = 0,
    admin: str | None = None,
    record_as: str = "BatteryStorage",
    directory: Path | None = None,
    grant_burner: bool = True,
    record: bool = True,
) -> Contract:
    """Deploy ``BatteryStorage`` and record it as ``record_as``.

    ``marketing`` defaults to ``platform_treasury``; ``admin`` to the deployer. When the deployer is
    the admin it also receives ``REGISTRAR_ROLE`` and ``FEE_MANAGER_ROLE`` (handed to the DAO later).
    With ``grant_burner`` and the deployer holding WATT's admin role, the storage contract gets
    WATT's ``BURNER_ROLE`` (it burns efficiency losses); otherwise a warning says it is missing.
    ``record=False`` skips writing ``deployments/<chainId>.json``.
    """
    admin = admin or deployer.address
    marketing = marketing or platform_treasury
    _positive_int(welcome_grant, "welcome_grant", allow_zero=True)
    for what, addr in (("platform_treasury", platform_treasury), ("marketing", marketing), ("admin", admin)):
        if not Web3.is_address(addr) or int(addr, 16) == 0:
            raise StorageInputError(f"{what} must be a non-zero address, got {addr!r}")
    storage = deploy(
        w3, deployer, "BatteryStorage", admin, watt.address, tsl.address,
        Web3.to_checksum_address(platform_treasury), Web3.to_checksum_address(marketing),
        Web3.to_checksum_address(participants), welcome_grant,
        record_as=record_as, directory=directory, record=record,
    )
    if Web3.to_checksum_address(admin) == deployer.address:
        for role in ("REGISTRAR_ROLE", "FEE_MANAGER_ROLE"):
            send(w3, deployer, storage.functions.grantRole(_role(storage, role), deployer.address))
    if grant_burner:
        burner = _role(watt, "BURNER_ROLE")
        if watt.functions.hasRole(_role(watt, "DEFAULT_ADMIN_ROLE"), deployer.address).call():
            send(w3, deployer, watt.functions.grantRole(burner, storage.address))
        else:
            log.warning("BatteryStorage at %s lacks WATT's BURNER_ROLE: withdrawals with an efficiency "
                        "loss revert until the WATT admin grants it", storage.address)
    log.info("deployed BatteryStorage at %s", storage.address)
    return storage


def register_battery(
    w3: Web3,
    registrar: LocalAccount,
    storage: Contract,
    *,
    meter_id: bytes | str,
    capacity_wh: int,
    efficiency_bps: int,
    fee_rate: int,
    owners: Sequence[tuple[str, int]],
) -> int:
    """Register a battery; returns its id. ``owners`` is ``[(address, share), …]`` (1..16 distinct
    owners, positive shares; the first takes rounding remainders of the owners' split)."""
    _positive_int(capacity_wh, "capacity_wh")
    _positive_int(fee_rate, "fee_rate", allow_zero=True)
    if not isinstance(efficiency_bps, int) or not 0 < efficiency_bps <= BPS:
        raise StorageInputError(f"efficiency_bps must be 1..10000 (10000 = lossless), got {efficiency_bps!r}")
    if not owners or len(owners) > MAX_OWNERS:
        raise StorageInputError(f"a battery needs 1..{MAX_OWNERS} owners, got {len(owners)}")
    addrs, shares = [], []
    for i, (addr, share) in enumerate(owners):
        if not Web3.is_address(addr) or int(addr, 16) == 0:
            raise StorageInputError(f"owners[{i}] is not a non-zero address: {addr!r}")
        _positive_int(share, f"owners[{i}] share")
        cs = Web3.to_checksum_address(addr)
        if cs in addrs:
            raise StorageInputError(f"owners[{i}] {cs} is listed twice")
        addrs.append(cs)
        shares.append(share)
    receipt = send(w3, registrar, storage.functions.registerBattery(
        to_bytes32(meter_id, what="meter_id"), capacity_wh, efficiency_bps, fee_rate, addrs, shares))
    (ev,) = _events(storage, receipt, "BatteryRegistered")
    log.info("registered battery %s (meter %s, %s Wh)", ev["batteryId"], bytes32_text(ev["meterId"]), capacity_wh)
    return int(ev["batteryId"])


def set_fee_rate(w3: Web3, manager: LocalAccount, storage: Contract, battery_id: int, rate: int) -> int:
    """Change a battery's fee rate from the next slot on; returns the effective slot."""
    _positive_int(rate, "rate", allow_zero=True)
    receipt = send(w3, manager, storage.functions.setFeeRate(battery_id, rate))
    return int(_events(storage, receipt, "FeeRateChanged")[0]["effectiveSlot"])


# ----------------------------------------------------------------------------- views


def battery_info(storage: Contract, battery_id: int) -> BatteryInfo:
    """A battery's state, current fee rate and owners."""
    b = call(storage.functions.batteries(battery_id))
    owners, shares = call(storage.functions.ownersOf(battery_id))
    return BatteryInfo(
        battery_id=battery_id, meter_id=bytes(b[0]), capacity_wh=b[1], stored_wh=b[2],
        efficiency_bps=b[3], active=b[4], registered_slot=b[5],
        fee_rate=call(storage.functions.feeRate(battery_id)),
        owners=list(zip(owners, shares, strict=True)),
    )


def owed(storage: Contract, battery_id: int, user: str) -> int:
    """TSL base units ``user`` owes for ``battery_id`` now (the current slot included)."""
    return int(call(storage.functions.owed(battery_id, Web3.to_checksum_address(user))))


def stored(storage: Contract, battery_id: int, user: str) -> int:
    """Wh that ``user`` keeps in ``battery_id``."""
    return int(call(storage.functions.stored(battery_id, Web3.to_checksum_address(user))))


def claimable(storage: Contract, payee: str) -> int:
    """TSL base units ``payee`` can claim now with its own :func:`claim` (for the marketing payee this
    includes the marketing pool)."""
    return int(call(storage.functions.claimable(Web3.to_checksum_address(payee))))


def credited(storage: Contract, payee: str) -> int:
    """TSL base units of fee parts credited to ``payee``: what :func:`claim_for` pays it (no marketing pool)."""
    return int(call(storage.functions.credited(Web3.to_checksum_address(payee))))


def _token(w3: Web3, storage: Contract, which: str) -> Contract:
    from .contracts import at

    name = {"watt": "WattToken", "tsl": "TeslaToken"}[which]
    return at(w3, name, getattr(storage.functions, which)().call())


def _ensure_allowance(w3: Web3, owner: LocalAccount, token: Contract, spender: str, amount: int) -> None:
    if token.functions.allowance(owner.address, spender).call() < amount:
        send(w3, owner, token.functions.approve(spender, amount))


# ----------------------------------------------------------------------------- user operations


def deposit(
    w3: Web3,
    user: LocalAccount,
    storage: Contract,
    battery_id: int,
    wh: int,
    *,
    colour: bytes | str | None = None,
    approve: bool = True,
) -> dict[str, Any]:
    """Charge ``wh`` Wh of ``user``'s WATT into a battery; returns the receipt.

    ``colour`` is the energy's source (``"solar"``, ``"wind"``, …) for traceability. With
    ``approve`` the WATT allowance is raised to what the deposit needs.
    """
    _positive_int(wh, "wh")
    colour_b = to_bytes32(colour, what="colour")
    if approve:
        _ensure_allowance(w3, user, _token(w3, storage, "watt"), storage.address, wh * WATT_PER_WH)
    return send_with_margin(w3, user, storage.functions.deposit(battery_id, wh, colour_b))


def _fee_allowance_needed(storage: Contract, battery_id: int, user: str) -> int:
    """Fees owed now plus one more slot at the next slot's rate (margin for a slot boundary)."""
    now = owed(storage, battery_id, user)
    slot = call(storage.functions.currentSlot())
    nxt = call(storage.functions.feeRateAt(battery_id, slot + 1))
    return now + (stored(storage, battery_id, user) * nxt) // 1000 + 1


def withdraw(
    w3: Web3,
    user: LocalAccount,
    storage: Contract,
    battery_id: int,
    wh: int,
    *,
    approve_fees: bool = True,
) -> int:
    """Discharge ``wh`` Wh of ``user``'s own energy; returns the Wh received (after the loss).

    Fees owed are paid by the contract from prepaid TSL, then TSL allowance; with ``approve_fees``
    the allowance is raised to cover them (only what prepaid credit does not).
    """
    _positive_int(wh, "wh")
    if approve_fees:
        need = _fee_allowance_needed(storage, battery_id, user.address)
        credit = storage.functions.credit(user.address).call()
        if need > credit:
            _ensure_allowance(w3, user, _token(w3, storage, "tsl"), storage.address, need - credit)
    receipt = send_with_margin(w3, user, storage.functions.withdraw(battery_id, wh))
    return int(_events(storage, receipt, "Discharged")[0]["whOut"])


def pay_fees(w3: Web3, user: LocalAccount, storage: Contract, battery_id: int, *, approve: bool = True) -> int:
    """Pay everything ``user`` owes for ``battery_id``; returns the TSL paid (0 if nothing was owed)."""
    if approve:
        need = _fee_allowance_needed(storage, battery_id, user.address)
        credit = storage.functions.credit(user.address).call()
        if need > credit:
            _ensure_allowance(w3, user, _token(w3, storage, "tsl"), storage.address, need - credit)
    receipt = send_with_margin(w3, user, storage.functions.payFees(battery_id))
    paid = _events(storage, receipt, "FeePaid")
    return int(paid[0]["amount"]) if paid else 0


def prepay(w3: Web3, user: LocalAccount, storage: Contract, amount: int, *, approve: bool = True) -> dict[str, Any]:
    """Move ``amount`` TSL base units into ``user``'s prepaid fee balance."""
    _positive_int(amount, "amount")
    if approve:
        _ensure_allowance(w3, user, _token(w3, storage, "tsl"), storage.address, amount)
    return send(w3, user, storage.functions.prepay(amount))


def withdraw_prepaid(w3: Web3, user: LocalAccount, storage: Contract, amount: int) -> dict[str, Any]:
    """Take back ``amount`` of ``user``'s unused prepaid TSL."""
    _positive_int(amount, "amount")
    return send(w3, user, storage.functions.withdrawPrepaid(amount))


def fund_marketing_pool(
    w3: Web3, funder: LocalAccount, storage: Contract, amount: int, *, approve: bool = True
) -> dict[str, Any]:
    """Add ``amount`` TSL from ``funder`` to the marketing pool (funds welcome grants)."""
    _positive_int(amount, "amount")
    if approve:
        _ensure_allowance(w3, funder, _token(w3, storage, "tsl"), storage.address, amount)
    return send(w3, funder, storage.functions.fundMarketingPool(amount))


def claim(w3: Web3, payee: LocalAccount, storage: Contract) -> int:
    """Withdraw everything due to ``payee`` (owner shares, platform part, marketing pool); returns it."""
    return _claimed(storage, send_with_margin(w3, payee, storage.functions.claim()))


def claim_for(w3: Web3, sender: LocalAccount, storage: Contract, payee: str) -> int:
    """Pay ``payee`` the fee parts credited to it, sent by ``sender`` (anyone); returns the TSL paid.

    The TSL goes to ``payee``, never to ``sender``: this is how a payee that cannot send a
    transaction itself is paid — a region's ContributionShares (the platform payee; its members then
    claim their pro-rata part from it), a Safe, or an old payee after ``setPayees``. The marketing
    pool is not paid out this way (see :func:`claim`). Nothing credited raises
    :class:`TransactionFailed` with ``StorageNothingToClaim(payee=…)``.
    """
    return _claimed(storage, send_with_margin(w3, sender, storage.functions.claimFor(_address(payee, "payee"))))


def _claimed(storage: Contract, receipt: dict[str, Any]) -> int:
    return int(_events(storage, receipt, "Claimed")[0]["amount"])


def claim_welcome_grant(w3: Web3, user: LocalAccount, storage: Contract) -> int:
    """Claim ``user``'s one-time welcome grant; returns the TSL received."""
    receipt = send(w3, user, storage.functions.claimWelcomeGrant())
    return int(_events(storage, receipt, "WelcomeGrant")[0]["amount"])


__all__ = [
    "BatteryInfo",
    "StorageInputError",
    "ZERO",
    "battery_info",
    "bytes32_text",
    "claim",
    "claim_for",
    "claim_welcome_grant",
    "claimable",
    "credited",
    "deploy_storage",
    "deposit",
    "fund_marketing_pool",
    "owed",
    "pay_fees",
    "prepay",
    "register_battery",
    "send_with_margin",
    "set_fee_rate",
    "stored",
    "to_bytes32",
    "withdraw",
    "withdraw_prepaid",
]
