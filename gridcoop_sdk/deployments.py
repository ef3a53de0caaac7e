"""Deployment records per chain: ``deployments/<chainId>.json``.

Format: ``{"ContractName": {"address": "0x…", "block": 12, "tx": "0x…"}, …}``. A region's
contracts may carry a prefix (``"kyoto.WattToken"``) so several regions share one chain.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .exceptions import DeploymentError
from .paths import deployments_dir


def path_for(chain_id: int, directory: Path | None = None) -> Path:
    return (directory or deployments_dir()) / f"{int(chain_id)}.json"


def load(chain_id: int, directory: Path | None = None) -> dict[str, dict[str, Any]]:
    p = path_for(chain_id, directory)
    if not p.exists():
        return {}
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise DeploymentError(f"{p} is not valid JSON: {exc}") from exc


def record(
    chain_id: int, name: str, address: str, block: int, tx: str, directory: Path | None = None
) -> None:
    """Add or replace one contract's record (atomic file replace, so a crash leaves no half file)."""
    p = path_for(chain_id, directory)
    p.parent.mkdir(parents=True, exist_ok=True)
    data = load(chain_id, directory)
    data[name] = {"address": address, "block": int(block), "tx": tx}
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=p.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, p)


def address_of(chain_id: int, name: str, directory: Path | None = None) -> str:
    data = load(chain_id, directory)
    if name not in data:
        raise DeploymentError(
            f"no deployment of {name!r} recorded for chain {chain_id} in {path_for(chain_id, directory)}"
            f" (have: {', '.join(sorted(data)) or 'none'})"
        )
    return data[name]["address"]
