"""SQL functions spelled differently per dialect (PostgreSQL, DuckDB, SQL Server), declared as data.

`dialect_function(name, type, default=..., mssql=..., duckdb=...)` is the one way the project writes such a
function: a SQLAlchemy function element whose SQL comes from a per-dialect template (`{0}`, `{1}` ... are the
compiled arguments, `{args}` all of them comma-separated), with `default` for any dialect not named. The checks
(`checks/sql.py`), the source queries, the DMS pre-flight and assessment and the local DMS engine all declare
their functions through it, so no module registers its own `@compiles` renderer.
"""

from __future__ import annotations

from typing import ClassVar

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import BindParameter, Case, ColumnClause
from sqlalchemy.sql.expression import FunctionElement


class DialectFunction(FunctionElement):
    """A function rendered from a per-dialect template."""

    inherit_cache = True
    templates: ClassVar[dict[str, str]] = {}


def _argument(arg, compiler, **kw) -> str:
    """An argument, parenthesised unless it is atomic (operators must not bind into the template)."""
    sql = compiler.process(arg, **kw)
    return sql if isinstance(arg, (ColumnClause, BindParameter, FunctionElement, Case)) else f"({sql})"


@compiles(DialectFunction)
def _render(element: DialectFunction, compiler, **kw) -> str:
    args = [_argument(arg, compiler, **kw) for arg in element.clauses]
    template = element.templates.get(compiler.dialect.name, element.templates["default"])
    return template.format(*args, args=", ".join(args))


def dialect_function(name: str, type_: sa.types.TypeEngine, **templates: str) -> type[DialectFunction]:
    """A function class named `name` returning `type_`; `templates` maps dialect names (and `default`) to SQL."""
    if "default" not in templates:
        raise ValueError(f"dialect function {name} needs a default template")
    return type(name, (DialectFunction,), {"templates": templates, "type": type_, "inherit_cache": True})
