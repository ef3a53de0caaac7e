"""The platform: what one chain has once, whatever the number of regions on it — the TSL.

TSL (TeslaToken) is the platform's token: a fixed supply of 10^9 minted once, in its constructor.
A chain therefore holds exactly one TeslaToken, recorded in ``deployments/<chainId>.json`` as
``platform.TeslaToken``; every region references it (its ``<slug>.TeslaToken`` record carries the
same address and deployment) and keeps its own currency, DAO, WATT, market, storage and C-REV.

:func:`deploy_platform` is idempotent: it reuses the recorded TSL when a TeslaToken is at that
address on the connected chain, and deploys one (its whole supply to the platform holder, by
default the deployer) only when there is none. :func:`check_tsl` refuses an address that holds no
code or no TeslaToken, with a one-line :class:`~gridcoop_sdk.exceptions.ConfigError`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from . import deployments
from .contracts import at, deploy
from .exceptions import ConfigError

log = logging.getLogger("gridcoop.platform")

#: Record prefix of the platform's contracts (reserved: no region may use it as its slug).
PLATFORM = "platform"
#: The chain's single TSL in the deployment records.
TSL_RECORD = f"{PLATFORM}.TeslaToken"
#: TSL's fixed total supply in base units (10^9 TSL, 18 decimals).
TSL_SUPPLY = 10**9 * 10**18


def check_tsl(w3: Web3, address: str, *, source: str | None = None, key: str | None = None) -> Contract:
    """The TeslaToken at ``address``, or a one-line :class:`ConfigError` saying why it is not one.

    A TeslaToken here is a contract whose ``TOTAL_SUPPLY()`` and ``totalSupply()`` are both the
    fixed 10^9 TSL (18 decimals): a token with another supply, or one that can mint, is refused.
    """
    if not Web3.is_address(address):
        raise ConfigError(f"{address!r} is not an address", source=source, key=key)
    addr = Web3.to_checksum_address(address)
    if not w3.eth.get_code(addr):
        raise ConfigError(f"no contract at {addr} on chain {w3.eth.chain_id} (TSL must be the chain's deployed "
                          "TeslaToken; omit the address to use the chain's recorded platform TSL)",
                          source=source, key=key)
    tsl = at(w3, "TeslaToken", addr)
    try:
        cap = int(tsl.functions.TOTAL_SUPPLY().call())
        supply = int(tsl.functions.totalSupply().call())
        decimals = int(tsl.functions.decimals().call())
    except Exception as exc:  # noqa: BLE001 - any failing call means "not a TeslaToken"
        raise ConfigError(f"the contract at {addr} is not a TeslaToken (its TOTAL_SUPPLY() or totalSupply() "
                          f"reverted: {type(exc).__name__})", source=source, key=key) from None
    if (cap, supply, decimals) != (TSL_SUPPLY, TSL_SUPPLY, 18):
        raise ConfigError(f"the contract at {addr} is not a TeslaToken with the fixed supply of 10^9 TSL "
                          f"(TOTAL_SUPPLY {cap}, totalSupply {supply}, decimals {decimals})", source=source, key=key)
    return tsl


def recorded_tsl(w3: Web3, directory: Path | None = None) -> Contract | None:
    """The chain's recorded platform TSL if a TeslaToken is at that address now, else ``None``
    (no record, or a record of an earlier chain with the same id: a restarted anvil)."""
    rec = deployments.load(w3.eth.chain_id, directory).get(TSL_RECORD)
    if not rec:
        return None
    try:
        return check_tsl(w3, rec["address"])
    except ConfigError as exc:
        log.warning("ignoring the stale record %s: %s", TSL_RECORD, exc)
        return None


def deploy_platform(
    w3: Web3,
    deployer: LocalAccount,
    *,
    holder: str | None = None,
    directory: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Contract:
    """The chain's single TSL: the recorded one when it is there, else deployed now.

    A new TeslaToken mints its whole fixed supply to ``holder`` (default: the deployer), the
    platform holder from which regions are funded, and is recorded as ``platform.TeslaToken``.
    Calling this again (or from another region's deployment) deploys nothing.
    """
    say = progress or (lambda msg: log.info("%s", msg))
    tsl = recorded_tsl(w3, directory)
    if tsl is not None:
        say(f"platform TSL: the chain's TeslaToken at {tsl.address} (total supply 10^9, not deployed again)")
        return tsl
    holder = Web3.to_checksum_address(holder or deployer.address)
    tsl = deploy(w3, deployer, "TeslaToken", holder, record_as=TSL_RECORD, directory=directory)
    say(f"platform TSL deployed at {tsl.address}: the fixed supply of 10^9 TSL to the platform holder {holder}")
    return tsl


def platform_tsl(
    w3: Web3,
    deployer: LocalAccount,
    address: str | None = None,
    *,
    directory: Path | None = None,
    progress: Callable[[str], None] | None = None,
    source: str | None = None,
) -> Contract:
    """``address`` checked as a TeslaToken (and recorded as the platform's), or the chain's platform
    TSL (deployed if absent): what a region deployment uses."""
    if address is None:
        return deploy_platform(w3, deployer, directory=directory, progress=progress)
    tsl = check_tsl(w3, address, source=source, key="platform.tsl_address")
    rec = deployments.load(w3.eth.chain_id, directory).get(TSL_RECORD)
    if not rec or Web3.to_checksum_address(rec["address"]) != tsl.address:
        if rec and recorded_tsl(w3, directory) is not None:
            raise ConfigError(f"{tsl.address} is not the chain's platform TSL {rec['address']} (one TSL per chain)",
                              source=source, key="platform.tsl_address")
        record_reference(w3, TSL_RECORD, tsl.address, directory)
    return tsl


def record_reference(w3: Web3, name: str, address: str, directory: Path | None = None) -> None:
    """Record ``name`` for an existing contract at ``address``, with the block and transaction that
    created it when the records know them (else block 0 and no transaction)."""
    data = deployments.load(w3.eth.chain_id, directory)
    known = next((r for r in data.values() if Web3.to_checksum_address(r["address"]) ==
                  Web3.to_checksum_address(address) and r.get("tx")), None)
    block, tx = (known["block"], known["tx"]) if known else (0, "")
    deployments.record(w3.eth.chain_id, name, Web3.to_checksum_address(address), block, tx, directory)
