"""Hostile-input tests: real anvil, real HTTP (uvicorn), real CLIs. ape's isolation is switched off
(these tests run their own anvil on a free port, never ape's default network)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _function_isolation():
    yield
