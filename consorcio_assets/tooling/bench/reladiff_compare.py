"""reladiff (the maintained fork of data-diff) on the same source and target as our row-level diff.

Table by table, keyed by the primary key, every column, the hashdiff algorithm with reladiff's defaults
(bisection factor 32, threshold 16,384 rows, one connection per database). reladiff compares columns by
type, so it is shown each source column as Aurora holds it, through views in an in-memory DuckDB that
attaches the stand-in read-only (what SQL Server itself would show it through its own types):

- CHAR without its padding, DATETIMEOFFSET (text in the stand-in) as its UTC instant plus the offset in
  minutes (the target's `<col>_offset_minutes`), TINYINT/SMALLINT as BIGINT and DATE/DATETIME2 as TIMESTAMP
  (reladiff's DuckDB dialect knows only INTEGER/BIGINT and TIMESTAMP; DATETIME2(7)'s 100 ns digit truncated,
  as DMS does: a cast would round it);
- ROWVERSION as hexadecimal text and DATE key columns as ISO text on both sides (reladiff has no binary type
  and bisects keys only of integers, UUIDs and alphanumeric text), through views in the target's scratch
  schema `bench_reladiff`, dropped afterwards.

The rows reladiff yields carry values; only their keys are kept, and nothing of a row is logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from consorcio_assets.catalog import Column, Table
from consorcio_assets.checks import sql as q
from consorcio_assets.checks.sides import SOURCE, Side

LOG = logging.getLogger("consorcio.bench")
VIEW_SCHEMA = "bench_reladiff"
#: how the source view shows a column to reladiff, per type family ({} = the value as Aurora holds it)
SOURCE_AS = {
    "int": "CAST({} AS BIGINT)",
    "date": "CAST({} AS TIMESTAMP)",
    "timestamp": "make_timestamp(epoch_us({}))",  # DATETIME2(7) truncated to the microsecond, as DMS does
    "timestamptz": "CAST({} AS TIMESTAMP)",
    "binary": "lower(hex({}))",
}
#: the same for the target, where reladiff cannot read the stored type itself
TARGET_AS = {
    "binary": "encode({}, 'hex')",
}
#: key columns reladiff cannot bisect by type (it keys on integers, UUIDs and alphanumeric text): as text
SOURCE_KEY_AS = {"date": "CAST({} AS VARCHAR)"}
TARGET_KEY_AS = {"date": "CAST({} AS text)"}


def column_names(table: Table) -> list[str]:
    """The target's column names in catalog order, each DATETIMEOFFSET followed by its offset column."""
    names = []
    for c in table.columns:
        names.append(c.target_name)
        if c.offset_column:
            names.append(c.offset_column)
    return names


def key_names(table: Table) -> list[str]:
    return [table.column(k).target_name for k in table.primary_key]


def _shown_as(table: Table, column: Column, by_family: dict, by_key_family: dict) -> str:
    if column.name in table.primary_key and column.family in by_key_family:
        return by_key_family[column.family]
    return by_family.get(column.family, "{}")


def _source_columns(side: Side, table: Table, clause, column: Column) -> Iterator[tuple[str, str]]:
    value = q.compile_sql(side.value(clause, column), side.engine)
    yield column.target_name, _shown_as(table, column, SOURCE_AS, SOURCE_KEY_AS).format(value)
    if column.offset_column:
        yield column.offset_column, f"CAST({q.compile_sql(side.offset_minutes(clause, column), side.engine)} AS BIGINT)"


def source_view_sql(side: Side, table: Table, attached: str = "src") -> str:
    """CREATE VIEW main.<target name> over the attached stand-in, columns as Aurora holds them."""
    clause = side.table(table, alias="t")
    columns = [f'{sql} AS "{name}"' for c in table.columns for name, sql in _source_columns(side, table, clause, c)]
    return (
        f'CREATE OR REPLACE VIEW main."{table.target_name}" AS SELECT {", ".join(columns)} '
        f'FROM {attached}."{table.schema}"."{table.name}" AS t'
    )


def target_view_sql(table: Table) -> str | None:
    """CREATE VIEW bench_reladiff.<table> when a column needs showing differently; None when the table will do."""
    shown = [_shown_as(table, c, TARGET_AS, TARGET_KEY_AS) for c in table.columns]
    if all(template == "{}" for template in shown):
        return None
    columns = []
    for c, template in zip(table.columns, shown):
        columns.append(f'{template.format(chr(34) + c.target_name + chr(34))} AS "{c.target_name}"')
        if c.offset_column:
            columns.append(f'"{c.offset_column}"')
    return (
        f'CREATE OR REPLACE VIEW "{VIEW_SCHEMA}"."{table.target_name}" AS SELECT {", ".join(columns)} '
        f'FROM "{table.target_schema}"."{table.target_name}"'
    )


def source_database(source_url: str, path: str, tables: list[Table]):
    """reladiff's DuckDB database: in memory, the stand-in attached read-only, one view per table."""
    import duckdb
    from reladiff.databases import DuckDB

    from consorcio_assets.source.queries import duckdb_engine

    side = Side(SOURCE, duckdb_engine(source_url))  # compiles the expressions; never connects
    views = [source_view_sql(side, t) for t in tables]

    class StandIn(DuckDB):
        def create_connection(self):
            con = duckdb.connect(":memory:")
            con.execute("SET memory_limit = '256MB'")  # as the checks' source connections
            con.execute(f"ATTACH '{path}' AS src (READ_ONLY)")
            for view in views:
                con.execute(view)
            return con

    db = StandIn(filepath=":memory:")
    db.query(db.dialect.set_timezone_to_utc())
    return db


def target_database(url: str):
    """reladiff's PostgreSQL database on the target (psycopg2 takes the libpq URL as its DSN), in UTC."""
    from reladiff.databases import connect

    return connect({"driver": "postgresql", "dsn": url}, thread_count=1)


def create_target_views(url: str, tables: list[Table]) -> dict[str, tuple[str, str]]:
    """The scratch views reladiff reads instead of tables it cannot; {table: (schema, name)} of every table."""
    import psycopg

    paths = {t.target_name: (t.target_schema, t.target_name) for t in tables}
    views = {t.target_name: sql for t in tables if (sql := target_view_sql(t))}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{VIEW_SCHEMA}" CASCADE')
        if views:
            conn.execute(f'CREATE SCHEMA "{VIEW_SCHEMA}"')
        for name, sql in views.items():
            conn.execute(sql)
            paths[name] = (VIEW_SCHEMA, name)
    return paths


def drop_target_views(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{VIEW_SCHEMA}" CASCADE')


def diff_table(source_db, target_db, table: Table, target_path: tuple[str, str]) -> dict:
    """One table through reladiff's hashdiff: seconds, and the keys it found missing, extra or changed."""
    from reladiff import Algorithm, TableSegment, diff_tables

    keys = tuple(key_names(table))
    extra = tuple(n for n in column_names(table) if n not in keys)
    started = time.perf_counter()
    src = TableSegment(source_db, ("main", table.target_name), keys, extra_columns=extra)
    tgt = TableSegment(target_db, target_path, keys, extra_columns=extra)
    removed: set[tuple] = set()
    added: set[tuple] = set()  # '-': a source row the target lacks or holds otherwise; '+': the reverse
    with diff_tables(src, tgt, algorithm=Algorithm.HASHDIFF) as diff:
        for sign, row in diff:
            (removed if sign == "-" else added).add(tuple(str(v) for v in row[: len(keys)]))
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "missing": sorted(removed - added),
        "extra": sorted(added - removed),
        "changed": sorted(removed & added),
    }


def run(source_url: str, source_path: str, target_url: str, tables: list[Table]) -> dict:
    """Every table through reladiff, one after the other: per-table figures and the total seconds."""
    for name in ("reladiff", "sqeleton", "hashdiff_tables", "diff_tables", "table_segment"):
        logging.getLogger(name).setLevel(logging.ERROR)  # its debug lines name key ranges; keep them out
    paths = create_target_views(target_url, tables)
    source_db, target_db = source_database(source_url, source_path, tables), target_database(target_url)
    try:
        per_table = {t.target_name: diff_table(source_db, target_db, t, paths[t.target_name]) for t in tables}
    finally:
        source_db.close()
        target_db.close()
        drop_target_views(target_url)
    return {"seconds": sum(r["seconds"] for r in per_table.values()), "tables": per_table}
