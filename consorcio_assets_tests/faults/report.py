"""The fault suite's table: case, expected, observed, data lost — printed at the end of the session and written
to test-artifacts/faults.md.

A pytest plugin registered by the tests' root conftest (`pytest_plugins`): under pytest-xdist the tests run in
worker processes, and only plugins the controller loads at start-up see every worker's reports. A test takes
the `fault_case` fixture, names its case and what it expects, and says what it observed and how many rows or
files were lost; the row travels to the controller in the test report's `user_properties`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

PROPERTY = "fault_case"
ARTIFACT = Path(__file__).resolve().parents[2] / "test-artifacts" / "faults.md"


@dataclass
class FaultCase:
    case: str = ""
    expected: str = ""
    observed: str = ""
    lost: int | None = None  # rows or files of the previous good version (or of the source) missing afterwards

    def expect(self, case: str, expected: str) -> FaultCase:
        self.case, self.expected = case, expected
        return self

    def saw(self, observed: str, lost: int) -> None:
        self.observed, self.lost = observed, lost


@pytest.fixture
def fault_case(request):
    """Declare the case (`expect`) and, once checked, what happened (`saw`); the row is reported at teardown."""
    row = FaultCase()
    yield row
    request.node.user_properties.append((PROPERTY, json.dumps(asdict(row))))


_rows: dict[str, dict] = {}  # nodeid → the row its test reported (in the controller)
_outcomes: dict[str, str] = {}


def pytest_runtest_logreport(report) -> None:
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _outcomes[report.nodeid] = report.outcome
    for name, value in report.user_properties:
        if name == PROPERTY:
            _rows[report.nodeid] = json.loads(value)


def _cell(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def table_lines() -> list[str]:
    lines = ["| case | expected | observed | data lost |", "| --- | --- | --- | --- |"]
    for nodeid in sorted(_rows):
        row, outcome = _rows[nodeid], _outcomes.get(nodeid, "passed")
        observed = row["observed"] if outcome == "passed" else f"TEST {outcome.upper()}: {row['observed'] or '-'}"
        lost = "?" if row["lost"] is None else row["lost"]
        lines.append(f"| {_cell(row['case'] or nodeid)} | {_cell(row['expected'])} | {_cell(observed)} | {lost} |")
    return lines


def pytest_terminal_summary(terminalreporter, config) -> None:
    if hasattr(config, "workerinput") or not _rows:
        return  # an xdist worker, or a session without fault cases
    lines = table_lines()
    terminalreporter.section("fault and bad-input suite")
    for line in lines:
        terminalreporter.write_line(line)
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(
        "# Fault and bad-input suite\n\nWritten by `consorcio_assets_tests/faults` at the end of "
        "the test session. *Data lost*: rows or files of the previous good version (or of the "
        "source) missing or changed afterwards; it must be 0.\n\n" + "\n".join(lines) + "\n"
    )
    terminalreporter.write_line(f"written to {ARTIFACT}")
