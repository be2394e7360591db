"""Source (SQL Server, PascalCase) to target (PostgreSQL, snake_case) naming."""

import re

_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(name: str) -> str:
    """`SimulacaoParcela` -> `simulacao_parcela`, `vw_SimulacaoResumo` -> `vw_simulacao_resumo`."""
    return _BOUNDARY.sub("_", name).lower()


TARGET_SCHEMA = "consorcio"
