"""EIP-712: the single definition of gridcoop's signing domain and message types.

Domain (from the design): name ``gridcoop``, version ``1``, chain id and verifying contract
always set. Message types are added here by the components that sign (meter readings,
market orders); a test checks each against the type hash the Solidity contract uses.
"""

from __future__ import annotations

from typing import Any

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
    """keccak256(abi.encode(DOMAIN_TYPEHASH, name, version, chainId, verifyingContract))."""
    from eth_abi import encode

    th = keccak(
        text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    return keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                th,
                keccak(text=DOMAIN_NAME),
                keccak(text=DOMAIN_VERSION),
                int(chain_id),
                to_checksum_address(verifying_contract),
            ],
        )
    )
