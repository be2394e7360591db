"""The type-mapping table: one row per SQL Server type, like pgloader's cast rules.

Each rule says what AWS DMS calls the type, which Arrow/Parquet type DMS writes to S3, what the
column becomes in Aurora PostgreSQL, and how the embedded DuckDB stand-in stores it. Templates use
`{n}` (length), `{p}`/`{s}` (precision/scale) and `{fsp}` (fractional seconds precision).
Sources: AWS DMS "Source data types for SQL Server" and "Target data types for S3 Parquet".
"""

from __future__ import annotations

from dataclasses import dataclass

from consorcio_core.arrow_types import arrow_type  # noqa: F401 - the catalog's Arrow types, shared with the job


@dataclass(frozen=True)
class TypeRule:
    sqlserver: str
    dms: str
    arrow: str
    postgres: str
    duckdb: str
    #: how later stages treat the value: drives transforms, checks and canonical row text
    family: str


def _r(sqlserver, dms, arrow, postgres, duckdb, family) -> TypeRule:
    return TypeRule(sqlserver, dms, arrow, postgres, duckdb, family)


# fmt: off
TYPE_RULES: dict[str, TypeRule] = {r.sqlserver: r for r in [
    #  SQL Server         DMS               Arrow (Parquet)       PostgreSQL            DuckDB stand-in       family
    _r("bit",             "BOOLEAN",        "bool",               "boolean",            "BOOLEAN",            "bool"),
    _r("tinyint",         "UINT1",          "uint8",              "smallint",           "UTINYINT",           "int"),
    _r("smallint",        "INT2",           "int16",              "smallint",           "SMALLINT",           "int"),
    _r("int",             "INT4",           "int32",              "integer",            "INTEGER",            "int"),
    _r("bigint",          "INT8",           "int64",              "bigint",             "BIGINT",             "int"),
    _r("decimal",         "NUMERIC({p},{s})", "decimal128({p},{s})", "numeric({p},{s})", "DECIMAL({p},{s})",  "decimal"),
    _r("money",           "NUMERIC(19,4)",  "decimal128(19,4)",   "numeric(19,4)",      "DECIMAL(19,4)",      "decimal"),
    _r("smallmoney",      "NUMERIC(10,4)",  "decimal128(10,4)",   "numeric(10,4)",      "DECIMAL(10,4)",      "decimal"),
    _r("real",            "REAL4",          "float32",            "real",               "REAL",               "float"),
    _r("float",           "REAL8",          "float64",            "double precision",   "DOUBLE",             "float"),
    _r("date",            "DATE",           "date32",             "date",               "DATE",               "date"),
    _r("time",            "TIME",           "time64[us]",         "time",               "TIME",               "time"),
    _r("smalldatetime",   "DATETIME",       "timestamp[us]",      "timestamp(0)",       "TIMESTAMP",          "timestamp"),
    _r("datetime",        "DATETIME",       "timestamp[us]",      "timestamp(3)",       "TIMESTAMP",          "timestamp"),
    _r("datetime2",       "DATETIME",       "timestamp[us]",      "timestamp({fsp})",   "{datetime2_duckdb}", "timestamp"),
    _r("datetimeoffset",  "WSTRING",        "string",             "timestamptz({fsp})", "VARCHAR",            "timestamptz"),
    _r("char",            "STRING",         "string",             "varchar({n})",       "VARCHAR",            "char"),
    _r("nchar",           "WSTRING",        "string",             "varchar({n})",       "VARCHAR",            "char"),
    _r("varchar",         "STRING",         "string",             "varchar({n})",       "VARCHAR",            "text"),
    _r("nvarchar",        "WSTRING",        "string",             "varchar({n})",       "VARCHAR",            "text"),
    _r("varchar(max)",    "CLOB",           "string",             "text",               "VARCHAR",            "lob"),
    _r("nvarchar(max)",   "NCLOB",          "string",             "text",               "VARCHAR",            "lob"),
    _r("text",            "CLOB",           "string",             "text",               "VARCHAR",            "lob"),
    _r("ntext",           "NCLOB",          "string",             "text",               "VARCHAR",            "lob"),
    _r("xml",             "NCLOB",          "string",             "text",               "VARCHAR",            "lob"),
    _r("uniqueidentifier", "STRING",        "string",             "uuid",               "UUID",               "uuid"),
    _r("binary",          "BYTES",          "binary",             "bytea",              "BLOB",               "binary"),
    _r("varbinary",       "BYTES",          "binary",             "bytea",              "BLOB",               "binary"),
    _r("varbinary(max)",  "BLOB",           "binary",             "bytea",              "BLOB",               "binary"),
    _r("rowversion",      "BYTES",          "binary",             "bytea",              "BLOB",               "binary"),
]}
# fmt: on

#: SQL Server spellings that name the same type
TYPE_ALIASES = {"numeric": "decimal", "integer": "int", "timestamp": "rowversion", "double": "float"}


class UnsupportedTypeError(ValueError):
    pass


def lookup(sqlserver_type: str, where: str) -> TypeRule:
    """The rule for a SQL Server type name; `where` names the column in the error."""
    key = TYPE_ALIASES.get(sqlserver_type.lower(), sqlserver_type.lower())
    try:
        return TYPE_RULES[key]
    except KeyError:
        raise UnsupportedTypeError(
            f"{where}: SQL Server type {sqlserver_type!r} has no rule in the type-mapping table"
        ) from None


def render(template: str, *, n=None, p=None, s=None, fsp=None) -> str:
    return template.format(n=n, p=p, s=s, fsp=fsp, datetime2_duckdb="TIMESTAMP_NS" if (fsp or 0) > 6 else "TIMESTAMP")
