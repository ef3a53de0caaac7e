"""Who is who in the demo: dev accounts for the operators and households, device keys for meters.

Accounts come from anvil's well-known dev mnemonic (funded with test ETH on the local chain);
meter device keys are derived deterministically from the region and meter name, so a re-run signs
with the same keys. None of these keys may ever hold real value.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from gridcoop_sdk.chain import dev_accounts

#: Dev-mnemonic indices 0..11 are the operators (four per region, up to three regions); households
#: start at 12.
OPERATOR_SLOTS = 12


@dataclass(frozen=True)
class Operators:
    deployer: LocalAccount
    keeper: LocalAccount
    relay: LocalAccount  # pays the gas of relayed meter readings
    utility: LocalAccount  # the grid participant: buys at feed-in, sells at retail, is paid energy debt


def accounts_needed(households_per_region: list[int]) -> int:
    return OPERATOR_SLOTS + sum(households_per_region)


def operators(all_accounts: list[LocalAccount], region_index: int) -> Operators:
    """Region 0 uses accounts 0..3, region 1 uses 4..7 (up to three regions)."""
    base = 4 * region_index
    return Operators(*all_accounts[base:base + 4])


def household_accounts(all_accounts: list[LocalAccount], offset: int, names: list[str]) -> dict[str, LocalAccount]:
    return {name: all_accounts[OPERATOR_SLOTS + offset + i] for i, name in enumerate(names)}


def device_key(region_slug: str, meter_name: str) -> LocalAccount:
    """The meter's own signing key (in a real meter it never leaves the device)."""
    return Account.from_key(keccak(text=f"gridcoop-demo-device:{region_slug}:{meter_name}"))


def load_accounts(n: int) -> list[LocalAccount]:
    return dev_accounts(n)
