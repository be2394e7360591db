"""The harness's T-SQL -> DuckDB translation: sqlglot, typed by the catalog's SQL Server types, plus a few
rewrites of T-SQL semantics sqlglot leaves as they are (each documented by SQL Server's reference):

- LEN counts characters without trailing spaces;
- `+` with a string operand concatenates (NULL-propagating under CONCAT_NULL_YIELDS_NULL, the default);
- LIKE's pattern: `%` any string, `_` one character, `[...]`/`[^...]` a character class (DuckDB's LIKE has no
  classes), evaluated as a full regular-expression match;
- a binary collation (Latin1_General_BIN/BIN2) compares code points, which is DuckDB's own comparison;
- `(N)VARCHAR(MAX)` is an unbounded text; NCHAR(n) the character of code point n;
- a CTE that names itself is recursive (T-SQL has no RECURSIVE keyword);
- a DATETIME cast to DATETIME2(7) is a microsecond TIMESTAMP (DATETIME has no finer digit; DuckDB's
  nanosecond timestamp ends in 2262, SQL Server's DATETIME2 in 9999).

What stays out of reach (HASHBYTES to BIGINT, CHECKSUM_AGG, SWITCHOFFSET/TZOFFSET on the stand-in's text
DATETIMEOFFSET, DATALENGTH, the sys catalog views) is listed in the tests with hand-derived results.
"""

from __future__ import annotations

import re

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types

from consorcio_assets.catalog import Catalog

def like_regex(pattern: str) -> str:
    """A T-SQL LIKE pattern as a regular expression: `%` any string, `_` one character, `[...]` / `[^...]` a
    character class (so `[_]` and `[%]` are the characters themselves), anything else literal."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "[" and "]" in pattern[i + 1:]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1:end]
            negate = body.startswith("^")
            body = body[1:] if negate else body
            out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
            i = end + 1
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return "".join(out)


def tsql_like(text: str, pattern: str) -> bool:
    return re.fullmatch(like_regex(pattern), text, re.DOTALL) is not None


def install(con: duckdb.DuckDBPyConnection) -> None:
    """The functions the translation calls, on a DuckDB connection."""
    con.create_function("tsql_like", tsql_like, ["VARCHAR", "VARCHAR"], "BOOLEAN")


def schema_of(cat: Catalog) -> dict:
    return {"dbo": {t.name: {c.name: c.sqlserver_type_sql for c in t.columns} for t in cat}}


def _is_text(node: exp.Expression) -> bool:
    if isinstance(node, (exp.National, exp.Literal)) and node.is_string:
        return True
    if isinstance(node, exp.National):
        return True
    return bool(node.type and node.type.is_type(*exp.DataType.TEXT_TYPES))


def _rewrite(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Add) and (_is_text(node.this) or _is_text(node.expression)):
        return exp.DPipe(this=node.this, expression=node.expression)
    if isinstance(node, exp.Collate) and "_BIN" in node.expression.sql().upper():
        return node.this
    if isinstance(node, exp.DataType) and any("MAX" in p.sql().upper() for p in node.expressions):
        binary = node.is_type(exp.DataType.Type.VARBINARY, exp.DataType.Type.BINARY)
        return exp.DataType.build("BLOB" if binary else "VARCHAR")
    if isinstance(node, exp.Anonymous) and str(node.this).upper() == "NCHAR":
        return exp.Anonymous(this="chr", expressions=node.expressions)
    if isinstance(node, exp.With):
        names = {cte.alias for cte in node.expressions}
        if any(t.name in names for cte in node.expressions for t in cte.this.find_all(exp.Table)):
            node.set("recursive", True)
    return node


_DATETIME = (exp.DataType.Type.DATETIME, exp.DataType.Type.DATE)


def _second(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Like):
        return exp.Anonymous(this="tsql_like", expressions=[node.this, node.expression])
    if isinstance(node, exp.Length):  # LEN: characters without the trailing spaces
        return exp.Length(this=exp.Trim(this=node.this, position="TRAILING"))
    if (isinstance(node, exp.Cast) and node.to.is_type(exp.DataType.Type.DATETIME2)
            and node.this.type is not None and node.this.type.is_type(*_DATETIME)):
        # a DATETIME (1/300 s) has no digit below the microsecond: DuckDB's microsecond TIMESTAMP holds it
        # to 9999, where its nanosecond one (DATETIME2(7)) ends in 2262
        return exp.cast(node.this, exp.DataType.build("TIMESTAMP"))
    return node


def to_duckdb(sql: str, schema: dict) -> str:
    """A T-SQL script as DuckDB SQL, with SQL Server's meaning where the rewrites above reach."""
    out = []
    for tree in sqlglot.parse(sql, read="tsql"):
        typed = annotate_types(tree, schema=schema, dialect="tsql")
        # two passes: a replaced node's children are not visited again
        out.append(typed.transform(_second).transform(_rewrite).sql("duckdb"))
    return ";\n".join(out)
