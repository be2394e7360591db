"""Pre-flight of a full-load: what would make DMS fail, or silently lose data, found before it starts.

- the source answers (connectivity);
- every selected table/view exists with exactly the catalog's columns and types (schema drift names the
  table and column);
- the longest LOB value per column (`MAX(DATALENGTH(...))`) against `LobMaxSize`: values DMS would truncate
  in limited LOB mode are reported with table, column and size;
- DMS's premigration assessment of the source (`assessment.py`): keys, types DMS cannot migrate to S3, LOBs
  in tables without a key, the login's permissions, SNAPSHOT isolation;
- the source row count at load time (what the raw-zone checks compare the files with) and the parallel-load
  segment boundaries of the large tables.

Queries are SQLAlchemy Core, so the same code compiles for SQL Server and for the DuckDB stand-in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from consorcio_assets.catalog import Column, Table
from consorcio_assets.catalog.types import TYPE_ALIASES
from consorcio_assets.common.dialects import dialect_function
from consorcio_assets.dms.assessment import assess
from consorcio_assets.dms.layout import is_national
from consorcio_assets.dms.mappings import PARALLEL_LOAD_SEGMENTS, segment_boundaries
from consorcio_assets.dms.settings_files import TaskSettings
from consorcio_assets.source.queries import count_big, table_clause


class PreflightError(RuntimeError):
    pass


@dataclass(frozen=True)
class LobOverflow:
    schema: str
    table: str
    column: str
    max_bytes: int
    limit_bytes: int

    def __str__(self) -> str:
        return (
            f"{self.schema}.{self.table}.{self.column}: longest value is {self.max_bytes} bytes, over LobMaxSize "
            f"({self.limit_bytes // 1024} KB): DMS will truncate it"
        )


@dataclass
class PreflightReport:
    source_rows: dict[str, int] = field(default_factory=dict)
    lob_max_bytes: dict[tuple[str, str], int] = field(default_factory=dict)
    overflows: list[LobOverflow] = field(default_factory=list)
    boundaries: dict[str, list[list[str]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # the assessment's findings that do not block the load
    snapshot_allowed: bool | None = None  # SQL Server only


datalength = dialect_function("datalength", sa.BigInteger(), default="length({0})", mssql="DATALENGTH({0})")
"""Bytes SQL Server stores for a VARCHAR(MAX) value: DATALENGTH there, one byte per character elsewhere."""

ndatalength = dialect_function(
    "ndatalength",
    sa.BigInteger(),
    default="(2 * length({0}))",
    # UTF-16 bytes: 2 per character, 4 for one beyond the BMP (a surrogate pair: emoji). Those characters are
    # counted by extracting them: deleting every other character (regexp_replace) took 12x longer, 1.9 s a pass
    # over the 1M source's Observacao
    duckdb="(2 * (length({0}) + len(regexp_extract_all({0}, '[\\x{{10000}}-\\x{{10FFFF}}]'))))",
    mssql="DATALENGTH({0})",
)
"""Bytes SQL Server stores for an NVARCHAR(MAX) value (UTF-16): DATALENGTH there, 2 per character elsewhere."""


def columns_query(table: Table) -> sa.Select:
    cols = sa.table(
        "COLUMNS",
        *(
            sa.column(n)
            for n in (
                "TABLE_SCHEMA",
                "TABLE_NAME",
                "COLUMN_NAME",
                "DATA_TYPE",
                "CHARACTER_MAXIMUM_LENGTH",
                "NUMERIC_PRECISION",
                "NUMERIC_SCALE",
                "DATETIME_PRECISION",
            )
        ),
        schema="INFORMATION_SCHEMA",
    )
    return sa.select(*cols.c).where(cols.c.TABLE_SCHEMA == table.schema, cols.c.TABLE_NAME == table.name)


def lob_query(table: Table) -> sa.Select | None:
    lobs = [c for c in table.columns if c.family == "lob"]
    if not lobs:
        return None
    t = table_clause(table)
    size = lambda c: (ndatalength if is_national(c) else datalength)(t.c[c.name])  # noqa: E731
    return sa.select(*(sa.func.max(size(c)).label(c.name) for c in lobs))


def count_query(table: Table) -> sa.Select:
    return sa.select(count_big()).select_from(table_clause(table))


# -- schema drift ----------------------------------------------------------------------------------------------


def expected_type(column: Column, dialect: str) -> str:
    """How the source's INFORMATION_SCHEMA spells the catalog column's type."""
    if dialect != "mssql":
        return column.duckdb_type.upper()
    if column.sql_type == "rowversion":
        return "timestamp"  # INFORMATION_SCHEMA's name for it
    return column.sqlserver_type_sql.lower()  # e.g. int, decimal(15,2), nvarchar(max), datetime2(7)


def actual_type(row: sa.RowMapping, dialect: str) -> str:
    """The source column's type in the same spelling as `expected_type`."""
    data_type = str(row["DATA_TYPE"])
    if dialect != "mssql":
        return data_type.upper()
    name = TYPE_ALIASES.get(data_type.lower(), data_type.lower())
    if name == "decimal":
        return f"decimal({row['NUMERIC_PRECISION']},{row['NUMERIC_SCALE']})"
    if name in ("char", "nchar", "varchar", "nvarchar", "binary", "varbinary"):
        length = row["CHARACTER_MAXIMUM_LENGTH"]
        return f"{name}({'max' if length == -1 else length})"
    if name in ("datetime2", "datetimeoffset", "time"):
        return f"{name}({row['DATETIME_PRECISION']})"
    return "timestamp" if name == "rowversion" else name


def drift(table: Table, rows: Sequence[sa.RowMapping], dialect: str) -> list[str]:
    """Every difference between the source's columns and the catalog's, one line per column."""
    where = table.qualified_source
    if not rows:
        return [f"{where}: the {table.kind} does not exist in the source"]
    actual = {str(r["COLUMN_NAME"]).lower(): r for r in rows}
    problems = []
    for column in table.columns:
        row = actual.pop(column.name.lower(), None)
        if row is None:
            problems.append(f"{where}.{column.name}: column is missing from the source")
            continue
        want, got = expected_type(column, dialect), actual_type(row, dialect)
        if want != got:
            problems.append(f"{where}.{column.name}: source type is {got}, the catalog expects {want}")
    problems += [f"{where}.{r['COLUMN_NAME']}: column is in the source but not in the catalog" for r in actual.values()]
    return problems


# -- the pre-flight --------------------------------------------------------------------------------------------


def preflight(
    engine: sa.Engine, tables: Sequence[Table], task: TaskSettings, segments: dict[str, int] | None = None
) -> PreflightReport:
    """Check the source before a full-load; raises PreflightError listing every blocking problem."""
    segments = PARALLEL_LOAD_SEGMENTS if segments is None else segments
    dialect = engine.dialect.name
    try:
        conn = engine.connect()
    except sa.exc.SQLAlchemyError as err:
        raise PreflightError(
            f"cannot connect to the source ({engine.url.render_as_string(hide_password=True)}): "
            f"{err.__class__.__name__}: {str(err).splitlines()[0]}"
        ) from None
    with conn:
        problems = [p for t in tables for p in drift(t, conn.execute(columns_query(t)).mappings().all(), dialect)]
        if problems:
            raise PreflightError("the source does not match the catalog:\n  " + "\n  ".join(problems))
        found = assess(conn, tables, task.lob_max_bytes)
        if found.problems:
            raise PreflightError("DMS premigration assessment of the source failed:\n  " + "\n  ".join(found.problems))
        report = PreflightReport(notes=found.notes, snapshot_allowed=found.snapshot_allowed)
        for t in tables:
            report.source_rows[t.name] = int(conn.execute(count_query(t)).scalar_one())
            _measure_lobs(conn, t, task, report)
            if segments.get(t.name, 0) > 1:
                report.boundaries[t.name] = segment_boundaries(conn, t, segments[t.name])
    return report


def _measure_lobs(conn: sa.Connection, table: Table, task: TaskSettings, report: PreflightReport) -> None:
    query = lob_query(table)
    if query is None:
        return
    for name, longest in conn.execute(query).one()._mapping.items():
        report.lob_max_bytes[(table.name, name)] = int(longest or 0)
        if (longest or 0) > task.lob_max_bytes:
            report.overflows.append(LobOverflow(table.schema, table.name, name, int(longest), task.lob_max_bytes))
