"""The harness's T-SQL -> DuckDB translation: sqlglot, typed by the catalog's SQL Server types, plus a few
rewrites of T-SQL semantics sqlglot leaves as they are (each documented by SQL Server's reference):

- LEN counts characters without trailing spaces;
- `+` with a string operand concatenates (NULL-propagating under CONCAT_NULL_YIELDS_NULL, the default);
- LIKE's pattern: `%` any string, `_` one character, `[...]`/`[^...]` a character class (DuckDB's LIKE has no
  classes), evaluated as a full regular-expression match;
- a binary collation (Latin1_General_BIN/BIN2) compares code points, which is DuckDB's own comparison;
- `(N)VARCHAR(MAX)` is an unbounded text; NCHAR(n) the character of code point n;
- a CTE that names itself is recursive (T-SQL has no RECURSIVE keyword);
- a BIT as text is '1' or '0' (the stand-in keeps BIT as BOOLEAN);
- a DATETIME cast to DATETIME2(7) is a microsecond TIMESTAMP (DATETIME has no finer digit; DuckDB's
  nanosecond timestamp ends in 2262, SQL Server's DATETIME2 in 9999).

- HASHBYTES('MD5', CAST(x AS VARCHAR(MAX))), SUBSTRING of VARBINARY, CAST(VARBINARY AS BIGINT) and 0x literals
  as SQL Server defines them (Python functions registered on the connection).

What stays out of reach (CHECKSUM_AGG, SWITCHOFFSET/TZOFFSET on the stand-in's text
DATETIMEOFFSET, DATALENGTH, the sys catalog views) is listed in the tests with hand-derived results.
"""

from __future__ import annotations

import hashlib
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
        if ch == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end]
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


def hashbytes_md5_varchar(text: str) -> bytes:
    """HASHBYTES('MD5', CAST(x AS VARCHAR(MAX))): the MD5 digest of the text in the VARCHAR code page (1252;
    characters it lacks become '?' here, best-fit letters on a real server: such rows are compared by value)."""
    return hashlib.md5(text.encode("cp1252", errors="replace")).digest()


def binary_substring(data: bytes, start: int, length: int) -> bytes:
    """SUBSTRING on VARBINARY: 1-based bytes."""
    return data[start - 1 : start - 1 + length]


def binary_to_bigint(data: bytes) -> int:
    """CAST(VARBINARY AS BIGINT): the rightmost 8 bytes, big-endian, two's complement (shorter: zero-padded left)."""
    return int.from_bytes(data[-8:].rjust(8, b"\0"), "big", signed=True)


def install(con: duckdb.DuckDBPyConnection) -> None:
    """The functions the translation calls, on a DuckDB connection."""
    con.create_function("tsql_like", tsql_like, ["VARCHAR", "VARCHAR"], "BOOLEAN")
    con.create_function("tsql_hashbytes_md5", hashbytes_md5_varchar, ["VARCHAR"], "BLOB")
    con.create_function("tsql_binary_substring", binary_substring, ["BLOB", "BIGINT", "BIGINT"], "BLOB")
    con.create_function("tsql_binary_to_bigint", binary_to_bigint, ["BLOB"], "BIGINT")


def schema_of(cat: Catalog) -> dict:
    return {"dbo": {t.name: {c.name: c.sqlserver_type_sql for c in t.columns} for t in cat}}


def _is_text(node: exp.Expression | None) -> bool:
    if node is None:
        return False
    if isinstance(node, (exp.National, exp.DPipe)) or (isinstance(node, exp.Literal) and node.is_string):
        return True
    if isinstance(node, exp.Anonymous) and str(node.this).upper() in ("NCHAR", "CHR"):
        return True
    if isinstance(node, (exp.Add, exp.Paren)):  # a chain of `+` is a concatenation when any operand is a text
        return _is_text(node.this) or _is_text(node.args.get("expression"))
    return bool(node.type and node.type.is_type(*exp.DataType.TEXT_TYPES))


def _rewrite(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Add) and (_is_text(node.this) or _is_text(node.expression)):
        # a replaced node's children are not visited: rewrite them here
        return exp.DPipe(this=node.this.transform(_rewrite), expression=node.expression.transform(_rewrite))
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
        like = exp.Anonymous(this="tsql_like", expressions=[node.this, node.expression])
        return exp.Not(this=like) if node.args.get("negate") else like
    if isinstance(node, exp.Length):  # LEN: characters without the trailing spaces
        return exp.Length(this=exp.Trim(this=node.this, position="TRAILING"))
    if (
        isinstance(node, exp.Cast)
        and node.to.is_type(*exp.DataType.TEXT_TYPES)
        and node.this.type is not None
        and node.this.type.is_type(exp.DataType.Type.BIT, exp.DataType.Type.BOOLEAN)
    ):
        # a BIT as text is '1' or '0'; the stand-in keeps BIT as BOOLEAN, whose text is 'true'
        return exp.cast(exp.cast(node.this, exp.DataType.build("INT")), exp.DataType.build("VARCHAR"))
    if (
        isinstance(node, exp.Cast)
        and node.to.is_type(exp.DataType.Type.DATETIME2)
        and node.this.type is not None
        and node.this.type.is_type(*_DATETIME)
    ):
        # a DATETIME (1/300 s) has no digit below the microsecond: DuckDB's microsecond TIMESTAMP holds it
        # to 9999, where its nanosecond one (DATETIME2(7)) ends in 2262
        return exp.cast(node.this, exp.DataType.build("TIMESTAMP"))
    return node


def _anonymous(name: str, *args: exp.Expression) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _is_call(node: exp.Expression, name: str) -> bool:
    return isinstance(node, exp.Anonymous) and str(node.this) == name


def _hashbytes(node: exp.Expression) -> exp.Expression:
    """HASHBYTES('MD5', CAST(x AS VARCHAR(MAX))): sqlglot reads it as MD5, whose DuckDB spelling is a hex text."""
    if isinstance(node, exp.MD5) and isinstance(node.this, exp.Cast):
        return _anonymous("tsql_hashbytes_md5", node.this.this)
    return node


def _binary_substring(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Substring) and _is_call(node.this, "tsql_hashbytes_md5"):
        return _anonymous("tsql_binary_substring", node.this, node.args["start"], node.args["length"])
    return node


def _binary_cast(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Cast) and _is_call(node.this, "tsql_binary_substring") and node.to.is_type("bigint"):
        return _anonymous("tsql_binary_to_bigint", node.this)
    if isinstance(node, exp.HexString):  # 0x... in an integer expression: its value
        return exp.Literal.number(int(node.this, 16))
    return node


def to_duckdb(sql: str, schema: dict) -> str:
    """A T-SQL script as DuckDB SQL, with SQL Server's meaning where the rewrites above reach."""
    out = []
    for tree in sqlglot.parse(sql, read="tsql"):
        typed = annotate_types(tree, schema=schema, dialect="tsql")
        # two passes: a replaced node's children are not visited again
        for rewrite in (_hashbytes, _binary_substring, _binary_cast, _second, _rewrite):
            typed = typed.transform(rewrite)
        out.append(typed.sql("duckdb"))
    return ";\n".join(out)
