"""Dialect functions are declared through the one helper, `consorcio_assets.common.dialects.dialect_function`."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql, postgresql

from consorcio_assets.common.dialects import dialect_function

REPO = Path(__file__).resolve().parents[1]
#: the helper itself, and checks/sql.py's two renderers that carry state the templates cannot (a regex, chunking)
RENDERERS = {"consorcio_assets/common/dialects.py", "consorcio_assets/checks/sql.py"}

pair = dialect_function("pair", sa.String(), default="f({0}, {1})", mssql="G({args})")


def _sql(expr, dialect) -> str:
    return str(expr.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def test_no_module_registers_its_own_renderer():
    found = {
        str(p.relative_to(REPO)) for p in (REPO / "consorcio_assets").rglob("*.py") if "@compiles(" in p.read_text()
    }
    assert found <= RENDERERS, f"declare dialect functions with dialects.dialect_function: {found - RENDERERS}"


def test_templates_by_dialect_with_the_default_for_the_others():
    a, b = sa.column("a"), sa.column("b")
    assert _sql(pair(a, b), postgresql.dialect()) == "f(a, b)"
    assert _sql(pair(a, b), mssql.dialect()) == "G(a, b)"
    assert _sql(pair(a + 1, b), postgresql.dialect()) == "f((a + 1), b)"  # operators never bind into the template


def test_a_function_without_a_default_is_refused():
    with pytest.raises(ValueError, match="needs a default"):
        dialect_function("only_mssql", sa.String(), mssql="X({0})")
