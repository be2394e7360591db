"""The source side of AWS DMS's premigration assessment, run before any file is written.

What DMS itself would reject or lose on a SQL Server source with an S3 target, reported by name:
tables without a primary key, data types DMS cannot migrate to S3 (sql_variant, hierarchyid, geography,
geometry, user-defined types; xml over the LOB limit), LOB columns in tables without a key (DMS needs a
key to fetch LOBs), the permissions DMS's login needs (one query per item), and whether the database
allows SNAPSHOT isolation (what the platform's own reads use for a consistent view).

Each item is one statement per dialect, as data: SQL Server's catalog views, and the DuckDB stand-in's
twin (information_schema / duckdb_constraints()) where the stand-in has one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from consorcio_assets.catalog import Table
from consorcio_assets.common.dialects import dialect_function

#: types DMS cannot migrate from SQL Server to an S3 target (AWS DMS: "Source data types for SQL Server")
UNSUPPORTED_TYPES = ("sql_variant", "hierarchyid", "geography", "geometry")
#: the SQL Server types DMS reads as LOBs
LOB_TYPES = ("text", "ntext", "image", "xml")

_NO_KEY_MSSQL = """SELECT s.name AS schema_name, t.name AS table_name
FROM sys.tables AS t JOIN sys.schemas AS s ON s.schema_id = t.schema_id
WHERE t.is_ms_shipped = 0
  AND NOT EXISTS (SELECT 1 FROM sys.indexes AS i WHERE i.object_id = t.object_id AND i.is_primary_key = 1)"""

_NO_KEY_DUCKDB = """SELECT t.table_schema AS schema_name, t.table_name AS table_name
FROM information_schema.tables AS t
WHERE t.table_type = 'BASE TABLE'
  AND NOT EXISTS (SELECT 1 FROM duckdb_constraints() AS c WHERE c.schema_name = t.table_schema
                  AND c.table_name = t.table_name AND c.constraint_type = 'PRIMARY KEY')"""

_IN_TYPES = ", ".join(f"'{t}'" for t in UNSUPPORTED_TYPES)
_IN_LOBS = ", ".join(f"'{t}'" for t in LOB_TYPES)

_TYPES_MSSQL = f"""SELECT s.name AS schema_name, o.name AS table_name, c.name AS column_name, ty.name AS type_name,
       CASE WHEN ty.is_user_defined = 1 THEN 1 ELSE 0 END AS user_defined
FROM sys.columns AS c JOIN sys.objects AS o ON o.object_id = c.object_id
JOIN sys.schemas AS s ON s.schema_id = o.schema_id JOIN sys.types AS ty ON ty.user_type_id = c.user_type_id
WHERE o.type IN ('U', 'V') AND o.is_ms_shipped = 0 AND (ty.is_user_defined = 1 OR ty.name IN ({_IN_TYPES}, 'xml'))"""

#: the stand-in's user-defined types (CREATE TYPE) show in information_schema as what they resolve to
_USER_TYPE_DUCKDB = "(c.data_type LIKE 'ENUM(%' OR c.data_type LIKE 'UNION(%')"
_TYPES_DUCKDB = f"""SELECT c.table_schema AS schema_name, c.table_name AS table_name, c.column_name AS column_name,
       lower(c.data_type) AS type_name, CASE WHEN {_USER_TYPE_DUCKDB} THEN 1 ELSE 0 END AS user_defined
FROM information_schema.columns AS c
WHERE lower(c.data_type) IN ({_IN_TYPES}, 'xml') OR {_USER_TYPE_DUCKDB}"""

_LOB_NO_KEY_MSSQL = f"""SELECT s.name AS schema_name, t.name AS table_name, c.name AS column_name
FROM sys.columns AS c JOIN sys.tables AS t ON t.object_id = c.object_id
JOIN sys.schemas AS s ON s.schema_id = t.schema_id JOIN sys.types AS ty ON ty.user_type_id = c.user_type_id
WHERE t.is_ms_shipped = 0 AND (c.max_length = -1 OR ty.name IN ({_IN_LOBS}))
  AND NOT EXISTS (SELECT 1 FROM sys.indexes AS i WHERE i.object_id = t.object_id AND i.is_primary_key = 1)"""

_LOB_NO_KEY_DUCKDB = """SELECT c.table_schema AS schema_name, c.table_name AS table_name, c.column_name AS column_name
FROM information_schema.columns AS c JOIN information_schema.tables AS t
  ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'
WHERE c.data_type IN ('VARCHAR', 'BLOB')
  AND NOT EXISTS (SELECT 1 FROM duckdb_constraints() AS k WHERE k.schema_name = c.table_schema
                  AND k.table_name = c.table_name AND k.constraint_type = 'PRIMARY KEY')"""

_SNAPSHOT_MSSQL = """SELECT CASE WHEN snapshot_isolation_state = 1 THEN 1 ELSE 0 END AS snapshot_allowed
FROM sys.databases WHERE database_id = DB_ID()"""


@dataclass(frozen=True)
class Permission:
    """One permission DMS's (and the checks') login needs, and how SQL Server answers whether it has it."""

    name: str
    why: str
    mssql: str  # a SELECT of one 0/1 column


#: what a full-load-only DMS task from SQL Server needs (AWS DMS: "Permissions for full load only tasks")
PERMISSIONS: tuple[Permission, ...] = (
    Permission(
        "VIEW DEFINITION",
        "DMS reads the table definitions",
        "SELECT HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'VIEW DEFINITION') AS granted",
    ),
    Permission(
        "VIEW SERVER STATE",
        "DMS reads the server's state and version",
        "SELECT HAS_PERMS_BY_NAME(NULL, NULL, 'VIEW SERVER STATE') AS granted",
    ),
    Permission(
        "VIEW DATABASE STATE",
        "DMS and the pre-flight read the database's options",
        "SELECT HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'VIEW DATABASE STATE') AS granted",
    ),
)


def select_permission(table: Table) -> str:
    """SELECT on one source table or view (db_datareader grants them all)."""
    name = f"{table.schema}.{table.name}".replace("'", "''")
    return f"SELECT HAS_PERMS_BY_NAME('{name}', 'OBJECT', 'SELECT') AS granted"


@dataclass(frozen=True)
class Probe:
    """One assessment statement: its SQL per dialect (None: no twin there)."""

    item: str
    mssql: str
    duckdb: str | None

    def sql(self, dialect: str) -> str | None:
        return self.mssql if dialect == "mssql" else self.duckdb


NO_KEY = Probe("tables without a primary key", _NO_KEY_MSSQL, _NO_KEY_DUCKDB)
TYPES = Probe("data types DMS cannot migrate to S3", _TYPES_MSSQL, _TYPES_DUCKDB)
LOB_NO_KEY = Probe("LOB columns in tables without a primary key", _LOB_NO_KEY_MSSQL, _LOB_NO_KEY_DUCKDB)
SNAPSHOT = Probe("SNAPSHOT isolation allowed", _SNAPSHOT_MSSQL, None)
PROBES = (NO_KEY, TYPES, LOB_NO_KEY, SNAPSHOT)


xml_datalength = dialect_function(
    "xml_datalength", sa.BigInteger(), default="octet_length(CAST({0} AS VARCHAR))", mssql="DATALENGTH({0})"
)


def xml_length_query(schema: str, table: str, column: str) -> sa.Select:
    """The longest value of an xml column, in bytes (DMS truncates it at LobMaxSize like any LOB)."""
    t = sa.table(table, sa.column(column), schema=schema)
    return sa.select(sa.func.max(xml_datalength(t.c[column])))


@dataclass
class Assessment:
    """What the assessment found, by name; `problems` block the load, `notes` do not."""

    problems: list[str]
    notes: list[str]
    snapshot_allowed: bool | None = None


def _selected(rows, tables: Sequence[Table]) -> list:
    names = {(t.schema.lower(), t.name.lower()) for t in tables}
    return [r for r in rows if (str(r[0]).lower(), str(r[1]).lower()) in names]


def assess(conn: sa.Connection, tables: Sequence[Table], lob_max_bytes: int) -> Assessment:
    """Run every probe that has a statement for this dialect, on the selected tables only."""
    dialect = conn.engine.dialect.name
    result = Assessment([], [])
    base = [t for t in tables if t.kind == "table"]
    if NO_KEY.sql(dialect):
        for schema, name in _selected(conn.exec_driver_sql(NO_KEY.sql(dialect)).all(), base):
            result.problems.append(
                f"{schema}.{name}: table has no primary key (DMS cannot segment or fetch its LOBs by key)"
            )
    for schema, name, column, type_name, user_defined in _selected(
        conn.exec_driver_sql(TYPES.sql(dialect)).all(), tables
    ):
        where = f"{schema}.{name}.{column}"
        if int(user_defined):
            result.problems.append(f"{where}: user-defined type {type_name} (DMS cannot migrate it to S3)")
        elif type_name == "xml":
            longest = conn.execute(xml_length_query(schema, name, column)).scalar() or 0
            if longest > lob_max_bytes:
                result.problems.append(f"{where}: xml value of {longest} bytes over LobMaxSize ({lob_max_bytes})")
        else:
            result.problems.append(f"{where}: type {type_name} (DMS cannot migrate it to S3)")
    for schema, name, column in _selected(conn.exec_driver_sql(LOB_NO_KEY.sql(dialect)).all(), base):
        result.problems.append(f"{schema}.{name}.{column}: LOB column in a table without a primary key")
    if dialect == "mssql":
        _permissions(conn, tables, result)
        allowed = conn.exec_driver_sql(SNAPSHOT.mssql).scalar()
        result.snapshot_allowed = bool(allowed)
        if not allowed:
            result.notes.append(
                "the database does not allow SNAPSHOT isolation (ALLOW_SNAPSHOT_ISOLATION OFF): the "
                "platform reads under READ COMMITTED and counts may move while it reads"
            )
    return result


def _permissions(conn: sa.Connection, tables: Sequence[Table], result: Assessment) -> None:
    for permission in PERMISSIONS:
        if not conn.exec_driver_sql(permission.mssql).scalar():
            result.problems.append(f"the source login lacks {permission.name} ({permission.why})")
    for table in tables:
        if not conn.exec_driver_sql(select_permission(table)).scalar():
            result.problems.append(f"{table.qualified_source}: the source login lacks SELECT")


def probe_statements(tables: Sequence[Table]) -> list[tuple[str, str, str | None]]:
    """(item, SQL Server statement, DuckDB twin) of every assessment statement, for the inventory."""
    out = [(p.item, p.mssql, p.duckdb) for p in PROBES]
    out += [(f"permission {p.name}", p.mssql, None) for p in PERMISSIONS]
    out += [(f"permission SELECT on {t.qualified_source}", select_permission(t), None) for t in tables]
    return out
