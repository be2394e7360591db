"""The source generator on a 3,000-simulation run: contract shape, every business rule on every row (checked
with the Decimal reference on the Python values), foreign keys, SQL Server value formats, realistic
proportions, and determinism."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from consorcio_assets.rules import formulas as f
from consorcio_assets.rules.documents import cep_na_faixa, is_valid_cnpj, is_valid_cpf, is_valid_telefone
from consorcio_assets.source.generator import TABELAS, generate

SIMULACOES = 3_000
CONTRATO = Path(__file__).resolve().parent.parent / "consorcio_assets" / "contract" / "consorcio_simulacao.sql"
GUID = re.compile(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")


def _tabelas(batches) -> dict[str, pa.Table]:
    por_tabela: dict[str, list[pa.RecordBatch]] = {}
    for nome, lote in batches:
        por_tabela.setdefault(nome, []).append(lote)
    return {nome: pa.Table.from_batches(lotes) for nome, lotes in por_tabela.items()}


@pytest.fixture(scope="module")
def lotes() -> list[tuple[str, pa.RecordBatch]]:
    return list(generate(simulacoes=SIMULACOES, seed=42, batch_rows=1_000))


@pytest.fixture(scope="module")
def db(lotes) -> dict[str, pa.Table]:
    return _tabelas(lotes)


@pytest.fixture(scope="module")
def linhas(db) -> dict[str, list[dict]]:
    return {nome: tabela.to_pylist() for nome, tabela in db.items()}


# ---------------------------------------------------------------------------------------------------
# shape
# ---------------------------------------------------------------------------------------------------

#: the interface's Arrow type per SQL Server type (CHAR, GUID and DATETIMEOFFSET travel as text)
TIPOS_SQL = {
    "CHAR": pa.string(),
    "VARCHAR": pa.string(),
    "NVARCHAR": pa.string(),
    "TINYINT": pa.uint8(),
    "SMALLINT": pa.int16(),
    "INT": pa.int32(),
    "BIGINT": pa.int64(),
    "MONEY": pa.decimal128(19, 4),
    "BIT": pa.bool_(),
    "DATE": pa.date32(),
    "DATETIMEOFFSET": pa.string(),
    "DATETIME2": pa.timestamp("ns"),
    "DATETIME": pa.timestamp("us"),
    "UNIQUEIDENTIFIER": pa.string(),
    "ROWVERSION": pa.binary(),
    "DECIMAL": None,
}


def _contrato() -> dict[str, list[tuple[str, str]]]:
    """(column, SQL Server type) per table, read from the contract's CREATE TABLE statements."""
    tabelas = {}
    for nome, corpo in re.findall(r"CREATE TABLE dbo\.(\w+) \((.*?)\n\);", CONTRATO.read_text(), re.S):
        colunas = []
        for linha in corpo.splitlines():
            m = re.match(r"\s+(\w+)\s+((?:{})(?:\((?:\d+(?:,\d+)?|MAX)\))?)\s".format("|".join(TIPOS_SQL)), linha)
            if m:
                colunas.append((m.group(1), m.group(2)))
        tabelas[nome] = colunas
    return tabelas


def _arrow(tipo_sql: str) -> pa.DataType:
    base, _, args = tipo_sql.partition("(")
    if base == "DECIMAL":
        p, s = args.rstrip(")").split(",")
        return pa.decimal128(int(p), int(s))
    return TIPOS_SQL[base]


def test_tables_come_in_foreign_key_order_each_in_one_run(lotes):
    nomes = [nome for nome, _ in lotes]
    ordem = [n for i, n in enumerate(nomes) if i == 0 or nomes[i - 1] != n]
    assert ordem == list(TABELAS)
    assert all(0 < lote.num_rows <= 1_000 for _, lote in lotes)


def test_columns_and_types_follow_the_contract(db):
    contrato = _contrato()
    assert set(contrato) == set(TABELAS)
    for nome, colunas in contrato.items():
        schema = db[nome].schema
        esperado = [(c, _arrow(t)) for c, t in colunas if c != "PctFundoComumMes"]
        assert [(fld.name, fld.type) for fld in schema] == esperado, nome


def test_not_null_columns_have_no_nulls_and_nullable_ones_do(db):
    texto = CONTRATO.read_text()
    for nome, tabela in db.items():
        corpo = re.search(rf"CREATE TABLE dbo\.{nome} \((.*?)\n\);", texto, re.S).group(1)
        for coluna in tabela.column_names:
            nulos = tabela.column(coluna).null_count
            declarada = re.search(rf"^\s+{coluna}\s.*$", corpo, re.M).group(0)
            if "NOT NULL" in declarada:
                assert nulos == 0, f"{nome}.{coluna}"
    expect_nulls = {
        "Cliente": ["Email", "Telefone", "DataNascimento", "RendaMensal"],
        "PlanoComercial": ["PctReducao", "PctLanceFixo", "VigenciaFim"],
        "Grupo": ["DataConstituicao"],
        "Simulacao": ["ClienteId", "GrupoId", "PctReducao", "ParcelaReduzida", "Observacao"],
    }
    for nome, colunas in expect_nulls.items():
        for coluna in colunas:
            assert 0 < db[nome].column(coluna).null_count < db[nome].num_rows, f"{nome}.{coluna}"


def test_row_counts(db):
    assert db["UnidadeFederativa"].num_rows == 27 and db["Segmento"].num_rows == 6
    assert db["Simulacao"].num_rows == SIMULACOES
    assert db["Cliente"].num_rows == round(0.6 * SIMULACOES)
    assert db["IndiceCorrecao"].num_rows == 3 * (12 * 11 + 10)
    assert 10 <= db["Administradora"].num_rows <= 20


# ---------------------------------------------------------------------------------------------------
# keys
# ---------------------------------------------------------------------------------------------------


def _coluna(db, tabela, coluna) -> list:
    return db[tabela].column(coluna).to_pylist()


def test_primary_and_unique_keys(db):
    for tabela, coluna in [
        ("Administradora", "AdministradoraId"),
        ("PlanoComercial", "PlanoId"),
        ("Grupo", "GrupoId"),
        ("Simulacao", "SimulacaoId"),
        ("SimulacaoLance", "LanceId"),
    ]:
        assert _coluna(db, tabela, coluna) == list(range(1, db[tabela].num_rows + 1)), tabela  # IDENTITY 1..n
    for tabela, coluna in [
        ("UnidadeFederativa", "Uf"),
        ("Segmento", "Codigo"),
        ("Administradora", "Cnpj"),
        ("Grupo", "CodigoGrupo"),
        ("Cliente", "ClienteId"),
        ("Simulacao", "SimulacaoGuid"),
    ]:
        valores = _coluna(db, tabela, coluna)
        assert len(set(valores)) == len(valores), f"{tabela}.{coluna}"
    assert _coluna(db, "Segmento", "SegmentoId") == [1, 2, 3, 4, 5, 6]
    for tabela, chave in [
        ("IndiceCorrecao", ("Indice", "Competencia")),
        ("SimulacaoParcela", ("SimulacaoId", "NumeroParcela")),
    ]:
        pares = list(zip(*(_coluna(db, tabela, c) for c in chave)))
        assert len(set(pares)) == len(pares), tabela


def test_foreign_keys(db):
    def contido(filha, coluna, mae, chave):
        pais = set(_coluna(db, mae, chave))
        assert {v for v in _coluna(db, filha, coluna) if v is not None} <= pais, f"{filha}.{coluna}"

    contido("PlanoComercial", "AdministradoraId", "Administradora", "AdministradoraId")
    contido("PlanoComercial", "SegmentoId", "Segmento", "SegmentoId")
    contido("Grupo", "PlanoId", "PlanoComercial", "PlanoId")
    contido("Cliente", "Uf", "UnidadeFederativa", "Uf")
    contido("Simulacao", "ClienteId", "Cliente", "ClienteId")
    contido("Simulacao", "PlanoId", "PlanoComercial", "PlanoId")
    contido("Simulacao", "GrupoId", "Grupo", "GrupoId")
    contido("SimulacaoLance", "SimulacaoId", "Simulacao", "SimulacaoId")
    contido("SimulacaoParcela", "SimulacaoId", "Simulacao", "SimulacaoId")


# ---------------------------------------------------------------------------------------------------
# business rules, row by row
# ---------------------------------------------------------------------------------------------------


def _por_id(linhas, tabela, chave) -> dict:
    return {r[chave]: r for r in linhas[tabela]}


def _termos(s: dict, plano: dict) -> f.Termos:
    return f.Termos(
        s["ValorCredito"],
        s["PrazoMeses"],
        s["PctTaxaAdm"],
        s["PctFundoReserva"],
        s["PctAntecipacao"],
        s["PctSeguroMes"],
        plano["BaseSeguro"],
        s["ComSeguro"],
        s["PctReducao"],
    )


def _instante_100ns(texto: str) -> tuple[date, int]:
    """Local date and UTC instant (100 ns ticks since the epoch) of a DATETIMEOFFSET(7) literal."""
    local = datetime.strptime(texto[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    sinal = -1 if texto[-6] == "-" else 1
    offset = sinal * timedelta(hours=int(texto[-5:-3]), minutes=int(texto[-2:]))
    utc = local - offset
    return local.date(), int(utc.timestamp()) * 10**7 + int(texto[20:27])


def test_simulation_rules(linhas, db):
    planos = _por_id(linhas, "PlanoComercial", "PlanoId")
    segmentos = _por_id(linhas, "Segmento", "SegmentoId")
    grupos = _por_id(linhas, "Grupo", "GrupoId")
    atualizada_ns = db["Simulacao"].column("AtualizadaEm").cast(pa.int64()).to_pylist()
    for s, atualizada in zip(linhas["Simulacao"], atualizada_ns):
        plano = planos[s["PlanoId"]]
        t = _termos(s, plano)
        assert s["ParcelaIntegral"] == f.parcela_integral(t)
        assert s["ParcelaReduzida"] == f.parcela_reduzida(t)
        assert s["PrimeiraParcela"] == f.primeira_parcela(t)
        assert s["ValorTotalPlano"] == f.valor_total_plano(t)
        for coluna in ("PrazoMeses", "PctTaxaAdm", "PctFundoReserva", "PctAntecipacao", "PctSeguroMes", "PctReducao"):
            assert s[coluna] == plano[coluna], coluna
        assert plano["CreditoMinimo"] <= s["ValorCredito"] <= plano["CreditoMaximo"]
        assert s["ValorCredito"] > 0 and s["ValorCredito"] == s["ValorCredito"].quantize(Decimal("0.01"))
        if s["GrupoId"] is not None:
            assert grupos[s["GrupoId"]]["PlanoId"] == s["PlanoId"]
        dia_local, criada = _instante_100ns(s["CriadaEm"])
        assert s["ValidaAte"] >= dia_local
        assert atualizada >= criada * 100
        assert s["Situacao"] in "SPCE" and 1 <= s["Canal"] <= 5
    for p in linhas["PlanoComercial"]:
        seg = segmentos[p["SegmentoId"]]
        assert seg["PrazoMinimo"] <= p["PrazoMeses"] <= seg["PrazoMaximo"]
        assert 0 < p["PctTaxaAdm"] <= 30 and 0 <= p["PctFundoReserva"] <= 5
        assert 0 <= p["PctAntecipacao"] <= p["PctTaxaAdm"]
        assert p["BaseSeguro"] in ("SD", "CR") and p["CreditoMaximo"] >= p["CreditoMinimo"]
        assert p["VigenciaFim"] is None or p["VigenciaFim"] >= p["VigenciaInicio"]


def test_bid_rules(linhas):
    simulacoes = _por_id(linhas, "Simulacao", "SimulacaoId")
    planos = _por_id(linhas, "PlanoComercial", "PlanoId")
    tipos = Counter()
    for lance in linhas["SimulacaoLance"]:
        s = simulacoes[lance["SimulacaoId"]]
        plano = planos[s["PlanoId"]]
        assert (
            f.violacoes_lance(
                credito=s["ValorCredito"],
                prazo=s["PrazoMeses"],
                pct_embutido_max=plano["PctEmbutidoMax"],
                pct_lance_fixo=plano["PctLanceFixo"],
                tipo_lance=lance["TipoLance"],
                pct_lance=lance["PctLance"],
                valor_proprio=lance["ValorProprio"],
                valor_embutido=lance["ValorEmbutido"],
                credito_liquido=lance["CreditoLiquido"],
                mes_contemplacao=lance["MesContemplacao"],
            )
            == []
        )
        assert lance["Abatimento"] in ("P", "V") and lance["ValorProprio"] >= 0
        tipos[lance["TipoLance"]] += 1
    assert set(tipos) == {"L", "E", "F"}
    assert len({lance["SimulacaoId"] for lance in linhas["SimulacaoLance"]}) == len(linhas["SimulacaoLance"])


def test_schedules_follow_the_rules_exactly(linhas):
    simulacoes = _por_id(linhas, "Simulacao", "SimulacaoId")
    planos = _por_id(linhas, "PlanoComercial", "PlanoId")
    por_simulacao: dict[int, list[dict]] = {}
    for p in linhas["SimulacaoParcela"]:
        por_simulacao.setdefault(p["SimulacaoId"], []).append(p)
    assert por_simulacao
    for sid, parcelas in por_simulacao.items():
        s = simulacoes[sid]
        t = _termos(s, planos[s["PlanoId"]])
        esperado = f.cronograma(t, parcelas[0]["Vencimento"])
        obtido = [
            f.Parcela(
                p["NumeroParcela"],
                p["Vencimento"],
                p["ValorFundoComum"],
                p["ValorTaxaAdm"],
                p["ValorFundoReserva"],
                p["ValorSeguro"],
                p["ValorAntecipacao"],
                p["ValorTotal"],
                p["PctAmortizadoAcumulado"],
            )
            for p in parcelas
        ]
        assert obtido == esperado
        assert sum(p["ValorTotal"] for p in parcelas) == s["ValorTotalPlano"]
        assert parcelas[-1]["PctAmortizadoAcumulado"] == Decimal("100.000000")
        assert parcelas[0]["Vencimento"] > _instante_100ns(s["CriadaEm"])[0]


def test_customers(linhas):
    ufs = _por_id(linhas, "UnidadeFederativa", "Uf")
    alfanumericos = 0
    for c in linhas["Cliente"]:
        if c["TipoPessoa"] == "F":
            assert is_valid_cpf(c["CpfCnpj"]) and len(c["CpfCnpj"]) == 11
        else:
            assert c["TipoPessoa"] == "J" and is_valid_cnpj(c["CpfCnpj"])
            alfanumericos += not c["CpfCnpj"].isdigit()
            assert c["DataNascimento"] is None
        uf = ufs[c["Uf"]]
        assert cep_na_faixa(c["Cep"], uf["CepInicial"], uf["CepFinal"])
        assert c["Telefone"] is None or is_valid_telefone(c["Telefone"])
        assert c["Email"] is None or re.fullmatch(r"[a-z0-9._]+@[a-z0-9.]+\.[a-z]{2,3}", c["Email"])
        if c["DataNascimento"] is not None:
            assert (date.fromisoformat(c["CadastradoEm"][:10]) - c["DataNascimento"]).days >= 18 * 365
        assert c["RendaMensal"] is None or c["RendaMensal"] > 0
    assert alfanumericos > 0
    assert any(ch in "ãâáàçéêíóôõú" for c in linhas["Cliente"] for ch in c["Nome"])
    documentos = [c["CpfCnpj"] for c in linhas["Cliente"]]
    assert len(set(documentos)) == len(documentos)


def test_reference_tables(linhas):
    ufs = linhas["UnidadeFederativa"]
    assert {u["Regiao"] for u in ufs} == {"Norte", "Nordeste", "Centro-Oeste", "Sudeste", "Sul"}
    assert all(len(u["CepInicial"]) == len(u["CepFinal"]) == 8 and u["CepInicial"] < u["CepFinal"] for u in ufs)
    assert {s["IndiceReajuste"] for s in linhas["Segmento"]} <= {"INCC", "IPCA", "IGPM"}
    assert all(s["PrazoMinimo"] > 0 and s["PrazoMaximo"] >= s["PrazoMinimo"] for s in linhas["Segmento"])
    cnpjs = [a["Cnpj"] for a in linhas["Administradora"]]
    assert all(is_valid_cnpj(c) for c in cnpjs) and any(not c.isdigit() for c in cnpjs)
    indices = linhas["IndiceCorrecao"]
    assert {i["Indice"] for i in indices} == {"INCC", "IPCA", "IGPM"}
    assert any(i["PctMes"] < 0 for i in indices if i["Indice"] == "IGPM")
    assert all(abs(i["PctMes"]) < 10 and i["PublicadoEm"].date() > i["Competencia"] for i in indices)
    planos = _por_id(linhas, "PlanoComercial", "PlanoId")
    for g in linhas["Grupo"]:
        assert (g["DataConstituicao"] is None) == (g["Situacao"] == "F") and 1 <= g["DiaAssembleia"] <= 28
        plano = planos[g["PlanoId"]]
        if g["DataConstituicao"] is not None:
            assert g["DataConstituicao"] >= plano["VigenciaInicio"]
        if g["Situacao"] == "E":  # a closed group has run its whole term
            assert f.somar_meses(g["DataConstituicao"], plano["PrazoMeses"]) <= date(2026, 10, 31)


# ---------------------------------------------------------------------------------------------------
# SQL Server value formats
# ---------------------------------------------------------------------------------------------------


def test_datetimeoffset_literals(db):
    criada = db["Simulacao"].column("CriadaEm").to_pylist()
    cadastro = db["Cliente"].column("CadastradoEm").to_pylist()
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{7} [+-]\d\d:\d\d", v) for v in criada)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d\d:\d\d", v) for v in cadastro)
    for valores in (criada, cadastro):
        offsets = Counter(v[-6:] for v in valores)
        assert offsets.most_common(1)[0][0] == "-03:00" and {"-04:00", "-05:00"} <= set(offsets)
        assert set(offsets) <= {"-02:00", "-03:00", "-04:00", "-05:00"}
        assert all(datetime.fromisoformat(v[:19]) for v in valores[:50])
    assert min(criada) >= "2023-01-01" and max(criada) < "2026-11-01"


def test_datetime_and_datetime2_precision(db):
    for tabela, coluna in [("Administradora", "CadastradaEm"), ("IndiceCorrecao", "PublicadoEm")]:
        us = db[tabela].column(coluna).cast(pa.int64()).to_pylist()
        assert all(v % 1000 == 0 and (v // 1000) % 10 in (0, 3, 7) for v in us), coluna  # 1/300 s ticks
    ns = db["Simulacao"].column("AtualizadaEm").cast(pa.int64()).to_pylist()
    assert all(v % 100 == 0 for v in ns)
    assert sum(v % 1000 != 0 for v in ns) > 0.8 * len(ns)  # most carry the 100 ns digit


def test_guids_and_rowversion(db):
    for tabela, coluna in [("Cliente", "ClienteId"), ("Simulacao", "SimulacaoGuid")]:
        assert all(GUID.fullmatch(v) for v in db[tabela].column(coluna).to_pylist())
    versoes = db["Simulacao"].column("VersaoLinha").to_pylist()
    assert all(len(v) == 8 for v in versoes)
    numeros = [int.from_bytes(v, "big") for v in versoes]
    assert all(b > a for a, b in itertools.pairwise(numeros))


def test_char_values_are_not_padded(db):
    for tabela, coluna in [
        ("Cliente", "CpfCnpj"),
        ("Cliente", "Cep"),
        ("Simulacao", "Situacao"),
        ("PlanoComercial", "BaseSeguro"),
    ]:
        assert not any(v.endswith(" ") for v in db[tabela].column(coluna).to_pylist())


def test_observations(db):
    obs = [v for v in db["Simulacao"].column("Observacao").to_pylist() if v is not None]
    longas = [v for v in obs if len(v) >= 20_000]
    assert 1 <= len(longas) <= 5 and all(len(v) <= 60_000 for v in longas)
    assert 0.05 * SIMULACOES < len(obs) < 0.3 * SIMULACOES


# ---------------------------------------------------------------------------------------------------
# realism
# ---------------------------------------------------------------------------------------------------


def _share(valores, alvo) -> float:
    return sum(v == alvo for v in valores) / len(valores)


def test_proportions(linhas, db):
    sims = linhas["Simulacao"]
    planos = _por_id(linhas, "PlanoComercial", "PlanoId")
    segmento = [planos[s["PlanoId"]]["SegmentoId"] for s in sims]
    for seg_id, alvo in [(1, 0.39), (2, 0.30), (3, 0.22), (4, 0.05)]:
        assert abs(_share(segmento, seg_id) - alvo) < 0.04, seg_id
    assert abs(_share([s["ClienteId"] is None for s in sims], True) - 0.20) < 0.04
    assert abs(_share([s["ComSeguro"] for s in sims], True) - 0.60) < 0.05
    assert abs(db["SimulacaoLance"].num_rows / SIMULACOES - 0.30) < 0.04
    agendadas = len(set(_coluna(db, "SimulacaoParcela", "SimulacaoId")))
    assert abs(agendadas / SIMULACOES - 0.08) < 0.025
    clientes = linhas["Cliente"]
    assert abs(_share([c["TipoPessoa"] for c in clientes], "F") - 0.90) < 0.04
    assert abs(_share([c["Uf"] for c in clientes], "SP") - 0.22) < 0.04
    for coluna, (lo, hi) in {"Email": (0.05, 0.25), "Telefone": (0.03, 0.2), "RendaMensal": (0.1, 0.3)}.items():
        assert lo < _share([c[coluna] for c in clientes], None) < hi, coluna
    medianas = {1: 90_000, 2: 20_000, 3: 300_000}
    for seg_id, mediana in medianas.items():
        creditos = sorted(s["ValorCredito"] for s, g in zip(sims, segmento) if g == seg_id)
        assert mediana / 1.6 < creditos[len(creditos) // 2] < mediana * 1.6, seg_id
    redondos = sum(s["ValorCredito"] % 100 == 0 for s in sims)
    assert redondos > 0.6 * len(sims)


# ---------------------------------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------------------------------


def test_same_seed_same_batches_other_seed_other_data(lotes, db):
    again = list(generate(simulacoes=SIMULACOES, seed=42, batch_rows=1_000))
    assert len(again) == len(lotes)
    assert all(a[0] == b[0] and a[1].equals(b[1]) for a, b in zip(lotes, again))
    outro = _tabelas(generate(simulacoes=SIMULACOES, seed=43))
    assert not outro["Simulacao"].equals(db["Simulacao"]) and not outro["Cliente"].equals(db["Cliente"])
    maior = _tabelas(generate(simulacoes=SIMULACOES, seed=42, batch_rows=65_536))
    assert all(maior[n].equals(db[n]) for n in TABELAS)
