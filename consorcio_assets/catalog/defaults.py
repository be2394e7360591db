"""The default-value rule table: each SQL Server DEFAULT expression the contract may use, as PostgreSQL says it.

Rows are data (like the type mapping): a pattern over the T-SQL expression (outer parentheses removed, as
sqlglot renders it), the type families it applies to, and the PostgreSQL template (`{0}` = the captured text).
An expression no row matches fails the catalog build, naming table, column and expression.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class DefaultRule:
    name: str
    pattern: str  # full match, case-insensitive
    families: frozenset[str]  # type families the rule applies to (empty = any)
    postgres: str

    def translate(self, expression: str, family: str) -> str | None:
        if self.families and family not in self.families:
            return None
        match = re.fullmatch(self.pattern, expression, re.IGNORECASE)
        return self.postgres.format(*match.groups()) if match else None


def _r(name, pattern, families, postgres) -> DefaultRule:
    return DefaultRule(name, pattern, frozenset(families.split()) if families else frozenset(), postgres)


_NUMBER = r"(-?\d+(?:\.\d+)?)"

# fmt: off
DEFAULT_RULES: tuple[DefaultRule, ...] = (
    #  name                 T-SQL (outer parentheses removed)        families                   PostgreSQL
    _r("bit true",          r"1",                                    "bool",                    "true"),
    _r("bit false",         r"0",                                    "bool",                    "false"),
    _r("number",            _NUMBER,                                 "int decimal float",       "{0}"),
    _r("string",            r"N?'((?:[^']|'')*)'",                   "char text lob",           "'{0}'"),
    _r("sequential uuid",   r"NEWSEQUENTIALID\(\)",                  "uuid",                    "gen_random_uuid()"),
    _r("random uuid",       r"NEWID\(\)",                            "uuid",                    "gen_random_uuid()"),
    # GETDATE/SYSDATETIME: the server's local wall clock (sqlglot renders SYSDATETIME as GETDATE)
    _r("local now",         r"(?:GETDATE|SYSDATETIME|CURRENT_TIMESTAMP)(?:\(\))?", "timestamp", "LOCALTIMESTAMP"),
    _r("utc now",           r"(?:GETUTCDATE|SYSUTCDATETIME)\(\)",   "timestamp",               "(now() AT TIME ZONE 'UTC')"),
    _r("now with offset",   r"SYSDATETIMEOFFSET\(\)",                "timestamptz",             "now()"),
    _r("today",             r"CAST\((?:GETDATE|SYSDATETIME)\(\) AS DATE\)", "date",             "CURRENT_DATE"),
)
# fmt: on

#: the default of a DATETIMEOFFSET's `<col>_offset_minutes` companion when the column has a default
OFFSET_COMPANION_DEFAULT = "(EXTRACT(TIMEZONE FROM now()) / 60)::smallint"


class UntranslatableDefaultError(ValueError):
    pass


def strip_parens(expression: str) -> str:
    text = expression.strip()
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    return text


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def translate_default(expression: str, family: str, where: str) -> str:
    """The PostgreSQL default of a T-SQL DEFAULT expression; `where` (table.column) names it in the error."""
    text = strip_parens(expression)
    for rule in DEFAULT_RULES:
        out = rule.translate(text, family)
        if out is not None:
            return out
    raise UntranslatableDefaultError(
        f"{where}: DEFAULT {expression} ({family}) has no rule in the default-value rule table"
    )
