"""Source queries in SQLAlchemy Core, so one query compiles for SQL Server and for the DuckDB stand-in."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from consorcio_assets.catalog import Table
from consorcio_assets.common.dialects import dialect_function
from consorcio_assets.settings import Settings, get_settings

#: DuckDB's buffer pool caches every block a query reads, up to 80 % of RAM by default: a full scan of the stand-in
#: would grow the process with the table. Capped, big joins and aggregates spill to disk and memory stays flat
#: (the extract's peak RSS: 650 MB at 1M simulações, 683 MB at 4M, at the same speed).
DUCKDB_MEMORY_LIMIT = "256MB"


def limit_duckdb_memory(connection) -> None:
    """Cap the stand-in's memory. A setting of the database instance, which every connection to the file in this
    process shares (so it is set, not passed as connect config: configs that differ could not share the file)."""
    connection.execute(f"SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")


def connect_stand_in(path: str | Path):
    """A raw DuckDB connection to the stand-in, read-only, configured as `duckdb_engine` configures its own: DuckDB
    refuses a second connection to a file this process has open under another configuration (a check step on a
    thread beside the DMS step opens the file through SQLAlchemy, the DMS engine directly)."""
    import duckdb
    import duckdb_engine

    config: dict[str, str | bool | int | float | list[str]] = {}
    if duckdb_engine.supports_user_agent:  # the one setting duckdb_engine adds to every connection it opens
        config["custom_user_agent"] = f"duckdb_engine/{duckdb_engine.__version__}(sqlalchemy/{sa.__version__})"
    connection = duckdb.connect(str(path), read_only=True, config=config)
    limit_duckdb_memory(connection)
    return connection


def duckdb_engine(url: str) -> sa.Engine:
    """Read-only (parallel steps share the file), memory-capped engine on a DuckDB file."""
    engine = sa.create_engine(url, connect_args={"read_only": True}, poolclass=sa.NullPool)
    sa.event.listen(engine, "connect", lambda connection, _record: limit_duckdb_memory(connection))
    return engine


def source_engine(settings: Settings | None = None) -> sa.Engine:
    """Engine on the source: SQL Server, or the DuckDB stand-in."""
    return source_engine_for((settings or get_settings()).source_url)


def source_engine_for(url: str) -> sa.Engine:
    """Engine on the source at `url` (what a resource holds): SQL Server, or the DuckDB stand-in."""
    prefix = "duckdb:///"
    if url.startswith(prefix):
        path = Path(url[len(prefix) :])
        if not path.exists():
            raise FileNotFoundError(f"source stand-in {path} does not exist: run `consorcio seed`")
        return duckdb_engine(url)
    if sa.make_url(url).get_backend_name() == "mssql":
        from consorcio_assets.source.connection import mssql_engine

        return mssql_engine(url, pool_pre_ping=True)
    return sa.create_engine(url, pool_pre_ping=True)


def table_clause(table: Table) -> sa.TableClause:
    return sa.table(table.name, *(sa.column(c.name) for c in table.columns), schema=table.schema)


count_big = dialect_function("count_big", sa.BigInteger(), default="count(*)", mssql="COUNT_BIG(*)")
"""COUNT_BIG(*) on SQL Server (tables beyond 2^31 rows), COUNT(*) elsewhere."""

table_checksum = dialect_function(
    "table_checksum",
    sa.BigInteger(),
    default="sum(hash({args}) % 1000000007)",
    mssql="CHECKSUM_AGG(BINARY_CHECKSUM(*))",
)
"""table_checksum(*columns): an order-independent checksum of every row: changes when any value changes."""


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
