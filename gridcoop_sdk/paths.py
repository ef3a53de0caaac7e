"""Where the project's files are: repository root, compiled artifacts, deployments, tools.

Every location can be overridden by an environment variable so an installed package or a test
can point elsewhere:

- ``GRIDCOOP_ROOT``: the project root (default: the folder above this package).
- ``GRIDCOOP_BUILD``: the compiled-artifact manifest (default: ``<root>/.build/__local__.json``,
  written by ``ape compile``; the plain pytest run and ape use the same file).
- ``GRIDCOOP_DEPLOYMENTS``: the folder holding ``<chainId>.json`` (default: ``<root>/deployments``).
- ``GRIDCOOP_ANVIL``: the anvil executable (default: ``<root>/node_modules/.bin/anvil``, then PATH).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def project_root() -> Path:
    env = os.environ.get("GRIDCOOP_ROOT")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parent.parent


def build_manifest() -> Path:
    env = os.environ.get("GRIDCOOP_BUILD")
    return Path(env) if env else project_root() / ".build" / "__local__.json"


def deployments_dir() -> Path:
    env = os.environ.get("GRIDCOOP_DEPLOYMENTS")
    return Path(env) if env else project_root() / "deployments"


def find_tool(name: str) -> str | None:
    """Locate a Foundry tool (``anvil``, ``forge``): env override, node_modules, then PATH."""
    env = os.environ.get(f"GRIDCOOP_{name.upper()}")
    if env:
        return env
    local = project_root() / "node_modules" / ".bin" / name
    if local.exists():
        return str(local)
    return shutil.which(name)
