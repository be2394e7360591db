"""Source queries in SQLAlchemy Core, so one query compiles for SQL Server and for the DuckDB stand-in."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from ..catalog import Table
from ..settings import Settings, get_settings

#: DuckDB's buffer pool caches every block a query reads, up to 80 % of RAM by default: a full scan of the stand-in
#: would grow the process with the table. Capped, big joins and aggregates spill to disk and memory stays flat
#: (the extract's peak RSS: 650 MB at 1M simulações, 683 MB at 4M, at the same speed).
DUCKDB_MEMORY_LIMIT = "256MB"


def limit_duckdb_memory(connection) -> None:
    """Cap the stand-in's memory. A setting of the database instance, which every connection to the file in this
    process shares (so it is set, not passed as connect config: configs that differ could not share the file)."""
    connection.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")


def duckdb_engine(url: str) -> sa.Engine:
    """Read-only (parallel steps share the file), memory-capped engine on a DuckDB file."""
    engine = sa.create_engine(url, connect_args={"read_only": True}, poolclass=sa.NullPool)
    sa.event.listen(engine, "connect", lambda connection, _record: limit_duckdb_memory(connection))
    return engine


def source_engine(settings: Settings | None = None) -> sa.Engine:
    """Engine on the source: SQL Server, or the DuckDB stand-in."""
    settings = settings or get_settings()
    if settings.source_path is not None:
        if not settings.source_path.exists():
            raise FileNotFoundError(f"source stand-in {settings.source_path} does not exist: run `consorcio seed`")
        return duckdb_engine(settings.source_url)
    if sa.make_url(settings.source_url).get_backend_name() == "mssql":
        from .connection import mssql_engine

        return mssql_engine(settings.source_url, pool_pre_ping=True)
    return sa.create_engine(settings.source_url, pool_pre_ping=True)


def table_clause(table: Table) -> sa.TableClause:
    return sa.table(table.name, *(sa.column(c.name) for c in table.columns), schema=table.schema)


class count_big(FunctionElement):
    """COUNT_BIG(*) on SQL Server (tables beyond 2^31 rows), COUNT(*) elsewhere."""

    type = sa.BigInteger()
    inherit_cache = True


@compiles(count_big)
def _count_default(element, compiler, **kw):
    return "count(*)"


@compiles(count_big, "mssql")
def _count_mssql(element, compiler, **kw):
    return "COUNT_BIG(*)"


class table_checksum(FunctionElement):
    """An order-independent checksum of every row: changes when any value changes."""

    type = sa.BigInteger()
    inherit_cache = True

    def __init__(self, *columns):
        super().__init__(*columns)


@compiles(table_checksum)
def _checksum_duckdb(element, compiler, **kw):
    args = ", ".join(compiler.process(c, **kw) for c in element.clauses)
    return f"sum(hash({args}) % 1000000007)"


@compiles(table_checksum, "mssql")
def _checksum_mssql(element, compiler, **kw):
    return "CHECKSUM_AGG(BINARY_CHECKSUM(*))"


def observation_query(table: Table) -> sa.Select:
    t = table_clause(table)
    rowversion = next((c.name for c in table.columns if c.sql_type == "rowversion"), None)
    items = [count_big().label("row_count")]
    if rowversion:
        items.append(sa.func.max(t.c[rowversion]).label("max_rowversion"))
    items.append(table_checksum(*(t.c[c.name] for c in table.columns)).label("checksum"))
    return sa.select(*items).select_from(t)


@dataclass(frozen=True)
class Observation:
    row_count: int
    data_version: str


def observe(conn: sa.Connection, table: Table) -> Observation:
    """Row count and a data version that changes whenever the table's content changes."""
    row = conn.execute(observation_query(table)).one()._mapping
    parts = [str(row["row_count"]), str(row["checksum"])]
    if "max_rowversion" in row:
        value = row["max_rowversion"]
        parts.append(value.hex() if isinstance(value, (bytes, bytearray, memoryview)) else str(value))
    return Observation(int(row["row_count"]), hashlib.sha256("|".join(parts).encode()).hexdigest()[:16])
