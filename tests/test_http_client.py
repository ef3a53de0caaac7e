"""One HTTP client library in our code: httpx. ``requests`` stays installed (web3's HTTPProvider uses
it) but none of our modules imports it; web3's HTTP errors are caught as the ``OSError`` they are."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
OUR_CODE = ("gridcoop_sdk", "keeper", "meter_bridge", "coop_demo", "scripts", "bench", "tests", "tools")
OTHER_CLIENTS = {"requests", "urllib3", "aiohttp", "urllib.request", "http.client"}


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def test_our_code_imports_no_http_client_but_httpx():
    found = []
    for top in OUR_CODE:
        for path in sorted((ROOT / top).rglob("*.py")):
            if path == Path(__file__).resolve():  # this test imports requests to check its exceptions
                continue
            for line, name in _imports(path):
                if any(name == c or name.startswith(c + ".") for c in OTHER_CLIENTS):
                    found.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert found == [], "use httpx: " + "; ".join(found)


def test_httpx_is_declared_and_requests_is_not():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {d.split("=")[0].split("<")[0].split(">")[0].split("[")[0].strip().lower() for d in deps}
    assert "httpx" in names and "requests" not in names


def test_web3_http_errors_are_oserrors():
    """What lets ``connect``, the relay and the direct pusher catch node errors without requests."""
    assert issubclass(requests.exceptions.RequestException, OSError)
