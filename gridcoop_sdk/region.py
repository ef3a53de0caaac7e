"""Deploying a gridcoop region: the contract suite of one community, recorded per chain.

For now a region is its two energy-economy tokens (WATT and TSL); later components (meter
registry, market, storage, DAO, C-REV) are added here so that one call deploys a whole region.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from .contracts import deploy

log = logging.getLogger("gridcoop.region")


@dataclass
class Region:
    name: str
    contracts: dict[str, Contract] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Contract:
        return self.contracts[key]

    def addresses(self) -> dict[str, str]:
        return {k: c.address for k, c in self.contracts.items()}


def deploy_region(
    w3: Web3,
    deployer: LocalAccount,
    *,
    name: str = "default",
    treasury: str | None = None,
    directory: Path | None = None,
) -> Region:
    """Deploy a region's contracts from ``deployer`` and record them as ``<name>.<Contract>``.

    ``treasury`` receives TSL's fixed supply (default: the deployer, until the DAO exists).
    """
    region = Region(name)
    treasury = treasury or deployer.address

    def _deploy(contract: str, *args: object) -> Contract:
        c = deploy(w3, deployer, contract, *args, record_as=f"{name}.{contract}", directory=directory)
        log.info("deployed %s.%s at %s", name, contract, c.address)
        region.contracts[contract] = c
        return c

    _deploy("WattToken", deployer.address)
    _deploy("TeslaToken", treasury)
    return region
