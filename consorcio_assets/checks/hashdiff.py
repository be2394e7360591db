"""Row-level reconciliation across databases, as data-diff's hashdiff does it.

Both databases compute, per segment of the key range, a row count and the sum of a 60-bit MD5 hash of
each row's canonical text (`sides.Side.fields`). Equal segments are done; a differing segment is split
again (`fanout` ways) until it holds at most `leaf_rows` rows, and only then are rows fetched: the key
plus one hash per field, so the comparison names the differing keys and counts mismatches per column
without ever moving a value out of the database. A faithful 1M-row table costs one grouped scan per
side; one changed centavo adds two small range scans.

Integer first key columns give ordered segments that follow the primary-key index; uuid and char keys
are segmented by a hash of the whole key (`Side.segment_value`).

SQL Server 2017 has no UTF-8 collation: it hashes NVARCHAR text in its VARCHAR code page, so a text with
any character beyond ASCII hashes differently there than in PostgreSQL or DuckDB. With `by_value` (on by
default when either side is SQL Server), such rows leave the checksums: a segment holding any is split down
to its leaf, where their non-ASCII text fields are compared by value (in memory, never reported) and their
other fields by hash; `rows_compared_by_value` says how many took that path.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from consorcio_assets.catalog import Table
from consorcio_assets.checks import sql as q
from consorcio_assets.checks.outcome import MAX_KEYS, Outcome, format_key
from consorcio_assets.checks.sides import Field, Side
from consorcio_assets.common.stages import AURORA

HASH_SPACE = 1 << q.HASH_BITS


@dataclass(frozen=True)
class Projection:
    """What one side compares for a table: the segment value, the key fields and the row fields."""

    side: Side
    table: Table
    clause: sa.FromClause
    segment: sa.ColumnElement
    ordered: bool
    keys: list[Field]
    fields: list[Field]
    by_value: bool = False
    text: tuple[bool, ...] = ()  # per field: a text that may hold non-ASCII characters

    @property
    def row_hash(self) -> sa.ColumnElement:
        return q.hash60(q.row_text([f.expr for f in self.fields]))

    @property
    def plain(self) -> sa.ColumnElement:
        """Whether every text field of the row is ASCII (the row's hash means the same on both sides)."""
        texts = [q.ascii_only(f.expr) for f, is_text in zip(self.fields, self.text) if is_text]
        return sa.and_(*texts) if texts else sa.true()

    def in_range(self, lo: int, hi: int) -> sa.ColumnElement:
        return self.segment.between(q.num(lo), q.num(hi))


_TEXT_FAMILIES = ("char", "text", "lob")


def projection(
    side: Side, table: Table, fields: Callable[[Side, sa.FromClause], list[Field]] | None = None, by_value: bool = False
) -> Projection:
    """The table's projection on a side; `fields` picks other fields than the full canonical row;
    `by_value`: rows with non-ASCII text are compared by value at the leaves (SQL Server 2017 on a side)."""
    clause = side.table(table)
    segment, ordered = side.segment_value(clause, table)
    chosen = fields(side, clause) if fields else side.row_fields(clause, table)
    families = {c.name: c.family for c in table.columns}
    text = tuple(families.get(f.label) in _TEXT_FAMILIES for f in chosen)
    return Projection(
        side, table, clause, segment, ordered, side.key_fields(clause, table), chosen, by_value and any(text), text
    )


@dataclass
class DiffResult:
    """Differing rows by key (segment value, key texts), per-field mismatch counts and the cost."""

    source_rows: int = 0
    target_rows: int = 0
    missing: list[tuple] = field(default_factory=list)  # in the source, not in the target
    extra: list[tuple] = field(default_factory=list)  # in the target, not in the source (or duplicated)
    changed: list[tuple] = field(default_factory=list)  # in both, some field differs
    field_mismatches: Counter = field(default_factory=Counter)
    segments_compared: int = 0
    rows_fetched: int = 0
    rows_by_value: int = 0
    queries: int = 0
    exhaustive: bool = True
    seconds: float = 0.0

    @property
    def differing(self) -> int:
        return len(self.missing) + len(self.extra) + len(self.changed)

    def first_keys(self, limit: int) -> list[tuple[str, tuple]]:
        tagged = (
            [("missing in target", k) for k in self.missing]
            + [("extra in target", k) for k in self.extra]
            + [("differs", k) for k in self.changed]
        )
        tagged.sort(key=lambda item: item[1])
        return [(what, key[1]) for what, key in tagged[:limit]]


class _Runner:
    """Runs the same kind of query on both sides at once, one connection per side."""

    def __init__(self, source: Projection, target: Projection):
        self.projections = (source, target)
        self.pool = ThreadPoolExecutor(2)
        self.conns = [p.side.engine.connect() for p in self.projections]
        self.queries = 0

    def both(self, build: Callable[[Projection], sa.Select]) -> tuple[list, list]:
        futures = [
            self.pool.submit(lambda c=c, p=p: c.execute(build(p)).all()) for c, p in zip(self.conns, self.projections)
        ]
        self.queries += 2
        return futures[0].result(), futures[1].result()

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        self.pool.shutdown()


def bounds_query(p: Projection) -> sa.Select:
    return sa.select(sa.func.min(p.segment), sa.func.max(p.segment), sa.func.count()).select_from(p.clause)


def segments_query(p: Projection, lo: int, hi: int, width: int) -> sa.Select:
    # BIGINT division: segment values are BIGINTs and segment - lo >= 0 (NUMERIC div cost 10% of the scan)
    bucket = q.bigint_div(p.segment - q.num(lo), q.num(width)).label("bucket")
    if not p.by_value:
        return (
            sa.select(bucket, sa.func.count().label("n"), q.checksum_sum(p.row_hash).label("checksum"))
            .select_from(p.clause)
            .where(p.in_range(lo, hi))
            .group_by(bucket)
        )
    plain = p.plain
    checksum = q.checksum_sum(sa.case((plain, p.row_hash), else_=q.num(0))).label("checksum")
    by_value = sa.func.sum(sa.case((plain, 0), else_=1)).label("by_value")
    return (
        sa.select(bucket, sa.func.count().label("n"), checksum, by_value)
        .select_from(p.clause)
        .where(p.in_range(lo, hi))
        .group_by(bucket)
    )


def rows_query(p: Projection, lo: int, hi: int) -> sa.Select:
    keys = [f.expr.label(f"k{i}") for i, f in enumerate(p.keys)]
    hashes = [
        q.hash60(sa.func.coalesce(f.expr, q.text_literal(q.NULL_MARKER))).label(f"h{i}") for i, f in enumerate(p.fields)
    ]
    values = []
    if p.by_value:  # a non-ASCII text's value itself: its hash differs between SQL Server 2017 and UTF-8
        values = [
            sa.case((q.ascii_only(f.expr), sa.null()), else_=f.expr).label(f"v{i}")
            for i, (f, is_text) in enumerate(zip(p.fields, p.text))
            if is_text
        ]
    return sa.select(p.segment.label("seg"), *keys, *hashes, *values).select_from(p.clause).where(p.in_range(lo, hi))


def _by_key(rows, n_keys: int) -> tuple[dict, list]:
    out, duplicates = {}, []
    for row in rows:
        key = (int(row[0]), tuple(row[1 : 1 + n_keys]))
        if key in out:
            duplicates.append(key)
        out[key] = tuple(row[1 + n_keys :])
    return out, duplicates


def _comparable(row: tuple, text: tuple[bool, ...]) -> list:
    """Per field, what is compared: the hash, or for a non-ASCII text its value (hashes, then values, in `row`)."""
    n = len(text)
    if len(row) == n:
        return list(row)
    values = iter(row[n:])
    out = list(row[:n])
    for i, is_text in enumerate(text):
        if is_text:
            value = next(values)
            if value is not None:
                out[i] = ("value", value)
    return out


def _by_value(row: tuple, n_fields: int) -> bool:
    return any(v is not None for v in row[n_fields:])


def _compare_rows(runner: _Runner, lo: int, hi: int, result: DiffResult, labels: list[str]) -> None:
    src_rows, tgt_rows = runner.both(lambda p: rows_query(p, lo, hi))
    source = runner.projections[0]
    n_keys, text = len(source.keys), source.text
    src, src_dups = _by_key(src_rows, n_keys)
    tgt, tgt_dups = _by_key(tgt_rows, n_keys)
    result.rows_fetched += len(src_rows) + len(tgt_rows)
    result.missing += [k for k in src if k not in tgt]
    result.extra += [k for k in tgt if k not in src] + tgt_dups
    result.missing += src_dups  # a duplicated source key that the target holds once is a missing row
    for key in src.keys() & tgt.keys():
        if source.by_value and (_by_value(src[key], len(labels)) or _by_value(tgt[key], len(labels))):
            result.rows_by_value += 1
        a_row, b_row = _comparable(src[key], text), _comparable(tgt[key], text)
        if a_row != b_row:
            result.changed.append(key)
            result.field_mismatches.update(label for label, a, b in zip(labels, a_row, b_row) if a != b)


def _start(runner: _Runner) -> tuple[int, int, int, int]:
    """(lo, hi, source rows, target rows) of the whole key range."""
    (s_lo, s_hi, s_n), (t_lo, t_hi, t_n) = (rows[0] for rows in runner.both(bounds_query))
    if runner.projections[0].ordered:
        present = [v for v in (s_lo, t_lo) if v is not None]
        lo = min(present) if present else 0
        hi = max([v for v in (s_hi, t_hi) if v is not None] or [0])
        return int(lo), int(hi), int(s_n), int(t_n)
    return 0, HASH_SPACE - 1, int(s_n), int(t_n)


def diff(
    source: Projection, target: Projection, *, fanout: int = 32, leaf_rows: int = 1000, max_rows: int = 1000
) -> DiffResult:
    """Every differing row between the two projections (up to about `max_rows`, then `exhaustive` is False)."""
    started = time.perf_counter()
    result = DiffResult()
    labels = [f.label for f in source.fields]
    runner = _Runner(source, target)
    try:
        lo, hi, result.source_rows, result.target_rows = _start(runner)
        if max(result.source_rows, result.target_rows) == 0:
            return result
        if max(result.source_rows, result.target_rows) <= leaf_rows:
            _compare_rows(runner, lo, hi, result, labels)
            return result
        pending = deque([(lo, hi)])
        while pending:
            if result.differing >= max_rows:
                result.exhaustive = False
                break
            lo, hi = pending.popleft()
            width = -(-(hi - lo + 1) // fanout)
            src, tgt = (
                dict((int(b), tuple(int(x or 0) for x in rest)) for b, *rest in rows)
                for rows in runner.both(lambda p, lo=lo, hi=hi, w=width: segments_query(p, lo, hi, w))
            )
            result.segments_compared += len(src.keys() | tgt.keys())
            for bucket in sorted(src.keys() | tgt.keys()):
                # rows compared by value (a segment's 3rd figure) make a segment go down to its leaf
                if src.get(bucket) == tgt.get(bucket) and not any(src[bucket][2:]):
                    continue
                sub_lo = lo + bucket * width
                sub_hi = min(hi, sub_lo + width - 1)
                rows = max(src.get(bucket, (0, 0))[0], tgt.get(bucket, (0, 0))[0])
                if rows <= leaf_rows or sub_lo == sub_hi:
                    _compare_rows(runner, sub_lo, sub_hi, result, labels)
                else:
                    pending.append((sub_lo, sub_hi))
    finally:
        result.queries = runner.queries
        runner.close()
        result.seconds = time.perf_counter() - started
    return result


def keys_query(p: Projection, keys: list[tuple]) -> sa.Select:
    """SELECT * of the given keys on a side, matched on the canonical key texts (for a person to run)."""
    matches = [sa.and_(*(f.expr == q.text_literal(str(v)) for f, v in zip(p.keys, key))) for key in keys]
    return sa.select(sa.text("*")).select_from(p.clause).where(sa.or_(*matches))


CHECK = "rows_match_source"


def reconcile(source: Side, target: Side, table: Table, by_value: bool | None = None, **options) -> Outcome:
    """The hashdiff of a table as a check outcome: counts, first differing keys, mismatches per column.
    `by_value` (default: when either side is SQL Server) compares non-ASCII text rows by value at the leaves."""
    if by_value is None:
        by_value = "mssql" in (source.dialect, target.dialect)
    src, tgt = projection(source, table, by_value=by_value), projection(target, table, by_value=by_value)
    result = diff(src, tgt, **options)
    key_names = [f.label for f in src.keys]
    first = result.first_keys(MAX_KEYS)
    counts = {
        "source_rows": result.source_rows,
        "target_rows": result.target_rows,
        "rows_missing_in_target": len(result.missing),
        "rows_extra_in_target": len(result.extra),
        "rows_different": len(result.changed),
        "segments_compared": result.segments_compared,
        "rows_fetched": result.rows_fetched,
        "rows_compared_by_value": result.rows_by_value,
    }
    details: dict[str, Any] = {
        "seconds": round(result.seconds, 3),
        "queries": result.queries,
        "exhaustive": result.exhaustive,
    }
    if not result.differing:
        summary = f"all {result.source_rows:,} rows equal the source (canonical row hashes per key segment)"
        return Outcome(AURORA, table, CHECK, True, summary, counts=counts, details=details)
    details["column_mismatches"] = dict(result.field_mismatches.most_common())
    columns = ", ".join(f"{name} ×{n}" for name, n in result.field_mismatches.most_common(6))
    summary = (
        f"{'at least ' if not result.exhaustive else ''}{result.differing:,} rows differ from the source: "
        f"{len(result.missing):,} missing, {len(result.extra):,} extra, {len(result.changed):,} changed"
        + (f" (columns: {columns})" if columns else "")
    )
    keys = [f"{format_key(table, key, key_names)} ({what})" for what, key in first]
    sql = q.compile_sql(keys_query(tgt, [key for _, key in first]), target.engine)
    details["source_sql"] = q.compile_sql(keys_query(src, [key for _, key in first]), source.engine)
    return Outcome(AURORA, table, CHECK, False, summary, counts=counts, keys=keys, sql=sql, details=details)
