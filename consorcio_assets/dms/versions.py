"""A source table's data version: what tells whether it changed while (or since) it was extracted.

A full-load of a source still being written is not a snapshot: each table is read at a different moment and
child rows can point at parents read earlier. The engine records each table's version right before and right
after its extraction; the raw-zone row-count check fails when they differ, naming the table and how many rows
changed (rows whose rowversion is above the highest one at the start, where the table has a ROWVERSION).

- rows: COUNT(*);
- checksum: an order-independent aggregate of a hash of every column (SQL Server: CHECKSUM_AGG(BINARY_CHECKSUM(*)),
  the DuckDB stand-in: SUM(hash(...))), so an UPDATE that keeps the count is seen too;
- max_rowversion: the highest ROWVERSION as hex (every INSERT/UPDATE raises it in SQL Server).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import sqlalchemy as sa

from consorcio_assets.catalog import Table

#: dialect → SQL of the checksum aggregate over the table's columns (`{cols}` quoted, comma-separated)
CHECKSUM_SQL = {
    "duckdb": "CAST(SUM(CAST(hash({cols}) AS HUGEINT)) AS VARCHAR)",
    "mssql": "CAST(CHECKSUM_AGG(BINARY_CHECKSUM(*)) AS VARCHAR(20))",
}
ROWVERSION_HEX = {"duckdb": "lower(hex(max({col})))", "mssql": "CONVERT(VARCHAR(16), MAX({col}), 2)"}


@dataclass(frozen=True)
class DataVersion:
    rows: int
    checksum: str | None
    max_rowversion: str | None

    def to_dict(self) -> dict:
        return asdict(self)


def _quote(dialect: str, name: str) -> str:
    """A quoted identifier: names may be reserved words or hold quotes (never spliced raw)."""
    if dialect == "mssql":
        return "[" + name.replace("]", "]]") + "]"
    return '"' + name.replace('"', '""') + '"'


def version_sql(table: Table, dialect: str) -> str:
    cols = ", ".join(_quote(dialect, c.name) for c in table.columns if not c.is_rowversion or dialect != "mssql")
    items = ["COUNT(*)", CHECKSUM_SQL.get(dialect, "NULL").format(cols=cols)]
    rv = [c for c in table.columns if c.is_rowversion]
    items.append(ROWVERSION_HEX.get(dialect, "NULL").format(col=_quote(dialect, rv[0].name)) if rv else "NULL")
    where = f"{_quote(dialect, table.schema)}.{_quote(dialect, table.name)}"
    return f"SELECT {', '.join(items)} FROM {where}"


def changed_rows_sql(table: Table, dialect: str, since_hex: str) -> str | None:
    """Rows whose rowversion is above `since_hex` (written after the extraction started), or None."""
    rv = [c for c in table.columns if c.is_rowversion]
    if not rv:
        return None
    col = _quote(dialect, rv[0].name)
    literal = f"0x{since_hex}" if dialect == "mssql" else f"from_hex('{since_hex}')"
    return f"SELECT COUNT(*) FROM {_quote(dialect, table.schema)}.{_quote(dialect, table.name)} WHERE {col} > {literal}"


def read_version(execute, table: Table, dialect: str) -> DataVersion:
    """`execute(sql) -> first row`: the source's own connection (DuckDB cursor or SQLAlchemy)."""
    rows, checksum, rowversion = execute(version_sql(table, dialect))
    return DataVersion(int(rows), None if checksum is None else str(checksum), rowversion and str(rowversion).lower())


def changes(table: Table, before: DataVersion, after: DataVersion, execute, dialect: str) -> dict | None:
    """None when the table did not change during its extraction; otherwise what changed (counts, no values)."""
    if before == after:
        return None
    out = {"rows_before": before.rows, "rows_after": after.rows}
    sql = changed_rows_sql(table, dialect, before.max_rowversion or "0000000000000000")
    if sql is not None:
        out["rows_changed"] = int(execute(sql)[0])
    return out


def sqlalchemy_executor(engine: sa.Engine):
    def execute(sql: str):
        with engine.connect() as conn:
            return tuple(conn.exec_driver_sql(sql).one())

    return execute
