"""Column aggregates reconciliation (as Google's Data Validation Tool does it), computed inside each database.

Per table: SUM of every numeric, money and bit column, MIN/MAX of every date and timestamp (as canonical
text, so DATETIME2(7) is compared at the microsecond DMS keeps), COUNT of NULLs of every column, SUM of
text lengths (CHAR without padding) and of binary lengths. One query per side, compared exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import sqlalchemy as sa

from consorcio_assets.catalog import Column, Table
from consorcio_assets.checks import sql as q
from consorcio_assets.checks.outcome import Outcome
from consorcio_assets.checks.sides import Side
from consorcio_assets.common.stages import AURORA

CHECK = "aggregates_match_source"
_NUMERIC = ("int", "decimal")
_TEMPORAL = {"date": q.date_text, "time": q.time_text, "timestamp": q.timestamp_text}
_TEXT = ("char", "text", "lob")


@dataclass(frozen=True)
class Metric:
    name: str  # e.g. "sum(ValorCredito)"
    column: Column
    build: Callable[[Side, sa.FromClause], sa.ColumnElement]

    def expr(self, side: Side, clause) -> sa.ColumnElement:
        return self.build(side, clause)


def _nulls(column: Column):
    return lambda side, clause: sa.func.sum(sa.case((side.col(clause, column).is_(None), 1), else_=0))


def _sum(column: Column):
    if column.family == "bool":
        return lambda side, clause: sa.func.sum(sa.case((side.flag(clause, column), 1), else_=0))
    return lambda side, clause: sa.func.sum(side.col(clause, column))


def _extreme(column: Column, fn):
    if column.family == "timestamptz":
        return lambda side, clause: q.timestamp_text(fn(side.utc(clause, column)))
    fmt = _TEMPORAL[column.family]
    return lambda side, clause: fmt(fn(side.col(clause, column)))


def _text_length(column: Column):
    return lambda side, clause: sa.func.sum(q.char_length(side.fields(clause, column)[0].expr))


def _octets(column: Column):
    return lambda side, clause: sa.func.sum(q.octet_length(side.col(clause, column)))


def _offset_sum(column: Column):
    return lambda side, clause: sa.func.sum(side.offset_minutes(clause, column))


def metrics(table: Table) -> list[Metric]:
    """The aggregates compared for a table, in a stable order."""
    out: list[Metric] = []
    for c in table.columns:
        out.append(Metric(f"nulls({c.name})", c, _nulls(c)))
        if c.family in _NUMERIC or c.family == "bool":
            out.append(Metric(f"sum({c.name})", c, _sum(c)))
        if c.family in _TEMPORAL or c.family == "timestamptz":
            out.append(Metric(f"min({c.name})", c, _extreme(c, sa.func.min)))
            out.append(Metric(f"max({c.name})", c, _extreme(c, sa.func.max)))
        if c.family == "timestamptz":
            out.append(Metric(f"sum({c.offset_column})", c, _offset_sum(c)))
        if c.family in _TEXT:
            out.append(Metric(f"sum(length({c.name}))", c, _text_length(c)))
        if c.family == "binary":
            out.append(Metric(f"sum(octet_length({c.name}))", c, _octets(c)))
    return out


def aggregate_query(side: Side, table: Table, chosen: list[Metric]) -> sa.Select:
    clause = side.table(table)
    return sa.select(*(m.expr(side, clause).label(f"m{i}") for i, m in enumerate(chosen))).select_from(clause)


def compute(side: Side, table: Table, chosen: list[Metric]) -> list:
    with side.engine.connect() as conn:
        return list(conn.execute(aggregate_query(side, table, chosen)).one())


def _same(a, b) -> bool:
    return a == b or (a in (None, 0) and b in (None, 0))


def reconcile(source: Side, target: Side, table: Table) -> Outcome:
    """Compare every aggregate; a mismatch names the metric, and its values unless the column is PII."""
    chosen = metrics(table)
    with ThreadPoolExecutor(2) as pool:
        src, tgt = pool.map(lambda side: compute(side, table, chosen), (source, target))
    mismatches = [(m, s, t) for m, s, t in zip(chosen, src, tgt) if not _same(s, t)]
    counts = {"metrics_compared": len(chosen), "metrics_mismatched": len(mismatches)}
    if not mismatches:
        return Outcome(AURORA, table, CHECK, True, f"{len(chosen)} column aggregates equal the source", counts=counts)
    shown = {
        m.name: ("<pii>" if m.column.confidential else {"source": str(s), "target": str(t)}) for m, s, t in mismatches
    }
    names = ", ".join(m.name for m, _, _ in mismatches[:8]) + (" …" if len(mismatches) > 8 else "")
    summary = f"{len(mismatches)} of {len(chosen)} column aggregates differ from the source: {names}"
    sql = q.compile_sql(aggregate_query(target, table, [m for m, _, _ in mismatches]), target.engine)
    return Outcome(AURORA, table, CHECK, False, summary, counts=counts, sql=sql, details={"mismatches": shown})
