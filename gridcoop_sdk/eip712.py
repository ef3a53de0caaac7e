"""EIP-712: the single definition of gridcoop's signing domain and message types.

Domain (from the design): name ``gridcoop``, version ``1``, chain id and verifying contract
always set. Message types are added here by the components that sign (meter readings,
market orders); a test checks each against the type hash the Solidity contract uses.

Encoding, hashing and signing go through eth-account's typed-data implementation
(:func:`eth_account.messages.encode_typed_data`): :func:`typed_data` builds the full message,
:func:`signable` encodes it, :func:`digest` hashes it and :func:`sign` signs it. The one
exception is the meter bridge's reading signer (:class:`gridcoop_sdk.readings.ReadingSigner`),
which needs more speed than eth-account gives and is checked against it by a test.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.datastructures import SignedMessage
from eth_account.messages import SignableMessage, encode_typed_data, hash_domain
from eth_utils import keccak, to_checksum_address

DOMAIN_NAME = "gridcoop"
DOMAIN_VERSION = "1"

EIP712_DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]

#: Message types by primary type name: ``{"MeterReading": [{"name": ..., "type": ...}, …]}``.
TYPES: dict[str, list[dict[str, str]]] = {}

# Meter readings (MeterRegistry.READING_TYPEHASH; gridcoop_sdk.readings signs them).
TYPES["MeterReading"] = [
    {"name": "meterId", "type": "bytes32"},
    {"name": "sequence", "type": "uint64"},
    {"name": "intervalStart", "type": "uint64"},
    {"name": "intervalEnd", "type": "uint64"},
    {"name": "generationWh", "type": "uint64"},
    {"name": "consumptionWh", "type": "uint64"},
    {"name": "exportWh", "type": "uint64"},
    {"name": "importWh", "type": "uint64"},
    {"name": "frequencyMHz", "type": "uint32"},
]

# Energy market order (contracts/market/EnergyMarket.sol ORDER_TYPEHASH; gridcoop_sdk/orders.py).
TYPES["Order"] = [
    {"name": "maker", "type": "address"},
    {"name": "side", "type": "uint8"},
    {"name": "intervalId", "type": "uint64"},
    {"name": "amountWh", "type": "uint256"},
    {"name": "limitPrice", "type": "uint256"},
    {"name": "paymentToken", "type": "address"},
    {"name": "partiallyFillable", "type": "bool"},
    {"name": "expiry", "type": "uint64"},
    {"name": "salt", "type": "uint256"},
    {"name": "counterparty", "type": "address"},
    {"name": "colour", "type": "bytes32"},
]


def domain(chain_id: int, verifying_contract: str) -> dict[str, Any]:
    """The gridcoop EIP-712 domain for one contract on one chain."""
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": int(chain_id),
        "verifyingContract": to_checksum_address(verifying_contract),
    }


def encode_type(primary: str) -> str:
    """``Name(type1 field1,…)`` — the string whose keccak is the type hash (no nested types yet)."""
    fields = TYPES[primary]
    return f"{primary}(" + ",".join(f"{f['type']} {f['name']}" for f in fields) + ")"


def type_hash(primary: str) -> bytes:
    return keccak(text=encode_type(primary))


def domain_separator(chain_id: int, verifying_contract: str) -> bytes:
    """The domain separator (``DOMAIN_SEPARATOR()`` of the contract), hashed by eth-account."""
    return bytes(hash_domain(domain(chain_id, verifying_contract)))


def typed_data(primary: str, message: dict[str, Any], chain_id: int, verifying_contract: str) -> dict[str, Any]:
    """The full EIP-712 message (``types``/``primaryType``/``domain``/``message``), as wallets
    and ``eth_account.messages.encode_typed_data(full_message=…)`` take it."""
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN_FIELDS, primary: TYPES[primary]},
        "primaryType": primary,
        "domain": domain(chain_id, verifying_contract),
        "message": message,
    }


def signable(primary: str, message: dict[str, Any], chain_id: int, verifying_contract: str) -> SignableMessage:
    """eth-account's encoding of the message (version ``0x01``, domain separator, struct hash)."""
    return encode_typed_data(full_message=typed_data(primary, message, chain_id, verifying_contract))


def hash_signable(msg: SignableMessage) -> bytes:
    """The EIP-191 digest of an encoded message: ``keccak256(0x19 ‖ version ‖ header ‖ body)``
    (what ``Account.sign_message`` signs)."""
    return keccak(b"\x19" + bytes(msg.version) + bytes(msg.header) + bytes(msg.body))


def digest(primary: str, message: dict[str, Any], chain_id: int, verifying_contract: str) -> bytes:
    """The EIP-712 digest of a message: what the contract recovers the signer from."""
    return hash_signable(signable(primary, message, chain_id, verifying_contract))


def sign(primary: str, message: dict[str, Any], chain_id: int, verifying_contract: str,
         private_key: Any) -> SignedMessage:
    """Sign a message with eth-account (``message_hash``, ``r``, ``s``, ``v``, 65-byte ``signature``)."""
    return Account.sign_message(signable(primary, message, chain_id, verifying_contract), private_key)
