"""The baselines every stage is compared with, run on the same data as ours.

Floors are what the hardware allows with the best tool for one step: DuckDB's `COPY ... TO parquet` for the
extract, a pyarrow read and write with no transform for the transform, a server-side `COPY ... FROM` of a
CSV file already on disk for the load. The others are what a user would pick instead for the load: ADBC's
`adbc_ingest`, pandas' `to_sql` (default and `method="multi"`) and awswrangler's `postgresql.to_sql`; the
slow ones run on a sample and are compared in rows/s.

Every function returns a `Throughput` of the timed part only; preparing inputs is never timed.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyarrow as pa
import pyarrow.parquet as pq

MB = 1024 * 1024
#: scratch schema in the target database for the comparison tables; dropped at the end of each run
FLOOR_SCHEMA = "bench_floor"


@dataclass(frozen=True)
class Throughput:
    rows: int
    seconds: float
    bytes: int = 0

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / MB / self.seconds if self.seconds > 0 else 0.0

    def __add__(self, other: Throughput) -> Throughput:
        return Throughput(self.rows + other.rows, self.seconds + other.seconds, self.bytes + other.bytes)


def total(parts: Iterable[Throughput]) -> Throughput:
    return sum(parts, Throughput(0, 0.0))


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------------------------------------------
# extract and transform floors
# ---------------------------------------------------------------------------------------------------


def duckdb_copy_parquet(source_path: Path, tables: Sequence[tuple[str, str]], out_dir: Path) -> Throughput:
    """DuckDB `COPY (SELECT * FROM schema.table) TO 'file.parquet'` of each (schema, table), uncompressed
    like the DMS endpoint settings; a read-only connection, as the extract has."""
    import duckdb

    out_dir.mkdir(parents=True, exist_ok=True)
    result = Throughput(0, 0.0)
    with duckdb.connect(str(source_path), read_only=True) as con:
        for schema, name in tables:
            out = out_dir / f"{schema}.{name}.parquet"
            started = time.perf_counter()
            con.execute(
                f"COPY (SELECT * FROM {_q(schema)}.{_q(name)}) TO '{out}' (FORMAT parquet, COMPRESSION uncompressed)"
            )
            seconds = time.perf_counter() - started
            rows = con.execute(f"SELECT count(*) FROM {_q(schema)}.{_q(name)}").fetchone()[0]  # type: ignore[index]  # one row, always
            result += Throughput(rows, seconds, out.stat().st_size)
    return result


def pyarrow_read_write(tables: Mapping[str, Sequence[Path]], out_dir: Path) -> Throughput:
    """Read each table's Parquet files with pyarrow and write them back unchanged, one snappy file per table
    (the transformed zone's layout and codec): the cost of the I/O alone."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = Throughput(0, 0.0)
    for name, files in tables.items():
        if not files:
            continue
        started = time.perf_counter()
        rows = 0
        writer = None
        for path in files:
            data = pq.read_table(path)
            writer = writer or pq.ParquetWriter(out_dir / f"{name}.parquet", data.schema, compression="snappy")
            writer.write_table(data)
            rows += data.num_rows
        if writer is not None:
            writer.close()
        result += Throughput(rows, time.perf_counter() - started, sum(Path(f).stat().st_size for f in files))
    return result


# ---------------------------------------------------------------------------------------------------
# load floor and the tools a user would pick instead
# ---------------------------------------------------------------------------------------------------


def _connect(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True)


def reset_floor_schema(url: str) -> None:
    with _connect(url) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {FLOOR_SCHEMA} CASCADE")
        conn.execute(f"CREATE SCHEMA {FLOOR_SCHEMA}")


def drop_floor_schema(url: str) -> None:
    with _connect(url) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {FLOOR_SCHEMA} CASCADE")


def count_rows(url: str, table: str) -> int:
    """Rows in `bench_floor.<table>`: proof that a comparison really wrote what it claims."""
    with _connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM {FLOOR_SCHEMA}.{_q(table)}").fetchone()[0]


def _insertable_columns(conn, schema: str, table: str) -> list[str]:
    """The table's columns a COPY can write (generated columns are computed by the server)."""
    rows = conn.execute(
        "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' "
        "ORDER BY a.attnum",
        (schema, table),
    ).fetchall()
    return [r[0] for r in rows]


def public_dir(prefix: str = "consorcio-bench-") -> Path:
    """A directory the server's OS user can read (pgserver runs as `pgserver` when started by root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def export_csv(url: str, tables: Sequence[tuple[str, str]], out_dir: Path) -> dict[tuple[str, str], Path]:
    """Write each loaded target table to a CSV file readable by the server (the floor's input, untimed)."""
    files = {}
    with _connect(url) as conn:
        for schema, table in tables:
            columns = ", ".join(_q(c) for c in _insertable_columns(conn, schema, table))
            path = out_dir / f"{schema}.{table}.csv"
            query = f"COPY (SELECT {columns} FROM {_q(schema)}.{_q(table)}) TO STDOUT (FORMAT csv)"
            with path.open("wb") as out, conn.cursor() as cur, cur.copy(query) as cp:
                for chunk in cp:
                    out.write(chunk)
            path.chmod(0o644)
            files[(schema, table)] = path
    return files


def _create_like(conn, schema: str, table: str) -> str:
    """An empty copy of the target table (columns, defaults, constraints, indexes; no foreign keys)."""
    floor_table = f"{FLOOR_SCHEMA}.{_q(table)}"
    conn.execute(f"DROP TABLE IF EXISTS {floor_table}")
    conn.execute(f"CREATE TABLE {floor_table} (LIKE {_q(schema)}.{_q(table)} INCLUDING ALL)")
    return floor_table


def server_copy_csv(url: str, files: dict[tuple[str, str], Path]) -> Throughput:
    """Server-side `COPY ... FROM '/path/file.csv'` into a table shaped like the target one: one stream."""
    result = Throughput(0, 0.0)
    with _connect(url) as conn:
        for (schema, table), path in files.items():
            floor_table = _create_like(conn, schema, table)
            columns = ", ".join(_q(c) for c in _insertable_columns(conn, FLOOR_SCHEMA, table))
            started = time.perf_counter()
            cur = conn.execute(f"COPY {floor_table} ({columns}) FROM '{path}' (FORMAT csv)")
            result += Throughput(cur.rowcount, time.perf_counter() - started, path.stat().st_size)
    return result


def adbc_ingest(url: str, tables: dict[str, pa.Table]) -> Throughput:
    """ADBC's `adbc_ingest` of each raw Arrow table into a new table (ADBC maps the types)."""
    import adbc_driver_postgresql.dbapi as adbc

    result = Throughput(0, 0.0)
    with adbc.connect(url) as conn:
        for name, data in tables.items():
            with conn.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {FLOOR_SCHEMA}.{_q(name)}")
                started = time.perf_counter()
                rows = cur.adbc_ingest(name, data, mode="create", db_schema_name=FLOOR_SCHEMA)
            conn.commit()
            result += Throughput(rows if rows and rows > 0 else data.num_rows, time.perf_counter() - started)
    return result


def numeric_dtypes(data: pa.Table) -> dict:
    """Explicit SQLAlchemy `Numeric` types for the decimal columns (pandas 3 + SQLAlchemy 2.1 fail without)."""
    import sqlalchemy as sa

    return {f.name: sa.Numeric(f.type.precision, f.type.scale) for f in data.schema if pa.types.is_decimal(f.type)}


#: PostgreSQL's limit on bind parameters in one statement
MAX_PARAMETERS = 65_535


def pandas_to_sql(sqlalchemy_url: str, name: str, sample: pa.Table, method: str | None = None) -> Throughput:
    """`DataFrame.to_sql` with pandas' defaults (or `method="multi"`) through SQLAlchemy.

    `method="multi"` sends one INSERT per chunk, so it gets the largest chunk the parameter limit allows
    (pandas' default, every row in one statement, fails past 65,535 values)."""
    import sqlalchemy as sa

    frame = sample.to_pandas()
    chunksize = MAX_PARAMETERS // max(1, len(frame.columns)) if method == "multi" else None
    engine = sa.create_engine(sqlalchemy_url, poolclass=sa.NullPool)
    try:
        started = time.perf_counter()
        frame.to_sql(
            name,
            engine,
            schema=FLOOR_SCHEMA,
            if_exists="replace",
            index=False,
            dtype=numeric_dtypes(sample),
            method=method,
            chunksize=chunksize,
        )
        return Throughput(len(frame), time.perf_counter() - started)
    finally:
        engine.dispose()


def pg8000_connect(libpq_url: str):
    """A pg8000 connection (the `pg8000.Connection` awswrangler insists on) to the same server, over its
    Unix socket when the URL names one (pgserver listens on nothing else)."""
    import pg8000

    parsed = urlparse(libpq_url)
    query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    host = query.get("host") or parsed.hostname or ""
    port = parsed.port or int(query.get("port", 5432))
    kwargs: dict[str, Any] = dict(
        user=parsed.username or os.environ.get("USER", "postgres"),
        password=parsed.password or None,
        database=parsed.path.lstrip("/") or "postgres",
    )
    if host.startswith("/"):
        kwargs["unix_sock"] = f"{host}/.s.PGSQL.{port}"
    else:
        kwargs.update(host=host or "localhost", port=port)
    return pg8000.connect(**kwargs)


def awswrangler_to_sql(libpq_url: str, name: str, sample: pa.Table) -> Throughput:
    """`awswrangler.postgresql.to_sql` with its default chunksize over a pg8000 connection."""
    import awswrangler as wr

    frame = sample.to_pandas()
    con = pg8000_connect(libpq_url)
    try:
        started = time.perf_counter()
        wr.postgresql.to_sql(frame, con, table=name, schema=FLOOR_SCHEMA, mode="overwrite")
        return Throughput(len(frame), time.perf_counter() - started)
    finally:
        con.close()
