"""Precision the migration changes on purpose is counted and reported, never hidden.

* DATETIME2(7) and DATETIMEOFFSET(7) keep 100 ns; DMS and PostgreSQL keep microseconds, so every value
  with a non-zero 100 ns digit loses it: expected, reported as a WARN with the count per column.
* NVARCHAR(MAX)/VARCHAR(MAX) are LOBs: in limited-LOB mode DMS cuts them at LobMaxSize. A LOB shorter in
  Aurora than in the source is data lost: an ERROR naming the rows.
"""

from __future__ import annotations

import sqlalchemy as sa

from consorcio_assets.catalog import Column, Table
from consorcio_assets.checks import hashdiff
from consorcio_assets.checks import sql as q
from consorcio_assets.checks.outcome import MAX_KEYS, WARN, Outcome, format_key
from consorcio_assets.checks.rows import find, key_labels
from consorcio_assets.checks.sides import Field, Side
from consorcio_assets.common.stages import AURORA

SUB_MICROSECOND, LOB_TRUNCATION = "datetime2_100ns_truncated", "lob_not_truncated"


def hundred_ns_columns(table: Table) -> list[Column]:
    return [c for c in table.columns if c.family in ("timestamp", "timestamptz") and (c.fsp or 0) > 6]


def lob_columns(table: Table) -> list[Column]:
    return [c for c in table.columns if c.family == "lob"]


def has_sub_microsecond(side: Side, clause, column: Column) -> sa.ColumnElement:
    """Whether the source value has a digit below the microsecond (the 7th fractional digit)."""
    c = side.col(clause, column)
    if column.family == "timestamptz" and side.dialect != "mssql":
        return q.substr(c, q.num(27), q.num(1)) != q.text_literal("0")  # 'YYYY-MM-DD hh:mm:ss.fffffff +hh:mm'
    return q.nanos_below_us(c) != 0


def sub_microsecond_queries(source: Side, table: Table) -> tuple[sa.Select, sa.Select]:
    """(values with a 100 ns digit per column, keys of the rows holding any)."""
    clause = source.table(table)
    flags = [has_sub_microsecond(source, clause, c) for c in hundred_ns_columns(table)]
    keys = [
        source.col(clause, table.column(k)).label(label)
        for k, label in zip(table.primary_key, key_labels(len(table.primary_key)))
    ]
    counts = sa.select(*(sa.func.sum(sa.case((f, 1), else_=0)) for f in flags)).select_from(clause)
    return counts, sa.select(*keys).select_from(clause).where(sa.or_(*flags))


def sub_microsecond(source: Side, table: Table) -> Outcome:
    """Count, per column, the source values whose 100 ns digit DMS drops (WARN when any)."""
    columns = hundred_ns_columns(table)
    counts_q, rows_q = sub_microsecond_queries(source, table)
    with source.engine.connect() as conn:
        per_column = conn.execute(counts_q).one()
        found = find(conn, rows_q, table)
    counts = {f"{c.name}_values": int(n or 0) for c, n in zip(columns, per_column)}
    counts["rows_affected"] = found.count
    names = ", ".join(f"{c.sqlserver_type_sql} {c.name}" for c in columns)
    if not found.count:
        return Outcome(
            AURORA,
            table,
            SUB_MICROSECOND,
            True,
            f"no value of {names} has a 100 ns digit to lose",
            severity=WARN,
            counts=counts,
        )
    detail = ", ".join(f"{c.name}: {int(n or 0):,}" for c, n in zip(columns, per_column))
    summary = f"{found.count:,} rows lose their 100 ns digit (kept to the microsecond, as DMS writes them): {detail}"
    return Outcome(
        AURORA, table, SUB_MICROSECOND, False, summary, severity=WARN, counts=counts, keys=found.keys, sql=found.sql
    )


def _lengths(columns: list[Column]):
    def fields(side: Side, clause) -> list[Field]:
        return [Field(c.name, q.as_text(q.char_length(side.col(clause, c)))) for c in columns]

    return fields


def lengths_query(p: hashdiff.Projection, columns: list[Column], segments: list[int]) -> sa.Select:
    lengths = [q.char_length(p.side.col(p.clause, c)).label(f"n{i}") for i, c in enumerate(columns)]
    keys = [f.expr.label(f"k{i}") for i, f in enumerate(p.keys)]
    return sa.select(*keys, *lengths).select_from(p.clause).where(p.segment.in_([q.num(s) for s in segments]))


def _lengths_by_key(p: hashdiff.Projection, columns: list[Column], segments: list[int]) -> dict[tuple, tuple]:
    n = len(p.keys)
    with p.side.engine.connect() as conn:
        return {tuple(r[:n]): tuple(r[n:]) for r in conn.execute(lengths_query(p, columns, segments))}


def lob_projection(side: Side, table: Table) -> hashdiff.Projection:
    """The LOB lengths of each row, as a hashdiff projection."""
    return hashdiff.projection(side, table, _lengths(lob_columns(table)))


def lob_truncation(source: Side, target: Side, table: Table) -> Outcome:
    """LOB lengths per row, diffed like hashdiff; rows whose LOB is shorter in Aurora were truncated."""
    columns = lob_columns(table)
    src = lob_projection(source, table)
    tgt = hashdiff.projection(target, table, _lengths(columns))
    result = hashdiff.diff(src, tgt)
    counts = {"rows_compared": result.source_rows, "rows_with_other_length": len(result.changed)}
    names = ", ".join(c.name for c in columns)
    if not result.changed:
        return Outcome(
            AURORA, table, LOB_TRUNCATION, True, f"every {names} value has its full source length", counts=counts
        )
    segments = sorted({seg for seg, _ in result.changed})
    before, after = (_lengths_by_key(p, columns, segments) for p in (src, tgt))
    changed = {key for _, key in result.changed}
    truncated = sorted(
        k
        for k in changed
        if any(a is not None and (b is None or b < a) for a, b in zip(before.get(k, ()), after.get(k, ())))
    )
    counts.update(rows_truncated=len(truncated))
    shown = (truncated or sorted(changed))[:MAX_KEYS]
    key_names = [f.label for f in src.keys]
    summary = (
        f"{len(truncated):,} rows have {names} shorter in Aurora than in the source (LOB truncated: data lost)"
        if truncated
        else f"{len(changed):,} rows have {names} of another length than in the source"
    )
    return Outcome(
        AURORA,
        table,
        LOB_TRUNCATION,
        False,
        summary,
        counts=counts,
        keys=[format_key(table, k, key_names) for k in shown],
        sql=q.compile_sql(hashdiff.keys_query(tgt, shown), target.engine),
    )
