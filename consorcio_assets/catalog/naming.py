"""Source (SQL Server, PascalCase) to target (PostgreSQL, snake_case) naming."""

import re

_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(name: str) -> str:
    """`SimulacaoParcela` -> `simulacao_parcela`, `vw_SimulacaoResumo` -> `vw_simulacao_resumo`."""
    return _BOUNDARY.sub("_", name).lower()


TARGET_SCHEMA = "consorcio"
#: DMS loads a view as a table: that snapshot lives here, so `consorcio.<view>` can be the live view the
#: application reads (same name as in SQL Server), and the table's name still says what it is
SNAPSHOT_SCHEMA = "consorcio_snapshot"

#: PostgreSQL's reserved key words: as identifiers they must be quoted, like any name that is not plain
#: lower-case letters, digits and underscores
POSTGRES_RESERVED = frozenset(
    """
all analyse analyze and any array as asc asymmetric authorization binary both case cast check collate collation
column concurrently constraint create cross current_catalog current_date current_role current_schema current_time
current_timestamp current_user default deferrable desc distinct do else end except false fetch for foreign freeze
from full grant group having ilike in initially inner intersect into is isnull join lateral leading left like limit
localtime localtimestamp natural not notnull null offset on only or order outer overlaps placing primary references
returning right select session_user similar some symmetric system_user table tablesample then to trailing true union
unique user using variadic verbose when where window with
""".split()
)
_PLAIN = re.compile(r"^[a-z_][a-z0-9_]*$")


def needs_quotes(name: str) -> bool:
    """Whether `name` must be quoted to be a PostgreSQL identifier."""
    return not _PLAIN.match(name) or name in POSTGRES_RESERVED
