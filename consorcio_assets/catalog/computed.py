"""A computed column's T-SQL expression as a PostgreSQL `GENERATED ALWAYS AS (...) STORED` expression.

sqlglot transpiles the expression; columns get their target names. A function sqlglot does not know (it
parses it as an anonymous call, copied through unchanged) has no translation: the catalog build fails naming
table, column and expression rather than creating a column PostgreSQL would compute differently or reject.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from consorcio_assets.catalog.naming import needs_quotes, snake_case


class UntranslatableExpressionError(ValueError):
    pass


#: the expression nodes whose PostgreSQL rendering computes what SQL Server computes (arithmetic, casts,
#: literals, columns, NULL handling); anything else (functions such as SOUNDEX, string or date functions whose
#: semantics differ) needs a row here, checked by a test, before a computed column may use it
TRANSLATABLE_NODES = frozenset(
    {
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Neg",
        "Paren",
        "Cast",
        "DataType",
        "DataTypeParam",
        "Column",
        "Identifier",
        "Literal",
        "Null",
        "Coalesce",
        "Round",
        "Abs",
    }
)


def translate_computed(expression: str, where: str, rename=snake_case) -> str:
    try:
        tree = sqlglot.parse_one(expression, read="tsql")
    except sqlglot.errors.ParseError as err:
        raise UntranslatableExpressionError(f"{where}: computed expression {expression} does not parse: {err}") from err
    unknown = sorted(
        {
            (n.name if isinstance(n, exp.Anonymous) else "") or type(n).__name__.upper()
            for n in tree.walk()
            if type(n).__name__ not in TRANSLATABLE_NODES
        }
    )
    if unknown:
        raise UntranslatableExpressionError(
            f"{where}: computed expression {expression} uses {', '.join(unknown)}, which has no PostgreSQL translation"
        )
    for col in tree.find_all(exp.Column):
        name = rename(col.name)
        col.set("this", exp.to_identifier(name, quoted=needs_quotes(name)))
    return tree.sql(dialect="postgres")
