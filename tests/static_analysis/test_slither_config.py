"""The Slither gate itself: slither.config.json fails on medium/high findings, ignores test-only
contracts, honours inline `slither-disable-next-line`, and every exclusion is justified in
docs/static-analysis.md.

Each analysis runs the real slither + crytic-compile + forge (solc-js facade) on a tiny Foundry
project in a temporary folder that uses the repository's own slither.config.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "slither.config.json"
DOC = ROOT / "docs" / "static-analysis.md"
SLITHER = Path(sys.executable).with_name("slither")
FORGE = shutil.which("forge") or str(ROOT / "node_modules" / ".bin" / "forge")

MEDIUM = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;
contract {name} {{
    /// @notice divide-before-multiply: a Medium impact finding.
    function ratio(uint256 a, uint256 b) external pure returns (uint256) {{
        {disable}return a / b * 1000;
    }}
}}
"""


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "foundry.toml").write_text(
        "[profile.default]\n"
        'src = "contracts"\nout = "out"\ncache_path = "forge-cache"\n'
        f'solc = "{ROOT / "tools" / "solc" / "solc"}"\n'
        "offline = true\nauto_detect_solc = false\n"
    )
    shutil.copy(CONFIG, tmp_path / "slither.config.json")
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def _slither(project: Path) -> tuple[int, list[dict]]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(FORGE).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        [str(SLITHER), ".", "--json", "-"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    try:
        out = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"slither printed no JSON (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    assert out["success"], out.get("error")
    return proc.returncode, out.get("results", {}).get("detectors", [])


def _files(findings: list[dict]) -> set[str]:
    return {e["source_mapping"]["filename_relative"] for f in findings for e in f["elements"]}


@pytest.mark.skipif(not SLITHER.exists(), reason="slither-analyzer not installed in this venv")
def test_medium_finding_fails_and_test_only_contracts_are_ignored(tmp_path):
    project = _project(
        tmp_path,
        {
            "contracts/market/Pricing.sol": MEDIUM.format(name="Pricing", disable=""),
            "contracts/mocks/MockPricing.sol": MEDIUM.format(name="MockPricing", disable=""),
            "contracts/test/TestPricing.sol": MEDIUM.format(name="TestPricing", disable=""),
            "contracts/market/mocks/MarketMock.sol": MEDIUM.format(name="MarketMock", disable=""),
            "contracts/meters/testing/MeterProbe.sol": MEDIUM.format(name="MeterProbe", disable=""),
        },
    )
    code, findings = _slither(project)
    assert code != 0, "a Medium finding must fail the gate"
    assert [f["check"] for f in findings if f["impact"] in ("Medium", "High")] == ["divide-before-multiply"]
    assert _files(findings) == {"contracts/market/Pricing.sol"}


@pytest.mark.skipif(not SLITHER.exists(), reason="slither-analyzer not installed in this venv")
def test_inline_disable_with_reason_passes(tmp_path):
    disable = (
        "// slither-disable-next-line divide-before-multiply -- reason: test of the triage path\n        "
    )
    project = _project(tmp_path, {"contracts/Pricing.sol": MEDIUM.format(name="Pricing", disable=disable)})
    code, findings = _slither(project)
    assert [f["check"] for f in findings if f["impact"] in ("Medium", "High")] == []
    assert code == 0


def test_every_excluded_detector_is_justified_in_the_docs():
    config = json.loads(CONFIG.read_text())
    excluded = [d.strip() for d in (config.get("detectors_to_exclude") or "").split(",") if d.strip()]
    assert config.get("fail_on") in ("medium", "low", "pedantic"), "the gate must fail on medium findings"
    doc = DOC.read_text()
    missing = [d for d in excluded if f"`{d}`" not in doc]
    assert not missing, f"excluded detectors without a justification row in {DOC.name}: {missing}"
