"""Check outcomes and their Dagster form: what failed, how many rows, which keys, the SQL to see them.

An outcome never carries a value of a PII column: offending rows are named by their primary key only,
and a key column marked PII is redacted too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from consorcio_assets.catalog import Table
from consorcio_assets.checks.runbook import check_metadata
from consorcio_assets.common.stages import asset_key

ERROR, WARN = "ERROR", "WARN"
#: offending keys kept in metadata; the description names the first few
MAX_KEYS = 20
DESCRIPTION_KEYS = 5


@dataclass
class Outcome:
    """The result of one check on one table at one stage."""

    stage: str
    table: Table
    check: str
    passed: bool
    summary: str  # the rule or the finding, one line, no values
    severity: str = ERROR
    counts: dict[str, int] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)  # first offending primary keys, formatted
    sql: str | None = None  # reproduces the offending rows
    details: dict[str, Any] = field(default_factory=dict)  # extra non-PII facts (numbers, short texts)


def format_key(table: Table, values: Sequence[Any], names: Sequence[str] | None = None) -> str:
    """`SimulacaoId=5, NumeroParcela=3`; a PII key column shows as <redacted>."""
    names = list(names or table.primary_key)
    parts = []
    for name, value in zip(names, values):
        column = table.column_map.get(name)
        shown = "<redacted>" if column is not None and column.confidential else value
        parts.append(f"{name}={shown}")
    return ", ".join(parts)


_QUOTED = re.compile(r"(\"[^\"]*\"|'[^']*'|\)=\([^)]*\))")


def safe_error(err: BaseException) -> str:
    """An exception as one line without quoted literals or `Key (...)=(...)` details (they may be PII)."""
    first = (str(err).strip().splitlines() or [""])[0]
    return f"{type(err).__name__}: {_QUOTED.sub('<…>', first)[:300]}"


def failed_to_run(stage: str, table: Table, check: str, err: BaseException, severity: str = ERROR) -> Outcome:
    return Outcome(stage, table, check, False, f"check could not run: {safe_error(err)}", severity)


def description(outcome: Outcome) -> str:
    text = f"{outcome.table.qualified_target}: {outcome.summary}"
    if outcome.keys:
        more = len(outcome.keys) - DESCRIPTION_KEYS
        text += "; first offending keys: " + "; ".join(outcome.keys[:DESCRIPTION_KEYS]) + (" …" if more > 0 else "")
    return text


def metadata(outcome: Outcome) -> dict[str, Any]:
    meta: dict[str, Any] = {"table": outcome.table.qualified_target, "rule": outcome.summary}
    meta.update({name: dg.MetadataValue.int(int(n)) for name, n in outcome.counts.items()})
    if outcome.keys:
        meta["first_keys"] = dg.MetadataValue.json(outcome.keys[:MAX_KEYS])
    if outcome.sql:
        meta["sql"] = dg.MetadataValue.md(f"```sql\n{outcome.sql}\n```")
    for name, value in outcome.details.items():
        meta[name] = value if isinstance(value, (int, float, str, bool)) else dg.MetadataValue.json(value)
    meta.update(check_metadata(outcome.check))  # what to do when it fails
    return meta


def to_check_result(outcome: Outcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=asset_key(outcome.stage, outcome.table),
        check_name=outcome.check,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.WARN if outcome.severity == WARN else dg.AssetCheckSeverity.ERROR,
        description=description(outcome),
        metadata=metadata(outcome),
    )
