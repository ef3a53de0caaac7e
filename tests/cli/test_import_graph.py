"""The layering: the SDK (gridcoop_sdk) is a library that imports no application and holds no
command line; the services (keeper, meter_bridge) import neither the demo nor the command tree;
every command-line module lives in gridcoop/cli/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPLICATIONS = {"keeper", "meter_bridge", "coop_demo", "gridcoop"}


def _imports(pkg: str) -> dict[str, set[str]]:
    """``{module file: {top-level names it imports}}`` for every module of ``pkg`` (relative imports
    resolve inside the package)."""
    out: dict[str, set[str]] = {}
    files = sorted((ROOT / pkg).rglob("*.py"))
    assert files, pkg
    for f in files:
        names: set[str] = set()
        for node in ast.walk(ast.parse(f.read_text(), filename=str(f))):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level == 0 and node.module:
                    names.add(node.module)
                elif node.level:
                    names.add(pkg)
        out[str(f.relative_to(ROOT))] = names
    return out


def _top(name: str) -> str:
    return name.split(".")[0]


def test_the_sdk_imports_no_application_and_no_command_line_library():
    bad = {f: sorted(n for n in names if _top(n) in APPLICATIONS or _top(n) == "click")
           for f, names in _imports("gridcoop_sdk").items()}
    assert {f: n for f, n in bad.items() if n} == {}


def test_the_sdk_holds_no_command_line_module():
    files = [p.name for p in (ROOT / "gridcoop_sdk").rglob("*.py")]
    assert not [f for f in files if "cli" in f or f == "__main__.py"]


@pytest.mark.parametrize("pkg", ["keeper", "meter_bridge"])
def test_services_do_not_import_the_demo_or_the_command_tree(pkg):
    bad = {f: sorted(n for n in names if _top(n) == "coop_demo" or n.startswith("gridcoop.cli") or n == "gridcoop"
                     or _top(n) == "click")
           for f, names in _imports(pkg).items()}
    assert {f: n for f, n in bad.items() if n} == {}
    assert not [p for p in (ROOT / pkg).rglob("*.py") if p.name in ("cli.py", "__main__.py")]


def test_the_demo_does_not_import_the_command_tree():
    bad = {f: sorted(n for n in names if n.startswith("gridcoop.cli") or _top(n) == "click")
           for f, names in _imports("coop_demo").items()}
    assert {f: n for f, n in bad.items() if n} == {}


def test_every_click_command_lives_in_gridcoop_cli():
    users = sorted(f for pkg in ("gridcoop_sdk", "keeper", "meter_bridge", "coop_demo", "gridcoop")
                   for f, names in _imports(pkg).items() if "click" in {_top(n) for n in names})
    assert users and all(f.startswith("gridcoop/cli/") for f in users), users


def test_console_scripts_point_into_the_tree():
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["gridcoop"] == "gridcoop.cli:main"
    assert all(v.startswith("gridcoop.cli") for v in scripts.values()), scripts
