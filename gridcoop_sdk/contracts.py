"""Deploying and binding the project's contracts (artifacts + deployments + tx in one call)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from . import deployments
from .artifacts import artifact
from .exceptions import TransactionFailed
from .tx import register_name, revert_from_exception


def at(w3: Web3, name: str, address: str | None = None, *, record_name: str | None = None,
       directory: Path | None = None) -> Contract:
    """Bind contract ``name`` at ``address`` (or at its recorded deployment on this chain)."""
    art = artifact(name)
    if address is None:
        address = deployments.address_of(w3.eth.chain_id, record_name or name, directory)
    c = w3.eth.contract(address=Web3.to_checksum_address(address), abi=art.abi)
    register_name(c.address, name)
    return c


def deploy(
    w3: Web3,
    account: LocalAccount,
    name: str,
    *args: Any,
    record_as: str | None = None,
    directory: Path | None = None,
    record: bool = True,
) -> Contract:
    """Deploy ``name`` with constructor ``args`` from ``account``, wait, and record it."""
    art = artifact(name)
    factory = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    params = {
        "from": account.address,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        "chainId": w3.eth.chain_id,
    }
    try:
        tx = factory.constructor(*args).build_transaction(params)
    except Exception as exc:
        raise revert_from_exception(f"{name}.constructor", exc) from exc
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    if receipt["status"] != 1 or not receipt.get("contractAddress"):
        raise TransactionFailed(f"deploying {name} failed (tx {tx_hash.hex()})", tx_hash=tx_hash.hex())
    if record:
        deployments.record(
            w3.eth.chain_id, record_as or name, receipt["contractAddress"], receipt["blockNumber"],
            "0x" + bytes(tx_hash).hex(), directory,
        )
    return at(w3, name, receipt["contractAddress"])
