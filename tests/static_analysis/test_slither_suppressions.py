"""Every inline Slither suppression in the deployed contracts names its detector, says why after
``--``, and is recorded in docs/static-analysis.md's suppression table (file, function, detector).

No Slither run: this reads the sources, so it is instant and catches a silent new disable.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"
DOC = ROOT / "docs" / "static-analysis.md"
TEST_ONLY = re.compile(r"(^|/)(mocks|test|testing|\.cache)/")
DISABLE = re.compile(r"//\s*slither-disable-(next-line|line|start|end)\b(.*)$")
DETECTORS = re.compile(r"^\s*([a-z0-9_,-]+)\s*(?:--\s*(.*))?$")


def _suppressions() -> list[tuple[str, int, str, str]]:
    found = []
    for path in sorted(CONTRACTS.rglob("*.sol")):
        rel = path.relative_to(CONTRACTS).as_posix()
        if TEST_ONLY.search(rel):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            m = DISABLE.search(line)
            if m:
                found.append((rel, number, m.group(1), m.group(2)))
    return found


def _doc_rows() -> list[str]:
    text = DOC.read_text()
    table = text[text.index("| file:function | detector | why it is safe |"):]
    return [row for row in table.splitlines() if row.startswith("|")][2:]


def test_the_merged_contracts_have_suppressions_to_check():
    assert len(_suppressions()) >= 10, "the scan found no slither-disable comments: did contracts/ move?"


@pytest.mark.parametrize(("rel", "number", "kind", "rest"), _suppressions(),
                         ids=lambda v: v if isinstance(v, str) and v.endswith(".sol") else None)
def test_each_suppression_names_a_detector_gives_a_reason_and_is_documented(rel, number, kind, rest):
    where = f"contracts/{rel}:{number}"
    m = DETECTORS.match(rest)
    assert m, f"{where}: a slither-disable must name its detector(s), e.g. `-next-line unused-return -- why`"
    detectors, reason = m.group(1).split(","), m.group(2)
    assert "all" not in detectors, f"{where}: disable named detectors, never `all`"
    if kind != "end":
        assert reason and len(reason.split()) >= 3, f"{where}: give the reason after `--` on the same comment"
    rows = [row for row in _doc_rows() if f"`{rel.split('/')[-1]}" in row or f"`{rel}" in row]
    for detector in detectors:
        assert any(f"`{detector}`" in row for row in rows), (
            f"{where}: `{detector}` is suppressed but docs/static-analysis.md has no row for {rel} with it"
        )
