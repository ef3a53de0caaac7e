"""Compiled-artifact loading (one place for ABIs, bytecode and custom-error decoding).

Artifacts come from the manifest that ``ape compile`` writes (``.build/__local__.json``), so the
plain pytest run, the services and ``ape test``/``ape run`` all use the same compiled code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import function_abi_to_4byte_selector, keccak, to_checksum_address

from .exceptions import ArtifactError
from .paths import build_manifest


@dataclass(frozen=True)
class ContractArtifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    runtime_bytecode: str


def _abi_signature(entry: dict[str, Any]) -> str:
    def typ(inp: dict[str, Any]) -> str:
        t = inp["type"]
        if t.startswith("tuple"):
            inner = ",".join(typ(c) for c in inp.get("components", []))
            return f"({inner}){t[len('tuple'):]}"
        return t

    return f"{entry['name']}({','.join(typ(i) for i in entry.get('inputs', []))})"


@lru_cache(maxsize=4)
def _load_manifest(path: str, mtime: float) -> dict[str, ContractArtifact]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise ArtifactError(
            f"compiled artifacts not found at {path}: run `make build` (or `ape compile`) first"
        ) from exc
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"compiled artifacts at {path} are not valid JSON: {exc}") from exc
    out: dict[str, ContractArtifact] = {}
    for name, ct in data.get("contractTypes", {}).items():
        out[name] = ContractArtifact(
            name=name,
            abi=ct.get("abi", []),
            bytecode=(ct.get("deploymentBytecode") or {}).get("bytecode", "0x"),
            runtime_bytecode=(ct.get("runtimeBytecode") or {}).get("bytecode", "0x"),
        )
    return out


def artifacts() -> dict[str, ContractArtifact]:
    """All compiled contract types by name."""
    path = build_manifest()
    mtime = path.stat().st_mtime if path.exists() else 0.0
    return _load_manifest(str(path), mtime)


def artifact(name: str) -> ContractArtifact:
    """One contract's artifact; raises :class:`ArtifactError` naming what exists if missing."""
    arts = artifacts()
    if name not in arts:
        raise ArtifactError(
            f"no compiled contract named {name!r} in {build_manifest()} "
            f"(have: {', '.join(sorted(arts)) or 'none'})"
        )
    return arts[name]


def abi(name: str) -> list[dict[str, Any]]:
    return artifact(name).abi


@lru_cache(maxsize=4)
def _error_table(key: int) -> dict[bytes, tuple[str, list[dict[str, Any]]]]:
    table: dict[bytes, tuple[str, list[dict[str, Any]]]] = {}
    for art in artifacts().values():
        for entry in art.abi:
            if entry.get("type") == "error":
                sel = keccak(text=_abi_signature(entry))[:4]
                table[sel] = (entry["name"], entry.get("inputs", []))
    return table


def decode_error(data: bytes | str | None) -> tuple[str, dict[str, Any]] | None:
    """Decode revert data into ``(error name, {arg: value})`` using every project ABI.

    Knows the standard ``Error(string)`` and ``Panic(uint256)`` too. Returns ``None`` when the
    data matches nothing.
    """
    if data is None:
        return None
    if isinstance(data, str):
        h = data[2:] if data.startswith("0x") else data
        try:
            data = bytes.fromhex(h)
        except ValueError:
            return None
    if len(data) < 4:
        return None
    sel, body = data[:4], data[4:]
    if sel == bytes.fromhex("08c379a0"):
        return "Error", {"message": abi_decode(["string"], body)[0]}
    if sel == bytes.fromhex("4e487b71"):
        return "Panic", {"code": abi_decode(["uint256"], body)[0]}
    table = _error_table(id(artifacts()))
    if sel not in table:
        return None
    name, inputs = table[sel]
    types = [_abi_signature({"name": "", "inputs": [i]})[1:-1] for i in inputs]
    try:
        values = abi_decode(types, body)
    except Exception:
        return name, {"raw": "0x" + body.hex()}
    return name, {
        (i.get("name") or f"arg{n}"): (to_checksum_address(v) if i["type"] == "address" else v)
        for n, (i, v) in enumerate(zip(inputs, values, strict=True))
    }


def selectors(name: str) -> dict[str, str]:
    """``{"transfer(address,uint256)": "0xa9059cbb", …}`` for a contract's functions."""
    return {
        _abi_signature(e): "0x" + function_abi_to_4byte_selector(e).hex()
        for e in abi(name)
        if e.get("type") == "function"
    }
