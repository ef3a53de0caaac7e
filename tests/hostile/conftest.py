"""Hostile-input tests: real anvil, real HTTP (uvicorn), real CLIs. ape's isolation is switched off
(these tests run their own anvil on a free port, never ape's default network)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _function_isolation():
    yield


@pytest.fixture(scope="session")
def _session_isolation():
    yield


@pytest.fixture(scope="package")
def _package_isolation():
    yield


@pytest.fixture(scope="module")
def _module_isolation():
    yield


@pytest.fixture(scope="class")
def _class_isolation():
    yield
