"""SQL building blocks that compile to the same semantics on PostgreSQL, DuckDB and SQL Server.

Every check computes inside the databases, so each side must mean exactly the same thing by "the hash
of a row", "integer division" or "a date plus n months". Each construct here is a SQLAlchemy Core
function element with one template per dialect (`default` is PostgreSQL's spelling).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from consorcio_assets.common.dialects import dialect_function

#: the marker a NULL contributes to a canonical row text
NULL_MARKER = "\\N"
#: separator between the fields of a canonical row text
SEPARATOR = "|"
#: hashes are the low 60 bits of the first 8 bytes of the MD5 digest, identical in every dialect
HASH_BITS = 60


#: big integers come back as Python ints (sa.Numeric would route DuckDB's HUGEINT through float)
_EXACT_INT = sa.Integer()


hash60 = dialect_function(
    "hash60",
    sa.BigInteger(),
    default="CAST(CAST('x' || substr(md5({0}), 2, 15) AS BIT(60)) AS BIGINT)",
    duckdb="CAST('0x' || substr(md5({0}), 2, 15) AS BIGINT)",
    mssql="(CAST(SUBSTRING(HASHBYTES('MD5', CAST({0} AS VARCHAR(MAX))), 1, 8) AS BIGINT) & 0x0FFFFFFFFFFFFFFF)",
)
"""hash60(text): a 60-bit integer hash of a text, equal in PostgreSQL and DuckDB (UTF-8) and in SQL Server for
ASCII text (SQL Server 2017 has no UTF-8 collation to hash other characters the same: see `ascii_only`)."""

_ascii_flag = dialect_function(
    "ascii_flag",
    sa.Integer(),
    default="CASE WHEN octet_length(coalesce({0}, '')) = char_length(coalesce({0}, '')) THEN 1 ELSE 0 END",
    duckdb="CASE WHEN strlen(coalesce({0}, '')) = length(coalesce({0}, '')) THEN 1 ELSE 0 END",
    mssql="CASE WHEN ISNULL({0}, N'') COLLATE Latin1_General_BIN2"
    " NOT LIKE (N'%[^' + NCHAR(1) + N'-' + NCHAR(127) + N']%') THEN 1 ELSE 0 END",
)


def ascii_only(text) -> sa.ColumnElement:
    """Whether a text holds only ASCII (NUL excepted): the texts whose hash60 is the same on SQL Server 2017,
    which hashes them in its VARCHAR code page (no UTF-8 collation before 2019), as in PostgreSQL and DuckDB
    (UTF-8). Code-page characters beyond ASCII (ç, ã, €) are single bytes there and two or three in UTF-8, so
    this, not the code page, is the boundary. A comparison, since SQL Server has no boolean values."""
    return _ascii_flag(text) == 1


wide = dialect_function(
    "wide",
    _EXACT_INT,
    default="CAST({0} AS NUMERIC)",
    duckdb="CAST({0} AS HUGEINT)",
    mssql="CAST({0} AS DECIMAL(38, 0))",
)
"""wide(int): an integer type wide enough for products of money and percentages (no overflow)."""

idiv = dialect_function(
    "idiv",
    _EXACT_INT,
    default="div({0}, {1})",
    duckdb="({0} // {1})",
    mssql="CAST(({0} - {0} % {1}) / {1} AS DECIMAL(38, 0))",
)
"""idiv(a, b): integer division of non-negative integers (floor). Not FLOOR(a / b) on SQL Server: a DECIMAL(38, 0)
quotient keeps only 6 decimals there, rounded, so 2.9999997 became 3; a - a % b divides exactly."""

bigint_div = dialect_function(
    "bigint_div",
    sa.BigInteger(),
    default="({0} / {1})",
    duckdb="({0} // {1})",
    mssql="({0} / {1})",
)
"""Integer division of non-negative BIGINTs (no NUMERIC: the fast path for values known to fit)."""

checksum_sum = dialect_function(
    "checksum_sum",
    _EXACT_INT,
    default="sum({0})",
    duckdb="sum({0})",
    mssql="SUM(CAST({0} AS DECIMAL(38, 0)))",
)
"""The exact sum of 60-bit hashes (NUMERIC / HUGEINT / DECIMAL(38,0): never overflows)."""

as_text = dialect_function(
    "as_text",
    sa.String(),
    default="CAST({0} AS TEXT)",
    duckdb="CAST({0} AS VARCHAR)",
    mssql="CAST({0} AS NVARCHAR(MAX))",
)

_decimal_text = dialect_function(
    "decimal_text",
    sa.String(),
    default="CAST(CAST({0} AS NUMERIC(38, {1})) AS TEXT)",
    duckdb="CAST(CAST({0} AS DECIMAL({2}, {1})) AS VARCHAR)",
    mssql="CAST(CAST({0} AS DECIMAL(38, {1})) AS VARCHAR(60))",
)


def decimal_text(value, scale: sa.ColumnElement, precision: sa.ColumnElement | None = None) -> sa.ColumnElement:
    """A decimal as plain text with exactly `scale` digits after the point. DuckDB casts to `precision`
    (default 38; `decimal_precision` gives 18 when the column fits, so its decimals stay 64-bit: formatting
    128-bit DECIMAL(38) cost 2.7x the whole row text of simulacao_parcela)."""
    return _decimal_text(value, scale, precision if precision is not None else num(38))


def decimal_precision(precision: int | None) -> int:
    """The widest decimal a column needs for its text: 18 (64-bit in DuckDB) when it fits, else 38."""
    return 18 if precision is not None and precision <= 18 else 38


date_text = dialect_function(
    "date_text",
    sa.String(),
    default="CAST({0} AS TEXT)",
    duckdb="strftime({0}, '%Y-%m-%d')",
    mssql="CONVERT(VARCHAR(10), {0}, 23)",
)
"""A date as 'YYYY-MM-DD'. PostgreSQL's cast writes that under DateStyle ISO, which `sides.Side` sets on every
connection it opens: to_char cost 6x the cast (3.0 of the 10 CPU seconds of simulacao_parcela's row text)."""

timestamp_text = dialect_function(
    "timestamp_text",
    sa.String(),
    default="to_char({0}, 'YYYY-MM-DD HH24:MI:SS.US')",
    duckdb="strftime({0}, '%Y-%m-%d %H:%M:%S.%f')",
    mssql="LEFT(CONVERT(VARCHAR(27), CAST({0} AS DATETIME2(7)), 121), 26)",
)
"""A timestamp as 'YYYY-MM-DD hh:mm:ss.ffffff': truncated to microseconds, as DMS truncates."""

time_text = dialect_function(
    "time_text",
    sa.String(),
    default="to_char({0}, 'HH24:MI:SS.US')",
    duckdb="strftime(DATE '2000-01-01' + {0}, '%H:%M:%S.%f')",
    mssql="LEFT(CONVERT(VARCHAR(16), CAST({0} AS TIME(7)), 114), 15)",
)

hex_text = dialect_function(
    "hex_text",
    sa.String(),
    default="encode({0}, 'hex')",
    duckdb="lower(hex({0}))",
    mssql="LOWER(CONVERT(VARCHAR(MAX), {0}, 2))",
)

uuid_text = dialect_function(
    "uuid_text",
    sa.String(),
    default="CAST({0} AS TEXT)",
    duckdb="CAST({0} AS VARCHAR)",
    mssql="LOWER(CONVERT(CHAR(36), {0}))",
)
"""A GUID as lower-case text: PostgreSQL's and DuckDB's uuid types print lower-case already, SQL Server's upper."""

bool_text = dialect_function(
    "bool_text",
    sa.String(),
    default="CASE WHEN {0} THEN '1' WHEN NOT {0} THEN '0' END",
    mssql="CAST({0} AS VARCHAR(1))",
)

rtrim = dialect_function("rtrim", sa.String(), default="rtrim({0})", mssql="RTRIM({0})")

char_length = dialect_function(
    "char_length",
    sa.Integer(),
    default="char_length({0})",
    duckdb="length({0})",
    mssql="(LEN({0} + 'x') - 1)",
)
"""Characters of a text, trailing spaces included (SQL Server's LEN ignores them, hence the 'x')."""

octet_length = dialect_function(
    "octet_length",
    sa.Integer(),
    default="octet_length({0})",
    mssql="DATALENGTH({0})",
)

substr = dialect_function(
    "substr",
    sa.String(),
    default="substr({0}, {1}, {2})",
    mssql="SUBSTRING({0}, {1}, {2})",
)

ascii_code = dialect_function("ascii_code", sa.Integer(), default="ascii({0})", mssql="ASCII({0})")

add_months = dialect_function(
    "add_months",
    sa.Date(),
    default="CAST({0} + make_interval(months => CAST({1} AS INTEGER)) AS DATE)",
    duckdb="CAST({0} + to_months(CAST({1} AS INTEGER)) AS DATE)",
    mssql="DATEADD(month, {1}, {0})",
)
"""A date plus n calendar months, the day clamped to the end of a shorter month (all three agree)."""

plus_minutes = dialect_function(
    "plus_minutes",
    sa.DateTime(),
    default="({0} + make_interval(mins => CAST({1} AS INTEGER)))",
    duckdb="({0} + to_minutes(CAST({1} AS BIGINT)))",
    mssql="DATEADD(minute, {1}, {0})",
)

nanos_below_us = dialect_function(
    "nanos_below_us",
    sa.Integer(),
    default="0",
    duckdb="(epoch_ns({0}) % 1000)",
    mssql="(DATEPART(nanosecond, {0}) % 1000)",
)
"""Nanoseconds below the microsecond of a timestamp (PostgreSQL has none)."""

at_utc = dialect_function("at_utc", sa.DateTime(), default="({0} AT TIME ZONE 'UTC')")
"""A PostgreSQL timestamptz as the UTC wall-clock timestamp."""

as_date = dialect_function("as_date", sa.Date(), default="CAST({0} AS DATE)")

as_timestamp = dialect_function(
    "as_timestamp",
    sa.DateTime(),
    default="CAST({0} AS TIMESTAMP)",
    mssql="CAST({0} AS DATETIME2(7))",
)

as_int = dialect_function("as_int", sa.Integer(), default="CAST({0} AS INTEGER)", mssql="CAST({0} AS INT)")

as_bigint = dialect_function("as_bigint", sa.BigInteger(), default="CAST({0} AS BIGINT)")

modulo = dialect_function("modulo", sa.Integer(), default="mod({0}, {1})", duckdb="({0} % {1})", mssql="({0} % {1})")
"""a mod b, spelled without `%` so that the SQL shown to people needs no escaping."""

repeat_text = dialect_function(
    "repeat_text",
    sa.String(),
    default="repeat({0}, {1})",
    mssql="REPLICATE({0}, {1})",
)


class _full_match_flag(FunctionElement):
    """1 when the whole text matches a regular expression (SQL Server: any of the LIKE patterns), else 0."""

    type = sa.Integer()
    inherit_cache = False

    def __init__(self, expr, regex: str, *like: str):
        super().__init__(expr)
        self.regex, self.like = regex, like  # type: ignore[method-assign,assignment]  # the LIKE patterns


def _flag_of(condition: str) -> str:
    return f"CASE WHEN {condition} THEN 1 ELSE 0 END"


@compiles(_full_match_flag)
def _full_match_pg(element, compiler, **kw):
    return _flag_of(f"({compiler.process(element.clauses, **kw)} ~ '^(?:{element.regex})$')")


@compiles(_full_match_flag, "duckdb")
def _full_match_duckdb(element, compiler, **kw):
    return _flag_of(f"regexp_full_match({compiler.process(element.clauses, **kw)}, '{element.regex}')")


@compiles(_full_match_flag, "mssql")
def _full_match_mssql(element, compiler, **kw):
    expr = compiler.process(element.clauses, **kw)
    if not element.like:
        raise sa.exc.CompileError(f"no LIKE form of the pattern {element.regex!r} for SQL Server")
    return _flag_of("(" + " OR ".join(f"{expr} LIKE '{p}' COLLATE Latin1_General_BIN" for p in element.like) + ")")


def full_match(expr, regex: str, *like: str) -> sa.ColumnElement:
    """Whether the whole text matches a regular expression (SQL Server: any of the LIKE patterns), as a
    comparison: SQL Server has no boolean values, only conditions."""
    return _full_match_flag(expr, regex, *like) == 1


def num(value: int) -> sa.ColumnElement:
    """An integer constant written into the SQL (keeps reproducing statements readable)."""
    return sa.literal_column(str(int(value)), sa.BigInteger())


def text_literal(value: str) -> sa.ColumnElement:
    return sa.literal_column("'" + value.replace("'", "''") + "'", sa.String())


def concat(parts: list[sa.ColumnElement]) -> sa.ColumnElement:
    """parts joined with `||` (`+` on SQL Server): no argument-count limit, unlike concat()."""
    expr: sa.ColumnElement[str] = sa.type_coerce(parts[0], sa.String())
    for part in parts[1:]:
        expr = expr + sa.type_coerce(part, sa.String())
    return expr


#: PostgreSQL's concat_ws takes at most 100 arguments, the separator included
_CONCAT_WS_ARGS = 99


class separated(FunctionElement):
    """Texts, none of them NULL, joined by SEPARATOR: one concat_ws call per 99 parts, nested (PostgreSQL,
    DuckDB; cheaper than a chain of `||`, which copies the growing text at every step); `+` on SQL Server."""

    type = sa.String()
    inherit_cache = True


@compiles(separated)
def _separated(element: separated, compiler, **kw) -> str:
    parts = [compiler.process(part, **kw) for part in element.clauses]
    while len(parts) > 1:
        parts = [
            f"concat_ws('{SEPARATOR}', {', '.join(parts[i : i + _CONCAT_WS_ARGS])})"
            for i in range(0, len(parts), _CONCAT_WS_ARGS)
        ]
    return parts[0]


@compiles(separated, "mssql")
def _separated_mssql(element: separated, compiler, **kw) -> str:
    parts = list(element.clauses)
    interleaved = [x for part in parts[1:] for x in (text_literal(SEPARATOR), part)]
    return compiler.process(concat([parts[0], *interleaved]), **kw)


def row_text(fields: list[sa.ColumnElement]) -> sa.ColumnElement:
    """The canonical row text: fields separated by '|', NULL as '\\N' (an explicit marker, so concat_ws,
    which skips NULLs, never sees one and two rows' texts stay distinct)."""
    return separated(*(sa.func.coalesce(field, text_literal(NULL_MARKER)) for field in fields))


def fence(query: sa.Select, dialect: str | None = None) -> sa.Select:
    """The query behind OFFSET 0, a fence: PostgreSQL computes its columns once instead of inlining them
    wherever they are used. Written as a literal: a bound OFFSET parameter is not a constant to the planner
    when it decides whether the subquery may run in parallel workers. The query around a fence runs in one
    process (PostgreSQL 16 plans no parallel join or aggregate above a subquery with OFFSET). SQL Server needs
    no fence and allows no OFFSET without ORDER BY: there the query is left as it is."""
    if dialect == "mssql":
        return query
    return query.offset(sa.literal_column("0"))


def round_div(numerator, denominator) -> sa.ColumnElement:
    """R(n / d): integer n / positive integer d rounded half away from zero, exactly (no float, no overflow)."""
    n = wide(numerator)
    d = wide(denominator)
    return sa.case(
        (n >= 0, idiv(num(2) * n + d, num(2) * d)),
        else_=-idiv(num(-2) * n + d, num(2) * d),
    )


def round_div_bigint(numerator, denominator) -> sa.ColumnElement:
    """R(n / d) for a non-negative BIGINT n and positive d with 2n + d below 2^63, in BIGINT arithmetic."""
    return bigint_div(num(2) * numerator + denominator, num(2) * denominator)


_unscale = dialect_function("unscale", sa.Numeric(), default="(CAST({0} AS DECIMAL(38, 0)) * {1})")


def from_cents(expr, scale: int = 2) -> sa.ColumnElement:
    """An unscaled integer back as an exact DECIMAL (1250 at scale 2 -> 12.50): a product, no division
    (DuckDB divides DECIMALs in floating point)."""
    return _unscale(expr, sa.literal_column(f"0.{'0' * (scale - 1)}1", sa.Numeric()))


def mul_div_round(a, b, d) -> sa.ColumnElement:
    """round(a * b / d) half away from zero, the workhorse of the instalment formulas."""
    return round_div(wide(a) * wide(b), d)


def scaled(expr, scale: int) -> sa.ColumnElement:
    """A DECIMAL as an integer of its smallest unit (12.50 at scale 2 -> 1250), exact in every dialect."""
    return as_bigint(expr * num(10**scale))


def flag(expr, dialect: str) -> sa.ColumnElement:
    """A BIT/BOOLEAN column as a boolean condition (SQL Server has no boolean expressions over bit)."""
    return expr == 1 if dialect == "mssql" else sa.type_coerce(expr, sa.Boolean()).is_(sa.true())


def violated(ok: sa.ColumnElement) -> sa.ColumnElement:
    """1 unless the condition is TRUE: a NULL operand counts as a violation, not as a pass."""
    return sa.case((ok, 0), else_=1)


def compile_sql(statement: sa.ClauseElement, engine_or_dialect) -> str:
    """The statement as literal SQL for the given dialect, for a person to paste and run."""
    dialect = getattr(engine_or_dialect, "dialect", engine_or_dialect)
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
