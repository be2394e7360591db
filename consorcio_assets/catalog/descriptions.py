"""Column descriptions for the UI and docs, from the contract (comments, keys, checks, computed columns) and the
business rules (`contract/business-rules.md`): every bullet that names the column, for its table.

A rule bullet applies to a column when it names the column as a word, and either qualifies it with this table
(`PlanoComercial.PrazoMeses`) or does not qualify it and its section is about this table (the section's heading
or lead text names it, or the bullet does). The contract's comment comes first; keys and constraints follow.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from pathlib import Path

from consorcio_assets.catalog.model import Column, Table
from consorcio_assets.catalog.naming import TARGET_SCHEMA, snake_case

RULES_FILE = Path(__file__).resolve().parents[1] / "contract" / "business-rules.md"
#: bullets quoted per column at most (the rest stay in business-rules.md)
MAX_RULES = 3


def _sections(text: str) -> list[tuple[str, list[str]]]:
    """(section lead text: heading and prose, bullets with their continuation lines) per `##` section."""
    out: list[tuple[str, list[str]]] = []
    for part in re.split(r"^## ", text, flags=re.M):
        lead, bullets = [], []
        for line in part.splitlines():
            if re.match(r"^\s*- ", line):
                bullets.append(line.strip()[2:])
            elif line.startswith("  ") and bullets:
                bullets[-1] += " " + line.strip()
            elif not bullets:
                lead.append(line)
        out.append((" ".join(lead), bullets))
    return out


@lru_cache(maxsize=1)
def rule_sections(path: Path = RULES_FILE) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((lead, tuple(b)) for lead, b in _sections(path.read_text()))


def _names(text: str, word: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(word)}\b", text) is not None


def _lead_table(lead: str) -> str | None:
    match = re.search(r"dbo\.(\w+)", lead)
    return match.group(1) if match else None


def rules_for(table: Table, column: Column) -> list[str]:
    """The business-rule bullets that constrain this table's column (a section naming no `dbo.` table is about
    the table the document's preamble defines its notation for)."""
    return list(_rules_for(table.name, column.name))


@cache  # every stage's asset describes the same columns: 500 lookups of 120 answers while the definitions load
def _rules_for(table: str, column: str) -> tuple[str, ...]:
    found = []
    sections = rule_sections()
    default = _lead_table(sections[0][0]) if sections else None
    for lead, bullets in sections:
        about_table = (_lead_table(lead) or default) == table
        for bullet in bullets:
            qualified = re.findall(rf"\b(\w+)\.{re.escape(column)}\b", bullet)
            if qualified:
                applies = table in qualified
            else:
                applies = _names(bullet, column) and (about_table or _names(bullet, table))
            if applies:
                found.append(bullet.rstrip("."))
    return tuple(found)


def _structure(table: Table, column: Column) -> list[str]:
    facts = []
    if column.name in table.primary_key:
        facts.append("primary key" + (" (identity)" if column.identity else ""))
    for fk in table.foreign_keys:
        if column.name in fk.columns:
            ref_col = fk.ref_columns[fk.columns.index(column.name)]
            facts.append(f"foreign key to {TARGET_SCHEMA}.{snake_case(fk.ref_table)}.{snake_case(ref_col)}")
    facts += [f"unique ({name})" for name, cols in table.unique_keys if column.name in cols]
    facts += [f"CHECK {ck.sql}" for ck in table.checks if _names(ck.sql, column.name)]
    if column.computed:
        facts.append(f"computed in SQL Server: {column.computed}")
    if column.pii:
        facts.append("customer PII (LGPD): never in logs or check metadata")
    return facts


@cache
def _view_expressions(view_sql: str) -> dict[str, str]:
    import sqlglot
    from sqlglot import exp

    select = sqlglot.parse_one(view_sql, read="tsql").find(exp.Select)
    return {e.alias_or_name: e.unalias().sql(dialect="tsql") for e in (select.expressions if select else [])}


def view_expression(table: Table, column: str) -> str | None:
    """The SELECT expression behind a view's column (from the contract's view definition)."""
    try:
        return _view_expressions(table.view_sql or "").get(column)
    except Exception:  # noqa: BLE001 - a description is a nicety, never a failure
        return None


def column_description(table: Table, column: Column) -> str:
    """One line: the contract's comment, the business rules on the column, its keys and constraints, its types."""
    parts = [column.comment] if column.comment else []
    rules = rules_for(table, column)
    if rules:
        more = f" (+{len(rules) - MAX_RULES} more in business-rules.md)" if len(rules) > MAX_RULES else ""
        parts.append("Rules: " + "; ".join(rules[:MAX_RULES]) + more)
    parts += [f[0].upper() + f[1:] for f in _structure(table, column)]
    if table.is_view and (expression := view_expression(table, column.name)):
        parts.append(f"In the view: {expression}")
    parts.append(
        f"From {table.qualified_source}.{column.name} ({column.sqlserver_type_sql}"
        f"{'' if column.nullable else ', NOT NULL'})"
    )
    return ". ".join(p.rstrip(".") for p in parts) + "."


def offset_description(column: Column) -> str:
    return (
        f"Original UTC offset of {column.target_name}, in minutes (the DATETIMEOFFSET {column.name} split into "
        "the instant and its offset)."
    )
