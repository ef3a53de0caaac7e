"""Shared fixtures: one real anvil per test session, dev wallets, freshly deployed contracts.

Tests run against a real local chain (anvil from npm), never a mock. Each test that changes
state gets its own contracts (deployment takes milliseconds on anvil) or uses a snapshot.
"""

from __future__ import annotations

import pytest

from gridcoop_sdk import Anvil, dev_accounts
from gridcoop_sdk.contracts import deploy


@pytest.fixture(scope="session")
def anvil():
    with Anvil(accounts=10) as node:
        yield node


@pytest.fixture(scope="session")
def w3(anvil):
    return anvil.w3


@pytest.fixture(scope="session")
def wallets():
    return dev_accounts(10)


@pytest.fixture(scope="session")
def deployer(wallets):
    return wallets[0]


@pytest.fixture
def snapshot(w3):
    """Revert the chain to its state before the test (anvil evm_snapshot/evm_revert)."""
    snap = w3.provider.make_request("evm_snapshot", [])["result"]
    yield
    w3.provider.make_request("evm_revert", [snap])


@pytest.fixture
def deployments_dir(tmp_path, monkeypatch):
    d = tmp_path / "deployments"
    monkeypatch.setenv("GRIDCOOP_DEPLOYMENTS", str(d))
    return d


@pytest.fixture
def watt(w3, deployer, deployments_dir):
    return deploy(w3, deployer, "WattToken", deployer.address)


@pytest.fixture
def tsl(w3, deployer, wallets, deployments_dir):
    return deploy(w3, deployer, "TeslaToken", wallets[9].address)
