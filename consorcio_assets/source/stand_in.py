"""The embedded SQL Server stand-in: a DuckDB file built from the contract and filled by the generator.

It stores values as SQL Server returns them, so the DMS engine sees what DMS would see: CHAR(n) padded
with spaces, DATETIMEOFFSET as SQL Server's literal text (the offset survives), DATETIME2(7) at 100 ns,
ROWVERSION as 8 bytes, the computed column computed by the database, and the views transpiled from T-SQL.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import duckdb
import pyarrow as pa

from consorcio_assets.catalog import Catalog, Column, Table
from consorcio_assets.catalog import catalog as default_catalog
from consorcio_assets.catalog.views import transpile_view


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def qualified(table: Table) -> str:
    return f"{_q(table.schema)}.{_q(table.name)}"


def _computed_sql(column: Column) -> str:
    import sqlglot

    return sqlglot.transpile(column.computed, read="tsql", write="duckdb")[0]


def table_ddl(table: Table) -> str:
    parts = []
    for c in table.columns:
        if c.computed:
            parts.append(f"{_q(c.name)} {c.duckdb_type} GENERATED ALWAYS AS ({_computed_sql(c)}) VIRTUAL")
        else:
            parts.append(f"{_q(c.name)} {c.duckdb_type}{'' if c.nullable else ' NOT NULL'}")
    parts.append(f"PRIMARY KEY ({', '.join(_q(k) for k in table.primary_key)})")
    return f"CREATE TABLE {qualified(table)} (\n  " + ",\n  ".join(parts) + "\n)"


def view_ddl(view: Table, catalog: Catalog) -> str:
    select = transpile_view(
        view,
        catalog.by_name,
        "duckdb",
        table_sql=qualified,
        local_timestamp=lambda sql: f"CAST(SUBSTRING({sql}, 1, 19) AS TIMESTAMP)",
        cast_type=lambda c: c.duckdb_type,
    )
    return f"CREATE VIEW {qualified(view)} AS {select}"


def _insert_select(table: Table, batch_columns: list[str]) -> str:
    """Cast the generator's Arrow values into SQL Server's storage: CHAR padded, GUIDs as UUID."""
    exprs = []
    for name in batch_columns:
        c = table.column(name)
        ref = _q(name)
        if c.family == "char":
            exprs.append(f"rpad({ref}, {c.length}, ' ')")
        else:
            exprs.append(f"CAST({ref} AS {c.duckdb_type})")
    cols = ", ".join(_q(n) for n in batch_columns)
    return f"INSERT INTO {qualified(table)} ({cols}) SELECT {', '.join(exprs)} FROM batch"


def build(
    path: Path, rows: Iterable[tuple[str, pa.RecordBatch]], catalog: Catalog | None = None, force: bool = False
) -> dict[str, int]:
    """Create the stand-in at `path` atomically: built in a temporary file, then renamed."""
    catalog = catalog or default_catalog()
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} already exists: pass --force to rebuild it (its data will be replaced)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    counts: dict[str, int] = {t.name: 0 for t in catalog.base_tables}
    try:
        with duckdb.connect(str(tmp)) as con:
            for schema in {t.schema for t in catalog}:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(schema)}")
            for t in catalog.load_order():
                if not t.is_view:
                    con.execute(table_ddl(t))
            for name, batch in rows:
                if name not in catalog.by_name:
                    raise KeyError(f"generator produced rows for {name}, which is not in the contract")
                con.register("batch", batch)
                con.execute(_insert_select(catalog[name], batch.schema.names))
                con.unregister("batch")
                counts[name] += batch.num_rows
            for v in catalog.views:
                con.execute(view_ddl(v, catalog))
            con.execute("CHECKPOINT")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        Path(str(tmp) + ".wal").unlink(missing_ok=True)
    return counts


def seed(
    path: Path, simulacoes: int = 20_000, seed: int = 42, force: bool = False, catalog: Catalog | None = None
) -> dict[str, int]:
    """Seed the stand-in with the deterministic generator."""
    from consorcio_assets.source.generator import generate

    catalog = catalog or default_catalog()
    rows: Iterator = ((n, b) for n, b in generate(simulacoes=simulacoes, seed=seed) if n in catalog.by_name)
    return build(path, rows, catalog, force=force)
