"""Helpers for the BatteryStorage tests: the test environment and moving anvil's clock to a slot."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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
    """Make anvil mine the next block at ``ts``; raises if anvil refuses (e.g. ``ts`` not after the latest block).

    A refusal used to pass silently, and the next transaction then landed at whatever time the
    node chose - possibly in another 15-minute slot - which showed up as a confusing failure later.
    """
    reply = w3.provider.make_request("evm_setNextBlockTimestamp", [int(ts)])
    if reply.get("error"):
        latest = w3.eth.get_block("latest")["timestamp"]
        raise RuntimeError(f"anvil refused next block timestamp {ts} (latest block at {latest}): {reply['error']}")


def mine_at(w3, ts: int) -> None:
    """Mine an empty block at ``ts`` (views then see that time)."""
    set_next_timestamp(w3, ts)
    w3.provider.make_request("evm_mine", [])


def next_slot_start(w3, offset: int = 0, slots_ahead: int = 1) -> int:
    """Unix time ``offset`` seconds into the slot ``slots_ahead`` after the latest block's slot."""
    now = w3.eth.get_block("latest")["timestamp"]
    return (now // SLOT + slots_ahead) * SLOT + offset




@contextmanager
def chain_snapshot(w3) -> Iterator[None]:
    """Run a block against the chain and revert every change afterwards (anvil evm_snapshot/evm_revert).

    For hypothesis tests, whose examples share one function-scoped fixture: each example starts
    from the same balances and batteries, so one failing example cannot drain accounts and mask
    the real failure in the examples (and the shrinking) that follow.
    """
    snap = w3.provider.make_request("evm_snapshot", [])["result"]
    try:
        yield
    finally:
        reply = w3.provider.make_request("evm_revert", [snap])
        if reply.get("result") is not True:
            raise RuntimeError(f"anvil could not revert to snapshot {snap}: {reply}")
