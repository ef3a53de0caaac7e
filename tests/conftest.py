"""Shared fixtures: one real anvil per test session, dev wallets, freshly deployed contracts.

Tests run against a real local chain (anvil from npm), never a mock. Each test that changes
state gets its own contracts (deployment takes milliseconds on anvil) or uses a snapshot.
"""

from __future__ import annotations

import itertools
import os

import pytest

# ape's pytest plugin starts an anvil of its own in every session; under pytest-xdist each worker is
# a session, so "auto" gives each worker's ape node a free port instead of all of them sharing (and
# the first one to finish stopping) 127.0.0.1:8545. Read by ape-foundry when it connects.
os.environ.setdefault("APE_FOUNDRY_HOST", "auto")

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


@pytest.fixture(scope="session")
def pg_server():
    """One PostgreSQL server per test session (so one per xdist worker), started on first use: Debian's
    postgresql-15 that ``make setup`` unpacks into .tools/, run as an unprivileged user on a loopback port."""
    from gridcoop_sdk.postgres import PostgresServer

    with PostgresServer() as pg:
        yield pg


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """The keeper's database URL, once per backend: an SQLite file, or a fresh database on the
    session's PostgreSQL server. Tests that take it run against both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/keeper.db"
    pg = request.getfixturevalue("pg_server")
    return pg.create_database(f"k_{os.getpid()}_{next(_DB_SEQ)}")


_DB_SEQ = itertools.count()


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


# ape's pytest plugin is loaded in every pytest run and, by default, snapshots and reverts *its*
# own node (anvil on 127.0.0.1:8545) around every test. gridcoop's tests run their own anvil on a
# free port, and the fault-injection tests start and stop nodes; if ape's node is gone, every later
# test would error in set-up. The tests in tests/ape deploy fresh contracts per test and do not
# need the snapshots, so ape's isolation is switched off for the whole suite (ape skips its own
# isolation when these fixture names are overridden).
@pytest.fixture(autouse=True)
def _function_isolation():
    yield


@pytest.fixture(scope="class")
def _class_isolation():
    yield


@pytest.fixture(scope="module")
def _module_isolation():
    yield


@pytest.fixture(scope="package")
def _package_isolation():
    yield


@pytest.fixture(scope="session")
def _session_isolation():
    yield
