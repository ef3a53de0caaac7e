"""Transaction sending: build, sign locally, broadcast, wait, and explain reverts.

Every gridcoop component sends transactions through :func:`send` so that failures look the
same everywhere: a :class:`TransactionFailed` whose message names the contract function and the
decoded custom error (for example ``WattToken.mint reverted: AccessControlUnauthorizedAccount(
account=0x…, neededRole=0x…)``).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError

from .artifacts import decode_error
from .exceptions import TransactionFailed

log = logging.getLogger("gridcoop.tx")


def role_name(role: bytes) -> str | None:
    """The name of an AccessControl role hash (``keccak256("MINTER_ROLE")`` → ``"MINTER_ROLE"``),
    from the ``*_ROLE`` constants of every compiled contract; None if unknown."""
    if bytes(role) == b"\x00" * 32:
        return "DEFAULT_ADMIN_ROLE"
    return _role_names().get(bytes(role))


@functools.cache
def _role_names() -> dict[bytes, str]:
    from eth_utils import keccak

    from .artifacts import artifacts

    names: dict[bytes, str] = {}
    try:
        arts = artifacts()
    except Exception:  # no compiled artifacts: roles stay hashes
        return names
    for art in arts.values():
        for e in art.abi:
            n = e.get("name", "")
            if e.get("type") == "function" and n.endswith("_ROLE") and not e.get("inputs"):
                names[keccak(text=n)] = n
    return names


def describe_revert(label: str, data: Any, fallback: str = "") -> TransactionFailed:
    decoded = decode_error(data)
    if decoded:
        name, args = decoded
        shown = dict(args)
        if name == "AccessControlUnauthorizedAccount" and isinstance(args.get("neededRole"), bytes):
            shown["neededRole"] = role_name(args["neededRole"]) or args["neededRole"]
        arg_text = ", ".join(f"{k}={_fmt(v)}" for k, v in shown.items())
        return TransactionFailed(f"{label} reverted: {name}({arg_text})", error_name=name, error_args=args)
    return TransactionFailed(f"{label} reverted: {fallback or data or 'no reason given'}")


def _fmt(v: Any) -> str:
    if isinstance(v, bytes):
        return "0x" + v.hex()
    return str(v)


_NAMES: dict[str, str] = {}


def register_name(address: str, name: str) -> None:
    """Remember which contract lives at ``address`` so errors can name it."""
    _NAMES[address.lower()] = name


def _label(fn: ContractFunction) -> str:
    name = _NAMES.get(str(fn.address).lower(), "contract")
    return f"{name}.{fn.fn_name}"


def revert_from_exception(label: str, exc: Exception) -> TransactionFailed:
    if isinstance(exc, (ContractCustomError, ContractPanicError)):
        return describe_revert(label, exc.data, str(exc))
    if isinstance(exc, ContractLogicError):
        return describe_revert(label, getattr(exc, "data", None), exc.message or str(exc))
    return TransactionFailed(f"{label} failed: {exc}")


def call(fn: ContractFunction, *, sender: str | None = None, block: Any = "latest") -> Any:
    """Read-only call with decoded custom errors."""
    try:
        return fn.call({"from": sender} if sender else {}, block_identifier=block)
    except (ContractLogicError, ValueError) as exc:
        raise revert_from_exception(_label(fn), exc) from exc


#: Gas limit = estimate × factor + constant (see :func:`build`).
GAS_MARGIN = (1.2, 50_000)


def build(
    w3: Web3,
    account: LocalAccount,
    fn: ContractFunction,
    *,
    value: int = 0,
    nonce: int | None = None,
    gas: int | None = None,
    data: bytes | None = None,
) -> dict[str, Any]:
    """Build (and simulate, via gas estimation) a transaction for ``fn`` sent by ``account``.

    ``data`` is ``fn``'s call data when the caller encoded it already (web3's generic ABI
    encoding takes about a second for a batch of 500 meter readings; see
    :func:`gridcoop_sdk.meters.submit_readings`); ``fn`` still names the call in errors.

    Without ``gas`` the limit is the estimate plus :data:`GAS_MARGIN`: the estimate is taken
    against the latest block, and a transaction mined in a later block (a new 15-minute slot, a
    first write to a new storage slot) can need more. Unused gas is not charged.
    """
    params: dict[str, Any] = {"from": account.address, "value": value, "chainId": w3.eth.chain_id}
    params["nonce"] = nonce if nonce is not None else w3.eth.get_transaction_count(account.address, "pending")
    if gas is not None:
        params["gas"] = gas
    try:
        if data is None:
            tx = fn.build_transaction(params)
        else:
            from web3._utils.transactions import fill_transaction_defaults

            tx = dict(fill_transaction_defaults(w3, {**params, "to": fn.address, "data": "0x" + bytes(data).hex()}))
    except (ContractLogicError, ValueError) as exc:
        raise revert_from_exception(_label(fn), exc) from exc
    if gas is None:
        tx["gas"] = int(tx["gas"] * GAS_MARGIN[0]) + GAS_MARGIN[1]
    return tx


def send(
    w3: Web3,
    account: LocalAccount,
    fn: ContractFunction,
    *,
    value: int = 0,
    gas: int | None = None,
    timeout: float = 60.0,
    data: bytes | None = None,
) -> dict[str, Any]:
    """Send ``fn`` from ``account``, wait for the receipt and return it (``data``: see :func:`build`).

    Raises :class:`TransactionFailed` with the decoded custom error if the simulation or the
    mined transaction reverts.
    """
    tx = build(w3, account, fn, value=value, gas=gas, data=data)
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout)
    if receipt["status"] != 1:
        # Replay at the block to learn why (anvil keeps state for old blocks).
        err: TransactionFailed
        try:
            w3.eth.call({k: tx[k] for k in ("from", "to", "data", "value") if k in tx}, receipt["blockNumber"])
            err = TransactionFailed(f"{_label(fn)} reverted (out of gas?)")
        except (ContractLogicError, ValueError) as exc:
            err = revert_from_exception(_label(fn), exc)
        err.tx_hash = tx_hash.hex()
        err.receipt = dict(receipt)
        raise err
    log.debug("%s mined in block %s (gas %s)", _label(fn), receipt["blockNumber"], receipt["gasUsed"])
    return receipt
