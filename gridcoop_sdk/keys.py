"""Private keys from text (environment variables): checked, with a message that says what is wrong."""

from __future__ import annotations

import re

from eth_account import Account
from eth_account.signers.local import LocalAccount

from .exceptions import GridcoopError

_HEX = re.compile(r"^[0-9a-fA-F]*$")


class PrivateKeyError(GridcoopError, ValueError):
    """A private key is malformed (the message names where it came from)."""


def account_from_hex(text: str, source: str) -> LocalAccount:
    """A hex private key (``0x`` optional) → account; :class:`PrivateKeyError` naming ``source`` otherwise."""
    s = text.strip().removeprefix("0x").removeprefix("0X")
    if not s or not _HEX.match(s) or len(s) % 2:
        raise PrivateKeyError(f"{source} does not hold a private key: expected 64 hex digits (32 bytes), got text that "
                        "is not hex; put the account's hex private key in it")
    n = len(s) // 2
    if n != 32:
        raise PrivateKeyError(f"{source} holds a {n}-byte value, but a private key is 32 bytes (64 hex digits); put the "
                        "account's full hex private key in it")
    try:
        return Account.from_key(bytes.fromhex(s))
    except Exception as exc:  # zero or not below the curve order
        raise PrivateKeyError(f"{source} does not hold a valid private key ({exc})") from exc
