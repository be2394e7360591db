"""A reference migration for the checks' tests, independent of the DMS and Glue stages.

It reads the DuckDB stand-in, applies the documented transforms with pyarrow (snake_case names, CHAR
trimmed, GUIDs lower-case, DATETIMEOFFSET to its UTC instant plus offset minutes, DATETIME2(7) truncated
to microseconds as DMS does), creates the tables from the catalog's PostgreSQL types with the contract's
keys and checks, and COPYs the rows in. It also writes the transformed zone's Parquet files.
"""

from __future__ import annotations

import io
from pathlib import Path

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from consorcio_assets.catalog import TARGET_SCHEMA, Catalog, Column, Table, snake_case
from consorcio_assets.catalog import catalog as default_catalog

_US_PER_MINUTE = 60_000_000


def _truncate_to_us(ns: pa.Array) -> pa.Array:
    """DMS keeps microseconds and drops the 100 ns digit (integer division: the data is after 1970)."""
    return pc.cast(pc.divide(pc.cast(ns, pa.int64()), 1000), pa.timestamp("us"))


def _dto(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    """'YYYY-MM-DD hh:mm:ss.fffffff +hh:mm' -> (UTC timestamp[us], offset minutes)."""
    local = _truncate_to_us(pc.cast(pc.utf8_slice_codeunits(arr, 0, -7), pa.timestamp("ns")))
    off = pc.utf8_slice_codeunits(arr, -6)
    sign = pc.if_else(pc.starts_with(off, "-"), -1, 1)
    minutes = pc.multiply(
        sign,
        pc.add(
            pc.multiply(pc.cast(pc.utf8_slice_codeunits(off, 1, 3), pa.int32()), 60),
            pc.cast(pc.utf8_slice_codeunits(off, 4, 6), pa.int32()),
        ),
    )
    utc = pc.subtract(pc.cast(local, pa.int64()), pc.multiply(pc.cast(minutes, pa.int64()), _US_PER_MINUTE))
    return pc.cast(utc, pa.timestamp("us")), pc.cast(minutes, pa.int16())


def _bytea(arr: pa.Array) -> pa.Array:
    return pa.array([None if v is None else "\\x" + v.hex() for v in arr.to_pylist()], pa.string())


def transform_column(column: Column, arr: pa.Array) -> list[tuple[str, pa.Array]]:
    family = column.family
    if family == "char":
        return [(column.target_name, pc.utf8_rtrim(arr, characters=" "))]
    if family == "uuid":
        return [(column.target_name, pc.utf8_lower(arr))]
    if family == "timestamptz":
        utc, minutes = _dto(arr)
        return [(column.target_name, utc), (column.offset_column, minutes)]
    if family == "timestamp" and pa.types.is_timestamp(arr.type) and arr.type.unit == "ns":
        return [(column.target_name, _truncate_to_us(arr))]
    if family == "binary":
        return [(column.target_name, _bytea(arr))]
    return [(column.target_name, arr)]


def transform(table: Table, source: pa.Table) -> pa.Table:
    columns = [pair for c in table.columns for pair in transform_column(c, source.column(c.name).combine_chunks())]
    return pa.table(dict(columns))


def create_table(table: Table) -> str:
    """The catalog's columns (generated columns and collations included, as the application needs them)."""
    from consorcio_assets.target.ddl import column_definitions

    return f"CREATE TABLE {table.qualified_target} ({', '.join(column_definitions(table))})"


def application_semantics(table: Table) -> list[str]:
    """DEFAULTs and the ROWVERSION trigger, attached after the data as the Glue job does."""
    from consorcio_assets.target import semantics

    return [item["sql"] for item in semantics.after_load(table, TARGET_SCHEMA)]


def copied(table: Table, data: pa.Table) -> pa.Table:
    """What the COPY writes: PostgreSQL computes the generated columns itself."""
    generated = [c.target_name for c in table.columns if c.postgres_computed and not table.is_view]
    return data.drop_columns(generated) if generated else data


def constraints(table: Table, cat: Catalog) -> list[str]:
    t = table.qualified_target

    def cols(names, owner=table):
        return ", ".join(owner.column(n).target_name for n in names)

    out = [f"ALTER TABLE {t} ADD CONSTRAINT pk_{table.target_name} PRIMARY KEY ({cols(table.primary_key)})"]
    out += [f"ALTER TABLE {t} ADD CONSTRAINT {snake_case(n)} UNIQUE ({cols(c)})" for n, c in table.unique_keys]
    out += [f"ALTER TABLE {t} ADD CONSTRAINT {snake_case(c.name)} CHECK ({c.to_sql('postgres')})" for c in table.checks]
    out += [
        f"ALTER TABLE {t} ADD CONSTRAINT {snake_case(fk.name)} FOREIGN KEY ({cols(fk.columns)}) "
        f"REFERENCES {cat[fk.ref_table].qualified_target} ({cols(fk.ref_columns, cat[fk.ref_table])})"
        for fk in table.foreign_keys
    ]
    return out


def _copy(conn: psycopg.Connection, table: Table, data: pa.Table) -> None:
    buf = io.BytesIO()
    pacsv.write_csv(data, buf, pacsv.WriteOptions(quoting_style="needed"))
    names = ", ".join(f'"{n}"' for n in data.column_names)
    with conn.cursor().copy(f"COPY {table.qualified_target} ({names}) FROM STDIN (FORMAT csv, HEADER true)") as cp:
        cp.write(buf.getvalue())


def write_transformed(lake_root: Path, table: Table, data: pa.Table) -> None:
    folder = lake_root / "transformed" / table.target_name
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(data, folder / "part-00000.parquet")


def load(
    source_path: Path, target_url: str, lake_root: Path | None = None, cat: Catalog | None = None
) -> dict[str, int]:
    """Migrate every table (schema consorcio) and view snapshot (consorcio_snapshot) of the stand-in, then create the
    live views; rows per table."""
    cat = cat or default_catalog()
    counts = {}
    with duckdb.connect(str(source_path), read_only=True) as src, psycopg.connect(target_url, autocommit=True) as pg:
        pg.execute("SET TIME ZONE 'UTC'")
        for schema in dict.fromkeys([TARGET_SCHEMA, *(t.target_schema for t in cat)]):
            pg.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        order = cat.load_order()
        for table in order:
            data = transform(table, src.sql(f'SELECT * FROM "{table.schema}"."{table.name}"').to_arrow_table())
            from consorcio_assets.target.semantics import collations

            for statement in collations(table):
                pg.execute(statement)
            pg.execute(create_table(table))
            _copy(pg, table, copied(table, data))
            if lake_root is not None:
                write_transformed(lake_root, table, data)
            counts[table.name] = data.num_rows
        for table in order:
            for statement in constraints(table, cat) + application_semantics(table):
                pg.execute(statement)
        from consorcio_assets.target.live_views import apply_live_views

        apply_live_views(pg, cat)  # the application's views, created after the load as the Dagster side does
    return counts
