"""A small hand-made source stand-in with the values that make DMS's type mapping interesting.

Deterministic, built in well under a second: CHAR padding, GUIDs, DATETIMEOFFSET text with odd offsets,
DATETIME2(7) with a 100 ns digit (also before 1970), MONEY with four decimals, ROWVERSION bytes, and
Observacao values with quotes, delimiters, line breaks, accents, the empty string, NULL and one value
longer than the default LobMaxSize.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from consorcio_assets.catalog import catalog
from consorcio_assets.source.stand_in import build

LONG_OBSERVACAO_CHARS = 70_000  # 140,000 bytes as NVARCHAR: over the default 128 KB LobMaxSize
NS_BASE = datetime(2024, 3, 5, 14, 22, 1)


def _batch(table: str, rows: list[dict]) -> tuple[str, pa.RecordBatch]:
    t = catalog()[table]
    fields = []
    for c in t.columns:
        if c.computed:
            continue
        typ = c.arrow_type()
        if c.family == "timestamp" and (c.fsp or 0) > 6:
            typ = pa.timestamp("ns")
        fields.append(pa.field(c.name, typ))
    schema = pa.schema(fields)
    return table, pa.RecordBatch.from_pylist(rows, schema=schema)


def _ns(offset_ns: int, base: datetime = NS_BASE) -> int:
    return int((base - datetime(1970, 1, 1)).total_seconds()) * 1_000_000_000 + offset_ns


def observacao(i: int) -> str | None:
    special = {
        0: None,
        1: "",
        2: 'diz "olá", e sai\nlinha 2',
        3: "a,b;c",
        4: "NULL",
        5: "x" * LONG_OBSERVACAO_CHARS,
        6: "çãõ € 𝄞",
    }
    return special.get(i, f"obs {i}")


def batches(simulacoes: int = 40, parcelas: int = 3, lances: bool = True):
    guid = lambda i, k: str(uuid.UUID(int=(k << 64) + i * 7919))  # noqa: E731 - lower-case, as uuid prints
    yield _batch(
        "UnidadeFederativa",
        [
            {"Uf": uf, "Nome": nome, "Regiao": reg, "CepInicial": a, "CepFinal": b}
            for uf, nome, reg, a, b in [
                ("SP", "São Paulo", "Sudeste", "01000000", "19999999"),
                ("AC", "Acre", "Norte", "69900000", "69999999"),
                ("RS", "Rio Grande do Sul", "Sul", "90000000", "99999999"),
            ]
        ],
    )
    yield _batch(
        "Segmento",
        [
            {
                "SegmentoId": 1,
                "Codigo": "IMOVEL",
                "Descricao": "Imóveis",
                "IndiceReajuste": "INCC",
                "PrazoMinimo": 120,
                "PrazoMaximo": 240,
            },
            {
                "SegmentoId": 255,
                "Codigo": "AUTO",
                "Descricao": "Automóveis",
                "IndiceReajuste": "IPCA",
                "PrazoMinimo": 12,
                "PrazoMaximo": 100,
            },
        ],
    )
    yield _batch(
        "IndiceCorrecao",
        [
            {
                "Indice": idx,
                "Competencia": date(2024, m, 1),
                "PctMes": Decimal(f"0.{m:02d}1234"),
                "PublicadoEm": datetime(2024, m, 10, 9, 30, 0, 123000),
            }
            for idx in ("INCC", "IPCA")
            for m in (1, 2)
        ],
    )
    yield _batch(
        "Administradora",
        [
            {
                "AdministradoraId": i,
                "Cnpj": f"{i:014d}",
                "RazaoSocial": f"Adm {i} S.A.",
                "Ativa": i == 1,
                "CadastradaEm": datetime(2010, i, 1, 8, 0, 0, 997000),
            }
            for i in (1, 2)
        ],
    )
    yield _batch(
        "PlanoComercial",
        [
            {
                "PlanoId": i,
                "AdministradoraId": i,
                "SegmentoId": (1, 255)[i - 1],
                "Nome": f"Plano {i}",
                "PrazoMeses": 100 + i,
                "PctTaxaAdm": Decimal("15.5000"),
                "PctFundoReserva": Decimal("2.0000"),
                "PctAntecipacao": Decimal("0"),
                "PctSeguroMes": Decimal("0.031000"),
                "BaseSeguro": "SD",
                "PctReducao": Decimal("25.00") if i == 1 else None,
                "PctEmbutidoMax": Decimal("30.00"),
                "PctLanceFixo": None,
                "CreditoMinimo": Decimal("50000.1234"),
                "CreditoMaximo": Decimal("922337203685477.5807"),
                "VigenciaInicio": date(2020, 1, 1),
                "VigenciaFim": None,
            }
            for i in (1, 2)
        ],
    )
    yield _batch(
        "Grupo",
        [
            {
                "GrupoId": i,
                "PlanoId": i,
                "CodigoGrupo": f"G{i:04d}",
                "QuantidadeCotas": 500,
                "DataConstituicao": date(2021, 5, i) if i == 1 else None,
                "DiaAssembleia": 15,
                "Situacao": "A",
            }
            for i in (1, 2)
        ],
    )
    clientes = max(simulacoes // 2, 1)
    yield _batch(
        "Cliente",
        [
            {
                "ClienteId": guid(i, 1),
                "TipoPessoa": "F" if i % 3 else "J",
                "CpfCnpj": f"{i:011d}" if i % 3 else f"{i:014d}",
                "Nome": f"Cliente {i}",
                "Email": None if i % 4 == 0 else f"c{i}@exemplo.com.br",
                "Telefone": f"5511{i:09d}",
                "DataNascimento": date(1950 + i % 50, 1, 1),
                "RendaMensal": Decimal(f"{1000 + i}.5678"),
                "Cep": f"{i:08d}",
                "Uf": ("SP", "AC", "RS")[i % 3],
                "ConsentimentoLgpd": i % 2 == 0,
                "CadastradoEm": f"2023-0{1 + i % 9}-1{i % 10} 10:{i % 60:02d}:00.123 {('-03:00', '+00:00', '-05:00')[i % 3]}",
            }
            for i in range(clientes)
        ],
    )
    yield _batch(
        "Simulacao",
        [
            {
                "SimulacaoId": i,
                "SimulacaoGuid": guid(i, 2),
                "ClienteId": guid(i % clientes, 1) if i % 5 else None,
                "PlanoId": 1 + i % 2,
                "GrupoId": 1 + i % 2 if i % 4 else None,
                "Canal": 1 + i % 5,
                "ValorCredito": Decimal(f"{100000 + i}.25"),
                "PrazoMeses": 7 + i % 200,
                "PctTaxaAdm": Decimal("15.5000"),
                "PctFundoReserva": Decimal("2.0000"),
                "PctAntecipacao": Decimal("0.0000"),
                "PctSeguroMes": Decimal("0.031000"),
                "PctReducao": None,
                "ComSeguro": i % 2 == 1,
                "ParcelaIntegral": Decimal("1234.56"),
                "ParcelaReduzida": None,
                "PrimeiraParcela": Decimal("1234.56"),
                "ValorTotalPlano": Decimal("123456.00"),
                "Situacao": "SPCE"[i % 4],
                "Observacao": observacao(i),
                "CriadaEm": f"2024-0{1 + i % 9}-0{1 + i % 9} 23:59:59.{i:07d} {('-03:00', '+05:30', '-00:00')[i % 3]}",
                "AtualizadaEm": (_ns(-1500, datetime(1970, 1, 1)) if i == 3 else _ns(i * 1_000_001_900)),
                "ValidaAte": date(2024, 12, 31),
                "VersaoLinha": (0x10000 + i).to_bytes(8, "big"),
            }
            for i in range(1, simulacoes + 1)
        ],
    )
    if lances:
        yield _batch(
            "SimulacaoLance",
            [
                {
                    "LanceId": i,
                    "SimulacaoId": i,
                    "TipoLance": "LFE"[i % 3],
                    "PctLance": Decimal("10.00"),
                    "ValorProprio": Decimal("1000.00"),
                    "ValorEmbutido": Decimal("0.00"),
                    "CreditoLiquido": Decimal("99000.25"),
                    "MesContemplacao": 12,
                    "Abatimento": "P",
                }
                for i in range(1, simulacoes + 1, 3)
            ],
        )
    yield _batch(
        "SimulacaoParcela",
        [
            {
                "SimulacaoId": s,
                "NumeroParcela": n,
                "Vencimento": date(2024, 1, 1) + timedelta(days=30 * n),
                "ValorFundoComum": Decimal("1000.00"),
                "ValorTaxaAdm": Decimal("150.00"),
                "ValorFundoReserva": Decimal("20.00"),
                "ValorSeguro": Decimal("3.10"),
                "ValorAntecipacao": Decimal("0.00"),
                "ValorTotal": Decimal("1173.10"),
                "PctAmortizadoAcumulado": Decimal(f"{n}.000000"),
            }
            for s in range(1, simulacoes + 1)
            for n in range(1, parcelas + 1)
        ],
    )


def build_source(path: Path, **kwargs) -> Path:
    build(path, batches(**kwargs), catalog(), force=True)
    return path


def source_rows(path: Path, table_name: str, *, lob_max_bytes: int = 128 * 1024, ms: bool = False) -> list[dict]:
    """The table's rows as DMS must write them, computed independently of the engine, sorted by key."""
    import duckdb

    table = catalog()[table_name]
    exprs = []
    for c in table.columns:
        q = f'"{c.name}"'
        exprs.append(
            f"CAST({q} AS VARCHAR)"
            if c.family == "uuid"
            else f"epoch_ns({q})"
            if c.duckdb_type == "TIMESTAMP_NS"
            else q
        )
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(f'SELECT {", ".join(exprs)} FROM dbo."{table.name}"').fetchall()
    out = [{c.name: _as_dms(c, v, lob_max_bytes, ms) for c, v in zip(table.columns, row)} for row in rows]
    return sorted(out, key=lambda r: tuple(r[k] for k in table.primary_key))


def _as_dms(column, value, lob_max_bytes: int, ms: bool):
    if value is None:
        return None
    if column.family == "uuid":
        return value.upper()
    if column.duckdb_type == "TIMESTAMP_NS":
        unit = 1_000_000 if ms else 1_000
        return datetime(1970, 1, 1) + timedelta(microseconds=(value // unit) * unit // 1000)
    if column.family == "timestamp" and ms:
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    if column.family == "lob":
        return value[: lob_max_bytes // (2 if column.sql_type.startswith("n") else 1)]
    return value


def sort_rows(rows: list[dict], table_name: str) -> list[dict]:
    key = catalog()[table_name].primary_key
    return sorted(rows, key=lambda r: tuple(r[k] for k in key))
