"""A lint for statements sent to SQL Server 2017: parse with sqlglot's T-SQL reader, then flag every construct
SQL Server 2017 lacks. The rules are a table (name, what to use instead, test over one syntax node)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.tokens import TokenType


@dataclass(frozen=True)
class Rule:
    name: str
    instead: str
    matches: Callable[[exp.Expression], bool]


def _function(*names: str) -> Callable[[exp.Expression], bool]:
    upper = {n.upper() for n in names}
    return lambda node: isinstance(node, exp.Anonymous) and str(node.this).upper() in upper


_BOOLEAN = (exp.Predicate, exp.Connector, exp.Not, exp.Boolean)


def _unwrap(node: exp.Expression | None) -> exp.Expression | None:
    while isinstance(node, (exp.Alias, exp.Paren)):
        node = node.this
    return node


def _is_boolean(node: exp.Expression | None) -> bool:
    return isinstance(_unwrap(node), _BOOLEAN)


def _boolean_as_value(node: exp.Expression) -> bool:
    """A predicate where SQL Server wants a value: a select-list item, a CASE result, a comparison operand."""
    if isinstance(node, exp.Select):
        return any(_is_boolean(e) for e in node.expressions)
    if isinstance(node, exp.If):
        return _is_boolean(node.args.get("true"))
    if isinstance(node, exp.Case):
        return _is_boolean(node.args.get("default"))
    if isinstance(node, (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)):
        return _is_boolean(node.this) or _is_boolean(node.expression)
    return False


RULES: tuple[Rule, ...] = (
    Rule(
        "GENERATE_SERIES",
        "a numbers CTE or a cross-joined tally (GENERATE_SERIES is SQL Server 2022)",
        lambda n: isinstance(n, exp.GenerateSeries) or _function("GENERATE_SERIES")(n),
    ),
    Rule(
        "GREATEST/LEAST",
        "a CASE expression (GREATEST and LEAST are SQL Server 2022)",
        lambda n: isinstance(n, (exp.Greatest, exp.Least)),
    ),
    Rule(
        "IS [NOT] DISTINCT FROM",
        "(a = b OR (a IS NULL AND b IS NULL)) (2022)",
        lambda n: isinstance(n, (exp.NullSafeEQ, exp.NullSafeNEQ)),
    ),
    Rule("DATE_BUCKET", "DATEADD/DATEDIFF arithmetic (DATE_BUCKET is 2022)", _function("DATE_BUCKET")),
    Rule(
        "DATETRUNC",
        "DATEADD(unit, DATEDIFF(unit, 0, d), 0) (DATETRUNC is 2022)",
        lambda n: isinstance(n, (exp.TimestampTrunc, exp.DateTrunc)) or _function("DATETRUNC")(n),
    ),
    Rule(
        "APPROX_COUNT_DISTINCT",
        "COUNT(DISTINCT ...) (APPROX_COUNT_DISTINCT is 2019)",
        lambda n: isinstance(n, exp.ApproxDistinct) or _function("APPROX_COUNT_DISTINCT")(n),
    ),
    Rule(
        "STRING_SPLIT with an ordinal",
        "STRING_SPLIT(s, sep) without enable_ordinal (the ordinal is 2022)",
        lambda n: _function("STRING_SPLIT")(n) and len(n.expressions) > 2,
    ),
    Rule(
        "TRIM(... FROM ...) / two-argument LTRIM, RTRIM",
        "TRIM(s), LTRIM(s), RTRIM(s) (characters are 2022)",
        lambda n: isinstance(n, exp.Trim) and n.args.get("expression") is not None,
    ),
    Rule(
        "JSON_OBJECT/JSON_ARRAY",
        "FOR JSON (JSON_OBJECT and JSON_ARRAY are 2022)",
        lambda n: isinstance(n, (exp.JSONObject, exp.JSONArray)) or _function("JSON_OBJECT", "JSON_ARRAY")(n),
    ),
    Rule(
        "WINDOW clause",
        "the window spelled out in each OVER (the WINDOW clause is 2022)",
        lambda n: isinstance(n, exp.Select) and bool(n.args.get("windows")),
    ),
    Rule(
        "_UTF8 collation",
        "NVARCHAR (UTF-8 collations are 2019)",
        lambda n: isinstance(n, exp.Collate) and "_UTF8" in n.expression.sql().upper(),
    ),
    Rule(
        "OFFSET without ORDER BY",
        "ORDER BY ... OFFSET n ROWS, or no OFFSET",
        lambda n: isinstance(n, exp.Select) and n.args.get("offset") is not None and not n.args.get("order"),
    ),
    Rule(
        "boolean expression as a value",
        "CASE WHEN condition THEN 1 ELSE 0 END (SQL Server has no boolean values)",
        _boolean_as_value,
    ),
)

#: LIMIT parses to the same tree as TOP: found among the tokens instead
LIMIT_RULE = Rule("LIMIT", "TOP (n) or ORDER BY ... OFFSET ... FETCH", lambda n: False)


def lint(sql: str) -> list[str]:
    """Every construct SQL Server 2017 lacks in `sql` (one line each), or a parse error; [] when clean."""
    try:
        trees = sqlglot.parse(sql, read="tsql", error_level=sqlglot.ErrorLevel.RAISE)
    except sqlglot.errors.SqlglotError as err:
        return [f"does not parse as T-SQL: {str(err).splitlines()[0]}"]
    found: list[str] = []
    if any(t.token_type == TokenType.LIMIT for t in sqlglot.tokenize(sql, read="tsql")):
        found.append(f"{LIMIT_RULE.name}: use {LIMIT_RULE.instead}")
    for tree in trees:
        for node in tree.walk():
            for rule in RULES:
                message = f"{rule.name}: use {rule.instead}"
                if rule.matches(node) and message not in found:
                    found.append(message)
    return found
