"""Helpers for the BatteryStorage tests: the test environment and moving anvil's clock to a slot."""

from __future__ import annotations

from dataclasses import dataclass

from web3.contract import Contract

SLOT = 900
TSL = 10**18
GRANT = 5 * TSL


@dataclass
class Env:
    w3: object
    watt: Contract
    tsl: Contract
    registry: Contract
    storage: Contract
    battery: int
    deployer: object
    users: list
    owners: list
    platform: object
    marketing: object


def set_next_timestamp(w3, ts: int) -> None:
    w3.provider.make_request("evm_setNextBlockTimestamp", [int(ts)])


def mine_at(w3, ts: int) -> None:
    """Mine an empty block at ``ts`` (views then see that time)."""
    set_next_timestamp(w3, ts)
    w3.provider.make_request("evm_mine", [])


def next_slot_start(w3, offset: int = 0, slots_ahead: int = 1) -> int:
    """Unix time ``offset`` seconds into the slot ``slots_ahead`` after the latest block's slot."""
    now = w3.eth.get_block("latest")["timestamp"]
    return (now // SLOT + slots_ahead) * SLOT + offset


