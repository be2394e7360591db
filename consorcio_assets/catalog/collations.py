"""The collation rule table: which Aurora columns compare as SQL Server's database collation does.

The source database collation is Latin1_General_CI_AI: case- and accent-insensitive comparisons everywhere.
PostgreSQL's default is deterministic (byte-wise equality), so 'ABC' = 'abc' and 'José' = 'Jose' would stop
holding. An ICU nondeterministic collation restores them per column where the application depends on it:
unique keys over text and the columns the application searches. The rest keep the database default because
a nondeterministic collation costs speed and PostgreSQL refuses LIKE/regular expressions on it before version
18 (the integrity checks match CPF/CNPJ, CEP and phone patterns), and those columns hold digits or codes whose
case never varies. Each row's reason is written in the data dictionary.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from consorcio_assets.catalog.naming import TARGET_SCHEMA


@dataclass(frozen=True)
class Collation:
    name: str
    locale: str
    deterministic: bool
    description: str

    @property
    def qualified(self) -> str:
        return f"{TARGET_SCHEMA}.{self.name}"

    def create_sql(self) -> str:
        det = "true" if self.deterministic else "false"
        return (
            f"CREATE COLLATION IF NOT EXISTS {self.qualified} "
            f"(provider = icu, locale = '{self.locale}', deterministic = {det})"
        )

    def fallback_sql(self) -> str:
        """A server built without ICU (the embedded pgserver wheel): a deterministic stand-in of the same name,
        so the DDL stays one; it compares byte-wise, and the rehearsal reports it (Aurora always has ICU)."""
        return f'CREATE COLLATION IF NOT EXISTS {self.qualified} FROM "C"'


#: ICU level1 strength: base letters only (case and accents ignored), as Latin1_General_CI_AI
CI_AI = Collation(
    "ci_ai",
    "und-u-ks-level1",
    False,
    "ICU nondeterministic, strength level 1: case- and accent-insensitive (Latin1_General_CI_AI)",
)

COLLATIONS = {c.name: c for c in (CI_AI,)}

#: comment on a stand-in collation: how the rehearsal and the checks tell it from the real one
FALLBACK_COMMENT = "stand-in: this PostgreSQL has no ICU; comparisons are byte-wise"


def _latin_folds() -> tuple[str, str]:
    """Every Latin-1 and Latin Extended-A letter whose canonical decomposition starts with an ASCII letter, and
    that letter in lower case ('É' -> 'e', 'ç' -> 'c'): what ICU level 1 ignores for Portuguese text."""
    letters = [chr(i) for i in range(0xC0, 0x180)]
    pairs = [(ch, unicodedata.normalize("NFD", ch)[0].lower()) for ch in letters]
    pairs = [(ch, base) for ch, base in pairs if base.isascii() and base.isalpha()]
    return "".join(ch for ch, _ in pairs), "".join(base for _, base in pairs)


FOLD_FROM, FOLD_TO = _latin_folds()

#: `consorcio.ci_ai_key(text)`: the comparison key of SQL Server's CI_AI for Latin text (accents folded, then
#: lower case), IMMUTABLE so it can be indexed. Created on every server: on the ICU-less stand-in it is how the
#: unique keys (`semantics.stand_in_keys`) and the application's lookups (`ci_ai_lookup`) get CI_AI semantics;
#: on Aurora `=` on a ci_ai column already compares so, and the same lookup expression still works.
KEY_FUNCTION = f"{TARGET_SCHEMA}.ci_ai_key"


def key_function_sql() -> str:
    return (
        f"CREATE OR REPLACE FUNCTION {KEY_FUNCTION}(text) RETURNS text LANGUAGE sql IMMUTABLE STRICT "
        f"PARALLEL SAFE AS $f$ SELECT lower(translate($1, '{FOLD_FROM}', '{FOLD_TO}')) $f$"
    )


def ci_ai_lookup(column_sql: str, value_sql: str) -> str:
    """The lookup that is case- and accent-insensitive on ICU and on the stand-in alike."""
    return f"{KEY_FUNCTION}({column_sql}) = {KEY_FUNCTION}({value_sql})"


@dataclass(frozen=True)
class CollationRule:
    table: str
    column: str
    collation: str
    reason: str


# fmt: off
COLLATION_RULES: tuple[CollationRule, ...] = (
    #              table              column          collation  why the application needs SQL Server's semantics
    CollationRule("Segmento",        "Codigo",       "ci_ai",   "unique key over text: 'AUTO' and 'auto' are one code"),
    CollationRule("Grupo",           "CodigoGrupo",  "ci_ai",   "unique key over text"),
    CollationRule("Administradora",  "Cnpj",         "ci_ai",   "unique key over text (alphanumeric CNPJ from 2026)"),
    CollationRule("Administradora",  "RazaoSocial",  "ci_ai",   "searched by name"),
    CollationRule("PlanoComercial",  "Nome",         "ci_ai",   "searched by name"),
    CollationRule("Cliente",         "Nome",         "ci_ai",   "searched by name ('José' finds 'JOSE')"),
    CollationRule("Cliente",         "Email",        "ci_ai",   "searched by e-mail, case-insensitively"),
)
# fmt: on

_BY_COLUMN = {(r.table, r.column): r for r in COLLATION_RULES}


def collation_rule(table: str, column: str) -> CollationRule | None:
    return _BY_COLUMN.get((table, column))


#: what still differs from SQL Server after the rules above (written in the data dictionary)
REMAINING_DIFFERENCES = (
    "SQL Server ignores trailing spaces when comparing text ('abc' = 'abc  '); PostgreSQL's varchar does not. "
    "CHAR(n) values are loaded without their padding into varchar(n): the application must not pad what it writes "
    "or searches.",
    "Columns without a rule compare with the database's default collation: case- and accent-sensitive.",
    "A nondeterministic collation refuses LIKE and regular expressions before PostgreSQL 18: search those "
    'columns with = or with ILIKE on a column COLLATE "default" (e.g. `nome COLLATE "default" ILIKE $1`).',
    "ORDER BY on a ci_ai column sorts by ICU's root collation (accents and case as tie-breakers only), not by "
    "Latin1_General's code-page order.",
)
