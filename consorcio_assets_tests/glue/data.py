"""Small hand-made rows for contract tables (valid keys, checks and foreign keys), and a big synthetic
SimulacaoParcela built with Arrow, all as DMS writes them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pyarrow as pa

from consorcio_assets.catalog import catalog
from consorcio_assets_tests.glue.helpers import dms_table

CAT = catalog()

UFS = [
    {"Uf": "SP", "Nome": "São Paulo", "Regiao": "Sudeste", "CepInicial": "01000000", "CepFinal": "19999999"},
    {"Uf": "RJ", "Nome": "Rio de Janeiro", "Regiao": "Sudeste", "CepInicial": "20000000", "CepFinal": "28999999"},
    {
        "Uf": "DF",
        "Nome": "Distrito Federal",
        "Regiao": "Centro-Oeste",
        "CepInicial": "70000000",
        "CepFinal": "72799999",
    },
]


def segmentos(n: int = 4, **overrides) -> list[dict]:
    rows = [
        {
            "SegmentoId": i,
            "Codigo": f"SEG{i}",
            "Descricao": f"Segmento {i} — imóveis",
            "IndiceReajuste": "INCC",
            "PrazoMinimo": 12,
            "PrazoMaximo": 200,
        }
        for i in range(1, n + 1)
    ]
    for key, changes in overrides.items():
        rows[int(key.removeprefix("row"))].update(changes)
    return rows


def administradoras(n: int = 3) -> list[dict]:
    return [
        {
            "AdministradoraId": i,
            "Cnpj": f"{i:014d}",
            "RazaoSocial": f"Administradora {i} S.A.",
            "Ativa": i % 2 == 1,
            "CadastradaEm": dt.datetime(2020, 1, i, 8, 30, 0, 123000),
        }
        for i in range(1, n + 1)
    ]


def planos(n: int = 5, segmentos_ids=(1, 2), administradoras_ids=(1, 2, 3)) -> list[dict]:
    return [
        {
            "PlanoId": i,
            "AdministradoraId": administradoras_ids[i % len(administradoras_ids)],
            "SegmentoId": segmentos_ids[i % len(segmentos_ids)],
            "Nome": f"Plano {i}",
            "PrazoMeses": 60,
            "PctTaxaAdm": Decimal("15.0000"),
            "PctFundoReserva": Decimal("2.5000"),
            "PctAntecipacao": Decimal("1.0000"),
            "PctSeguroMes": Decimal("0.035000"),
            "BaseSeguro": "SD",
            "PctReducao": None,
            "PctEmbutidoMax": Decimal("30.00"),
            "PctLanceFixo": Decimal("25.00") if i % 2 else None,
            "CreditoMinimo": Decimal("10000.0000"),
            "CreditoMaximo": Decimal("500000.0000"),
            "VigenciaInicio": dt.date(2023, 1, 1),
            "VigenciaFim": None,
        }
        for i in range(1, n + 1)
    ]


def table(name: str, rows: list[dict]) -> pa.Table:
    return dms_table(CAT[name], rows)


def _decimal(values: np.ndarray, precision: int, scale: int) -> pa.Array:
    """decimal128 from unscaled int64 values, without going through Python objects."""
    words = np.empty((len(values), 2), dtype=np.int64)
    words[:, 0], words[:, 1] = values, values >> 63
    return pa.Array.from_buffers(pa.decimal128(precision, scale), len(values), [None, pa.py_buffer(words)])


def parcelas(rows: int, per_simulacao: int = 100, seed: int = 1) -> pa.Table:
    """`rows` instalments of SimulacaoParcela (DMS schema), vectorised."""
    rng = np.random.default_rng(seed)
    sim = np.arange(rows) // per_simulacao + 1
    num = np.arange(rows) % per_simulacao + 1
    arrays = {
        "SimulacaoId": pa.array(sim, pa.int64()),
        "NumeroParcela": pa.array(num, pa.int16()),
        "Vencimento": pa.array((19000 + num * 30).astype(np.int32), pa.int32()).cast(pa.date32()),
    }
    for name in (
        "ValorFundoComum",
        "ValorTaxaAdm",
        "ValorFundoReserva",
        "ValorSeguro",
        "ValorAntecipacao",
        "ValorTotal",
    ):
        arrays[name] = _decimal(rng.integers(0, 10**9, rows), 15, 2)
    arrays["PctAmortizadoAcumulado"] = _decimal(rng.integers(0, 10**8, rows), 9, 6)
    return pa.Table.from_pydict(arrays, schema=CAT["SimulacaoParcela"].dms_schema())
