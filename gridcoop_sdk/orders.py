"""Energy-market orders: the ``Order`` EIP-712 message, signing, hashing, JSON, and the market.

An order says: *maker* sells (or buys) up to *amount_wh* Wh of WATT in delivery interval
*interval_id* at a limit of *limit_price* payment-token base units per kWh, paid in
*payment_token*. The keeper matches orders off chain; ``EnergyMarket.settle`` checks every order
on chain. Money is rounded once per order, never per trade: an order's value is
``V = Σ wh × price`` over its trades (payment-token base units × 1000), a seller receives
``V // 1000`` and a buyer pays ``ceil(V / 1000)``; the difference (rounding dust, under one base
unit per order) stays in the market for the DAO (:func:`split_money` computes all of it exactly).

>>> o = Order(maker=alice.address, side="sell", interval_id=iid, amount_wh=1500, limit_price=30,
...           payment_token=tsl.address, expiry=now + 3600)
>>> signed = sign_order(o, alice.key, chain_id, market.address)
>>> SignedOrder.from_json(signed.to_json()) == signed
True
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_keys import keys as eth_keys
from eth_utils import to_checksum_address
from web3 import Web3
from web3.contract import Contract

from . import eip712
from .contracts import deploy
from .eip712 import TYPES
from .exceptions import GridcoopError
from .tx import send

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ZERO_BYTES32 = b"\x00" * 32
SIDES = {"sell": 0, "buy": 1}
SIDE_NAMES = {v: k for k, v in SIDES.items()}
_MAX_U64 = 2**64 - 1
_MAX_U96 = 2**96 - 1
_MAX_U128 = 2**128 - 1


class OrderError(GridcoopError, ValueError):
    """An order is malformed; the message names the field and why."""

    def __init__(self, field_name: str, reason: str):
        self.field = field_name
        self.reason = reason
        super().__init__(f"order.{field_name}: {reason}")


def colour_bytes(colour: str | bytes | None) -> bytes:
    """``"solar"`` → keccak-free left-aligned ASCII bytes32; ``b""``/None → zero (any colour)."""
    if colour is None or colour == "" or colour == b"":
        return ZERO_BYTES32
    if isinstance(colour, bytes):
        if len(colour) != 32:
            raise OrderError("colour", f"must be 32 bytes, got {len(colour)}")
        return colour
    if not isinstance(colour, str):
        raise OrderError("colour", f"must be a name like 'solar' or 0x-hex bytes32, got {type(colour).__name__}")
    if colour.startswith("0x") and len(colour) == 66:
        try:
            return bytes.fromhex(colour[2:])
        except ValueError as exc:
            raise OrderError("colour", f"not hex: {colour!r}") from exc
    raw = colour.encode()
    if len(raw) > 32:
        raise OrderError("colour", f"name longer than 32 bytes: {colour!r}")
    return raw.ljust(32, b"\x00")


def colour_name(colour: bytes) -> str:
    """Inverse of :func:`colour_bytes` for readable names ("" for any)."""
    s = colour.rstrip(b"\x00")
    try:
        return s.decode()
    except UnicodeDecodeError:
        return "0x" + colour.hex()


@dataclass(frozen=True)
class Order:
    """A market order, field for field the Solidity ``IEnergyMarket.Order``."""

    maker: str
    side: str  # "sell" or "buy"
    interval_id: int
    amount_wh: int
    limit_price: int
    payment_token: str
    expiry: int
    partially_fillable: bool = True
    salt: int = field(default_factory=lambda: secrets.randbits(64))
    counterparty: str = ZERO_ADDRESS
    colour: bytes = ZERO_BYTES32

    def __post_init__(self) -> None:
        for name in ("maker", "payment_token", "counterparty"):
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, to_checksum_address(value))
            except (ValueError, TypeError) as exc:
                raise OrderError(name, f"not an address: {value!r}") from exc
        if not isinstance(self.partially_fillable, bool):
            raise OrderError("partially_fillable", f"must be true or false, got {self.partially_fillable!r}")
        if not isinstance(self.side, str) or self.side not in SIDES:
            raise OrderError("side", f"must be 'sell' or 'buy', got {self.side!r}")
        object.__setattr__(self, "colour", colour_bytes(self.colour))
        for name, hi in (("interval_id", _MAX_U64), ("expiry", _MAX_U64), ("amount_wh", _MAX_U96),
                         ("limit_price", _MAX_U128), ("salt", 2**256 - 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise OrderError(name, f"must be an integer, got {type(value).__name__}")
            if value < 0 or value > hi:
                raise OrderError(name, f"must be between 0 and {hi}, got {value}")
        if self.amount_wh == 0:
            raise OrderError("amount_wh", "must be at least 1 Wh")
        if self.maker == ZERO_ADDRESS:
            raise OrderError("maker", "must not be the zero address")
        if self.counterparty == self.maker:
            raise OrderError("counterparty", "must not be the maker itself")

    @property
    def side_code(self) -> int:
        return SIDES[self.side]

    @property
    def is_sell(self) -> bool:
        return self.side == "sell"

    def message(self) -> dict[str, Any]:
        """The EIP-712 message (Solidity field names)."""
        return {
            "maker": self.maker,
            "side": self.side_code,
            "intervalId": self.interval_id,
            "amountWh": self.amount_wh,
            "limitPrice": self.limit_price,
            "paymentToken": self.payment_token,
            "partiallyFillable": self.partially_fillable,
            "expiry": self.expiry,
            "salt": self.salt,
            "counterparty": self.counterparty,
            "colour": self.colour,
        }

    def as_tuple(self) -> tuple:
        """The ABI tuple for contract calls (``settle``, ``cancelOrder``, ``orderHash``)."""
        m = self.message()
        return tuple(m[f["name"]] for f in TYPES["Order"])

    def typed_data(self, chain_id: int, market_address: str) -> dict[str, Any]:
        """The full EIP-712 message for ``market_address`` on ``chain_id`` (for wallets and
        ``eth_account.messages.encode_typed_data(full_message=…)``)."""
        return eip712.typed_data("Order", self.message(), chain_id, market_address)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["colour"] = "0x" + self.colour.hex()
        d["salt"] = str(self.salt)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Order:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise OrderError(sorted(unknown)[0], "unknown field")
        missing = {"maker", "side", "interval_id", "amount_wh", "limit_price", "payment_token",
                   "expiry"} - set(d)
        if missing:
            raise OrderError(sorted(missing)[0], "missing")
        kw = dict(d)
        if "salt" in kw:
            try:
                kw["salt"] = int(kw["salt"])
            except (TypeError, ValueError) as exc:
                raise OrderError("salt", f"not an integer: {kw['salt']!r}") from exc
        if "colour" in kw and isinstance(kw["colour"], str):
            kw["colour"] = colour_bytes(kw["colour"])
        return cls(**kw)


def order_hash(order: Order, chain_id: int, market_address: str) -> bytes:
    """The EIP-712 digest of ``order`` for ``market_address`` on ``chain_id`` (its on-chain id,
    ``EnergyMarket.orderHash``), encoded and hashed by eth-account."""
    return _order_digest(order, int(chain_id), to_checksum_address(market_address))


@lru_cache(maxsize=16384)
def _order_digest(order: Order, chain_id: int, market: str) -> bytes:
    # eth-account's encoding takes ~0.2 ms; the keeper hashes an order at intake and again when
    # it re-reads the order at settlement, so equal orders are hashed once.
    return eip712.digest("Order", order.message(), chain_id, market)


@dataclass(frozen=True)
class SignedOrder:
    """An order with its signature (65-byte r‖s‖v, or 64-byte EIP-2098) and its digest."""

    order: Order
    signature: bytes
    chain_id: int
    market: str

    @cached_property
    def hash(self) -> bytes:
        """The order's EIP-712 digest (computed once per signed order)."""
        return order_hash(self.order, self.chain_id, self.market)

    def to_dict(self) -> dict[str, Any]:
        return {
            "order": self.order.to_dict(),
            "signature": "0x" + self.signature.hex(),
            "chain_id": self.chain_id,
            "market": self.market,
            "hash": "0x" + self.hash.hex(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SignedOrder:
        if not isinstance(d, dict):
            raise OrderError("json", f"a signed order is a JSON object, got {type(d).__name__}")
        unknown = sorted(set(d) - {"order", "signature", "chain_id", "market", "hash"})
        if unknown:
            raise OrderError(unknown[0], "unknown field")
        for key in ("order", "signature", "chain_id", "market"):
            if key not in d:
                raise OrderError(key, "missing")
        if not isinstance(d["order"], dict):
            raise OrderError("order", "must be an object")
        order = Order.from_dict(d["order"])
        sig_text = d["signature"]
        try:
            sig = bytes.fromhex(sig_text[2:] if str(sig_text).startswith("0x") else sig_text)
        except (ValueError, TypeError) as exc:
            raise OrderError("signature", "not hex") from exc
        if len(sig) not in (64, 65) and len(sig) > 4096:
            raise OrderError("signature", f"unexpected length {len(sig)}")
        if not isinstance(d["chain_id"], int) or isinstance(d["chain_id"], bool) or not 0 < d["chain_id"] < 2**64:
            raise OrderError("chain_id", f"must be an integer chain id (1..2**64-1), got {d['chain_id']!r}")
        try:
            market = to_checksum_address(d["market"])
        except (ValueError, TypeError) as exc:
            raise OrderError("market", f"not an address: {d['market']!r}") from exc
        signed = cls(order=order, signature=sig, chain_id=d["chain_id"], market=market)
        if "hash" in d and str(d["hash"]).lower() != "0x" + signed.hash.hex():
            raise OrderError("hash", f"{d['hash']!r} is not this order's EIP-712 hash 0x{signed.hash.hex()}")
        return signed

    @classmethod
    def from_json(cls, text: str) -> SignedOrder:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OrderError("json", f"not valid JSON: {exc}") from exc
        if not isinstance(d, dict):
            raise OrderError("json", "must be an object")
        return cls.from_dict(d)

    def recover_signer(self) -> str | None:
        """The EOA that made a 65/64-byte signature (None if malformed or high-s)."""
        return recover_signer(self.hash, self.signature)


_SECP_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def recover_signer(digest: bytes, signature: bytes) -> str | None:
    """Recover the signer like the contract does (rejects high-s and v ∉ {27, 28})."""
    if len(signature) == 64:
        r, vs = signature[:32], int.from_bytes(signature[32:], "big")
        s = vs & ((1 << 255) - 1)
        v = 27 + (vs >> 255)
    elif len(signature) == 65:
        r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    else:
        return None
    if v not in (27, 28) or s > _SECP_N // 2 or s == 0:
        return None
    try:
        sig = eth_keys.Signature(vrs=(v - 27, int.from_bytes(r, "big"), s))
        return sig.recover_public_key_from_msg_hash(digest).to_checksum_address()
    except Exception:
        return None


def sign_order(order: Order, private_key: Any, chain_id: int, market_address: str, *,
               compact: bool = False) -> SignedOrder:
    """Sign ``order`` for ``market_address`` on ``chain_id`` with ``private_key``.

    ``compact=True`` makes a 64-byte EIP-2098 signature (cheaper calldata).
    """
    market = to_checksum_address(market_address)
    acct = Account.from_key(private_key)
    if acct.address != order.maker:
        raise OrderError("maker", f"is {order.maker} but the key belongs to {acct.address}")
    sm = eip712.sign("Order", order.message(), chain_id, market, acct.key)
    r, s, v = sm.r.to_bytes(32, "big"), sm.s, sm.v
    if compact:
        vs = s | ((v - 27) << 255)
        sig = r + vs.to_bytes(32, "big")
    else:
        sig = r + s.to_bytes(32, "big") + bytes([v])
    return SignedOrder(order=order, signature=sig, chain_id=int(chain_id), market=market)


def pack_trade(sell_index: int, buy_index: int, wh: int, price: int) -> int:
    """Pack a trade for ``EnergyMarket.settle``: ``sell<<240 | buy<<224 | wh<<128 | price``."""
    if not (0 <= sell_index < 2**16 and 0 <= buy_index < 2**16):
        raise ValueError(f"order index out of range: {sell_index}, {buy_index}")
    if not (0 < wh <= _MAX_U96):
        raise ValueError(f"trade energy out of range: {wh}")
    if not (0 <= price <= _MAX_U128):
        raise ValueError(f"trade price out of range: {price}")
    return (sell_index << 240) | (buy_index << 224) | (wh << 128) | price


def money_for(wh: int, price: int) -> int:
    """Payment-token base units a sell order of ``wh`` Wh at ``price`` per kWh receives, at least
    (``floor(wh × price / 1000)``; the contract rounds an order's whole value once, so a seller's
    orders are never paid less than this)."""
    return wh * price // 1000


def payment_for(wh: int, price: int) -> int:
    """Payment-token base units a buy order of ``wh`` Wh at ``price`` per kWh pays, at most
    (``ceil(wh × price / 1000)``): what the buyer must hold and allow the market."""
    return -(-wh * price // 1000)


@dataclass(frozen=True)
class MoneySplit:
    """What a settlement moves in money, to the base unit, as ``EnergyMarket.settle`` does it.

    ``received``/``paid``: per sell/buy order id, ``floor(V / 1000)`` / ``ceil(V / 1000)`` of the
    order's value ``V = Σ wh × price`` (a buy order's value also holds its network fee
    ``Σ wh × fee``). ``fees``: per buy order id with a fee, ``floor(Σ wh × fee / 1000)`` — what the
    fee payee receives from it. ``trade_received``/``trade_paid``: the same amounts allocated to the
    trades in order (a trade's share is the order's running floor/ceil after it less before it), so
    per-trade shares add up exactly to what each order moved. ``dust`` is what the buyers paid
    beyond what the sellers and the fee payee received (kept by the market, ``roundingDust``)."""

    received: dict
    paid: dict
    trade_received: list[int]
    trade_paid: list[int]
    fees: dict = field(default_factory=dict)

    @property
    def dust(self) -> int:
        return sum(self.paid.values()) - sum(self.received.values()) - sum(self.fees.values())


def split_money(trades) -> MoneySplit:
    """Money of a batch of ``(sell_id, buy_id, wh, price)`` or ``(sell_id, buy_id, wh, price,
    fee_per_kwh)`` trades (in batch order; ids are any hashable order keys — order hashes, or
    indices when every order appears once; the grid participant is one order per side)."""
    value: dict = {}
    fee_value: dict = {}
    trade_received: list[int] = []
    trade_paid: list[int] = []
    for t in trades:
        sell_id, buy_id, wh, price = t[:4]
        rate = int(t[4]) if len(t) > 4 else 0
        v = int(wh) * int(price)
        f = int(wh) * rate
        vs, vb = value.get(("s", sell_id), 0), value.get(("b", buy_id), 0)
        value[("s", sell_id)], value[("b", buy_id)] = vs + v, vb + v + f
        if f:
            fee_value[buy_id] = fee_value.get(buy_id, 0) + f
        trade_received.append((vs + v) // 1000 - vs // 1000)
        trade_paid.append(-(-(vb + v + f) // 1000) + (-vb // 1000))
    received = {k: v // 1000 for (side, k), v in value.items() if side == "s"}
    paid = {k: -(-v // 1000) for (side, k), v in value.items() if side == "b"}
    fees = {k: v // 1000 for k, v in fee_value.items()}
    return MoneySplit(received, paid, trade_received, trade_paid, fees)


def deploy_market(
    w3: Web3,
    deployer: LocalAccount,
    watt: Contract | str,
    *,
    keeper: str,
    payment_tokens: tuple | list = (),
    gate_closure_delay: int = 0,
    max_batch_size: int = 1024,
    admin: str | None = None,
    record_as: str = "EnergyMarket",
    directory: Path | None = None,
) -> Contract:
    """Deploy ``EnergyMarket`` and allow-list ``payment_tokens`` (the deployer needs PARAMETER_ROLE,
    so when ``admin`` is another account the allow-list must be set by that admin later)."""
    watt_addr = watt if isinstance(watt, str) else watt.address
    admin = admin or deployer.address
    market = deploy(w3, deployer, "EnergyMarket", admin, watt_addr, keeper, int(gate_closure_delay),
                    int(max_batch_size), record_as=record_as, directory=directory)
    for token in payment_tokens:
        addr = token if isinstance(token, str) else token.address
        if admin != deployer.address:
            raise GridcoopError(
                f"cannot allow-list {addr}: the deployer is not the market admin {admin}")
        send(w3, deployer, market.functions.setPaymentToken(addr, True))
    return market


def cancel_order(w3: Web3, maker: LocalAccount, market: Contract, signed: SignedOrder | Order) -> dict:
    """Cancel an order on chain (sent by its maker); returns the receipt."""
    order = signed.order if isinstance(signed, SignedOrder) else signed
    return send(w3, maker, market.functions.cancelOrder(order.as_tuple()))


def with_salt(order: Order, salt: int) -> Order:
    return replace(order, salt=salt)
