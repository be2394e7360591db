"""Deterministic, realistic generator of the ConsorcioSimulacao source database.

Streams pyarrow batches table by table in foreign-key order. The small tables are built in memory;
Cliente and the Simulacao family go in fixed chunks of BLOCO rows, each with its own random stream
derived from (seed, purpose, chunk), so the output depends only on (simulacoes, seed) and memory stays
flat at any size. SimulacaoLance and SimulacaoParcela must follow every Simulacao batch, so each chunk's
core (plan, credit, customer, creation time) is re-derived from its stream rather than kept for the run.
Money is integer centavos end to end; the instalments come from rules.formulas' exact vectorised twin.
"""

from __future__ import annotations

import unicodedata
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from consorcio_assets.rules import documents, formulas
from consorcio_assets.rules.documents import digitos_ascii
from consorcio_assets.source import reference_data as ref

TABELAS = (
    "UnidadeFederativa",
    "Segmento",
    "IndiceCorrecao",
    "Administradora",
    "PlanoComercial",
    "Grupo",
    "Cliente",
    "Simulacao",
    "SimulacaoLance",
    "SimulacaoParcela",
)
#: rows per chunk of Cliente and Simulacao: fixes the random streams and bounds memory
BLOCO = 50_000

INICIO_SIMULACOES = np.datetime64("2023-01-01")
FIM_SIMULACOES = np.datetime64("2026-10-31")
INICIO_CADASTROS = np.datetime64("2020-01-01")
INICIO_INDICES = np.datetime64("2015-01", "M")
FIM_INDICES = np.datetime64("2026-10", "M")
#: the Receita Federal issues alphanumeric CNPJs from July 2026 on
INICIO_CNPJ_ALFANUMERICO = np.datetime64("2026-07-01")
#: snapshot day: a simulation still valid on it cannot be expired yet
HOJE = np.datetime64("2026-11-01")

CLIENTES_POR_SIMULACAO = 0.6
PCT_ANONIMAS = 0.20
PCT_COM_SEGURO = 0.60
PCT_COM_LANCE = 0.30
PCT_COM_CRONOGRAMA = 0.08
PCT_PESSOA_JURIDICA = 0.10
#: long notes: one in 4,000 at random plus the row (4,000 k + FASE) for k >= 0, so any run of at
#: least 2,000 simulations has one and the rate stays about one in 2,000
LONGA_A_CADA = 4_000
FASE_LONGA = 1_234
#: Simulacao.Situacao S, P, C, E and, per status, the chance of being attached to a group
SITUACOES = np.array(["S", "P", "C", "E"])
PESO_SITUACOES = (0.52, 0.16, 0.12, 0.20)
PCT_GRUPO_POR_SITUACAO = np.array([0.5, 0.85, 1.0, 0.5])
PESO_CANAIS = (0.34, 0.30, 0.16, 0.12, 0.08)
#: chance that an administradora other than the first offers each segment
OFERTA_SEGMENTO = (0.9, 0.9, 0.8, 0.45, 0.3, 0.25)
PRAZOS_COMERCIAIS = (12, 18, 24, 36, 48, 50, 60, 72, 80, 84, 90, 100, 120, 150, 180, 200, 220, 240)
#: ROWVERSION: a database counter; Simulacao rows get strictly increasing values with small gaps
ROWVERSION_BASE = 0x7D0

_SEG = ref.SEGMENTOS
_UFS = ref.UFS
_PESO_UF = np.array([u.populacao for u in _UFS]) / sum(u.populacao for u in _UFS)
_FUSOS = np.array([u.fuso for u in _UFS], np.int8)
_UF_PE = next(i for i, u in enumerate(_UFS) if u.sigla == "PE")
_EPOCA = np.datetime64("1970-01-01")
_NS_DIA = 86_400 * 10**9
_NS_HORA = 3_600 * 10**9


# ---------------------------------------------------------------------------------------------------
# Arrow schemas (contract order and types; PctFundoComumMes is computed by the database)
# ---------------------------------------------------------------------------------------------------


def _f(nome: str, tipo: pa.DataType, nulo: bool = False) -> pa.Field:
    return pa.field(nome, tipo, nullable=nulo)


_S, _D, _TS, _DT2 = pa.string(), pa.date32(), pa.timestamp("us"), pa.timestamp("ns")
_MONEY, _VALOR = pa.decimal128(19, 4), pa.decimal128(15, 2)
_P74, _P96, _P52 = pa.decimal128(7, 4), pa.decimal128(9, 6), pa.decimal128(5, 2)

# fmt: off
SCHEMAS: dict[str, pa.Schema] = {
    "UnidadeFederativa": pa.schema([_f("Uf", _S), _f("Nome", _S), _f("Regiao", _S), _f("CepInicial", _S),
                                    _f("CepFinal", _S)]),
    "Segmento": pa.schema([_f("SegmentoId", pa.uint8()), _f("Codigo", _S), _f("Descricao", _S),
                           _f("IndiceReajuste", _S), _f("PrazoMinimo", pa.int16()), _f("PrazoMaximo", pa.int16())]),
    "IndiceCorrecao": pa.schema([_f("Indice", _S), _f("Competencia", _D), _f("PctMes", _P96),
                                 _f("PublicadoEm", _TS)]),
    "Administradora": pa.schema([_f("AdministradoraId", pa.int32()), _f("Cnpj", _S), _f("RazaoSocial", _S),
                                 _f("Ativa", pa.bool_()), _f("CadastradaEm", _TS)]),
    "PlanoComercial": pa.schema([
        _f("PlanoId", pa.int32()), _f("AdministradoraId", pa.int32()), _f("SegmentoId", pa.uint8()),
        _f("Nome", _S), _f("PrazoMeses", pa.int16()), _f("PctTaxaAdm", _P74), _f("PctFundoReserva", _P74),
        _f("PctAntecipacao", _P74), _f("PctSeguroMes", _P96), _f("BaseSeguro", _S), _f("PctReducao", _P52, True),
        _f("PctEmbutidoMax", _P52), _f("PctLanceFixo", _P52, True), _f("CreditoMinimo", _MONEY),
        _f("CreditoMaximo", _MONEY), _f("VigenciaInicio", _D), _f("VigenciaFim", _D, True)]),
    "Grupo": pa.schema([_f("GrupoId", pa.int32()), _f("PlanoId", pa.int32()), _f("CodigoGrupo", _S),
                        _f("QuantidadeCotas", pa.int16()), _f("DataConstituicao", _D, True),
                        _f("DiaAssembleia", pa.uint8()), _f("Situacao", _S)]),
    "Cliente": pa.schema([
        _f("ClienteId", _S), _f("TipoPessoa", _S), _f("CpfCnpj", _S), _f("Nome", _S), _f("Email", _S, True),
        _f("Telefone", _S, True), _f("DataNascimento", _D, True), _f("RendaMensal", _MONEY, True), _f("Cep", _S),
        _f("Uf", _S), _f("ConsentimentoLgpd", pa.bool_()), _f("CadastradoEm", _S)]),
    "Simulacao": pa.schema([
        _f("SimulacaoId", pa.int64()), _f("SimulacaoGuid", _S), _f("ClienteId", _S, True),
        _f("PlanoId", pa.int32()), _f("GrupoId", pa.int32(), True), _f("Canal", pa.uint8()),
        _f("ValorCredito", _VALOR), _f("PrazoMeses", pa.int16()), _f("PctTaxaAdm", _P74),
        _f("PctFundoReserva", _P74), _f("PctAntecipacao", _P74), _f("PctSeguroMes", _P96),
        _f("PctReducao", _P52, True), _f("ComSeguro", pa.bool_()), _f("ParcelaIntegral", _VALOR),
        _f("ParcelaReduzida", _VALOR, True), _f("PrimeiraParcela", _VALOR), _f("ValorTotalPlano", _VALOR),
        _f("Situacao", _S), _f("Observacao", _S, True), _f("CriadaEm", _S), _f("AtualizadaEm", _DT2),
        _f("ValidaAte", _D), _f("VersaoLinha", pa.binary())]),
    "SimulacaoLance": pa.schema([
        _f("LanceId", pa.int64()), _f("SimulacaoId", pa.int64()), _f("TipoLance", _S), _f("PctLance", _P52),
        _f("ValorProprio", _VALOR), _f("ValorEmbutido", _VALOR), _f("CreditoLiquido", _VALOR),
        _f("MesContemplacao", pa.int16()), _f("Abatimento", _S)]),
    "SimulacaoParcela": pa.schema([
        _f("SimulacaoId", pa.int64()), _f("NumeroParcela", pa.int16()), _f("Vencimento", _D),
        _f("ValorFundoComum", _VALOR), _f("ValorTaxaAdm", _VALOR), _f("ValorFundoReserva", _VALOR),
        _f("ValorSeguro", _VALOR), _f("ValorAntecipacao", _VALOR), _f("ValorTotal", _VALOR),
        _f("PctAmortizadoAcumulado", _P96)]),
}
# fmt: on


# ---------------------------------------------------------------------------------------------------
# Arrow building blocks
# ---------------------------------------------------------------------------------------------------


def _decimal(valores: np.ndarray, tipo: pa.Decimal128Type) -> pa.Array:
    """Unscaled integers (a masked array for NULLs) -> decimal128, written straight into its buffer."""
    validos = ~np.ma.getmaskarray(valores)
    v = np.where(validos, np.ma.getdata(valores), 0).astype(np.int64)
    palavras = np.column_stack([v, v >> 63])  # little-endian 128-bit two's complement
    bitmap = None if validos.all() else pa.py_buffer(np.packbits(validos, bitorder="little"))
    return pa.Array.from_buffers(tipo, v.size, [bitmap, pa.py_buffer(np.ascontiguousarray(palavras))])


def _coluna(valores, tipo: pa.DataType) -> pa.Array:
    if isinstance(valores, pa.Array):
        return valores if valores.type == tipo else valores.cast(tipo)
    if pa.types.is_decimal(tipo):
        return _decimal(np.ma.asarray(valores), tipo)
    return pa.array(valores, type=tipo)


def _lote(tabela: str, **colunas) -> pa.RecordBatch:
    """A batch in the contract's column order; integers for DECIMALs are unscaled, masked = NULL."""
    schema = SCHEMAS[tabela]
    if list(colunas) != schema.names:
        raise ValueError(f"{tabela}: columns {list(colunas)} differ from the contract {schema.names}")
    return pa.RecordBatch.from_arrays([_coluna(colunas[f.name], f.type) for f in schema], schema=schema)


def _texto_fixo(matriz: np.ndarray, tipo: pa.DataType = _S) -> pa.Array:
    """(n, w) uint8 matrix -> string (or binary) array of n values of w bytes, without copying per row."""
    n, w = matriz.shape
    offsets = np.arange(n + 1, dtype=np.int32) * w
    return pa.Array.from_buffers(tipo, n, [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(matriz))])


def _juntar(*partes) -> np.ndarray:
    """Concatenate (n, k) uint8 matrices and byte-string literals column-wise into one text matrix."""
    n = next(p.shape[0] for p in partes if isinstance(p, np.ndarray))
    blocos = [
        p if isinstance(p, np.ndarray) else np.broadcast_to(np.frombuffer(p, np.uint8), (n, len(p))) for p in partes
    ]
    return np.concatenate(blocos, axis=1)


def _datetimeoffset(local_ns: np.ndarray, fuso: np.ndarray, digitos: int) -> pa.Array:
    """SQL Server's DATETIMEOFFSET literal 'YYYY-MM-DD hh:mm:ss.f… -03:00' from local wall time."""
    ns = np.asarray(local_ns, np.int64)
    dia = (ns // _NS_DIA).astype("datetime64[D]")
    mes = dia.astype("datetime64[M]")
    ano = mes.astype("datetime64[Y]").astype(np.int64) + 1970
    no_dia = ns % _NS_DIA
    segundos = no_dia // 10**9
    return _texto_fixo(
        _juntar(
            digitos_ascii(ano, 4),
            b"-",
            digitos_ascii(mes.astype(np.int64) % 12 + 1, 2),
            b"-",
            digitos_ascii((dia - mes.astype("datetime64[D]")).astype(np.int64) + 1, 2),
            b" ",
            digitos_ascii(segundos // 3600, 2),
            b":",
            digitos_ascii(segundos // 60 % 60, 2),
            b":",
            digitos_ascii(segundos % 60, 2),
            b".",
            digitos_ascii(no_dia % 10**9 // 10 ** (9 - digitos), digitos),
            b" ",
            np.where(np.asarray(fuso)[:, None] < 0, ord("-"), ord("+")).astype(np.uint8),
            digitos_ascii(np.abs(fuso), 2),
            b":00",
        )
    )


def _datetime_sqlserver(segundos: np.ndarray, ticks: np.ndarray) -> np.ndarray:
    """DATETIME keeps 1/300 s ticks, shown as milliseconds ending in 0, 3 or 7 -> datetime64[us]."""
    ms = (10 * np.asarray(ticks, np.int64) + 1) // 3
    return (np.asarray(segundos, np.int64) * 10**6 + ms * 1000).astype("datetime64[us]")


_HEX = np.frombuffer(b"0123456789ABCDEF", np.uint8)


def _misturar(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijective scramble of uint64 (counter-based, no state to carry)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _guids(seed: int, fluxo: str, indices: np.ndarray) -> pa.Array:
    """Upper-case random-looking (version 4) GUID text, a pure function of (seed, fluxo, index).

    Being a function of the index lets a Simulacao chunk name its customer without the Cliente table.
    """
    chave = np.random.SeedSequence([seed, zlib.crc32(fluxo.encode())]).generate_state(2, np.uint64)
    passo = np.asarray(indices, np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    metades = np.column_stack([_misturar(passo + chave[0]), _misturar(passo + chave[1])])
    b = metades.astype(">u8").view(np.uint8).reshape(-1, 16).copy()
    b[:, 6] = (b[:, 6] & 0x0F) | 0x40
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80
    hexa = np.stack([_HEX[b >> 4], _HEX[b & 15]], axis=2).reshape(-1, 32)
    return _texto_fixo(
        _juntar(hexa[:, :8], b"-", hexa[:, 8:12], b"-", hexa[:, 12:16], b"-", hexa[:, 16:20], b"-", hexa[:, 20:])
    )


def _rng(seed: int, fluxo: str, bloco: int = 0) -> np.random.Generator:
    """An independent stream per (seed, purpose, chunk): draws for one never shift another's."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, zlib.crc32(fluxo.encode()), bloco])))


def _ascii(texto: str) -> str:
    """Lower-case ASCII fold of a name for e-mail addresses (João D'Ávila -> joaodavila)."""
    sem_acento = unicodedata.normalize("NFKD", texto).encode("ascii", "ignore").decode()
    return "".join(ch for ch in sem_acento.lower() if ch.isalnum())


def _dias_ponderados(
    rng: np.random.Generator, inicio: np.datetime64, fim: np.datetime64, n: int, crescimento: float
) -> np.ndarray:
    """Days drawn with a growing trend and fewer on weekends (datetime64[D])."""
    dias = np.arange(inicio, fim + 1)
    fim_de_semana = np.isin((dias - _EPOCA).astype(np.int64) % 7, (2, 3))  # 1970-01-01 was a Thursday
    peso = (1 + crescimento * np.linspace(0.0, 1.0, dias.size)) * np.where(fim_de_semana, 0.55, 1.0)
    return dias[rng.choice(dias.size, n, p=peso / peso.sum())]


def _segundo_do_dia(rng: np.random.Generator, n: int) -> np.ndarray:
    """Local second of the day: business-hours bell with a uniform tail of night owls."""
    horas = np.where(rng.random(n) < 0.85, rng.normal(14.5, 3.3, n), rng.uniform(0, 24, n))
    return (np.clip(horas, 0, 23.9999) * 3600).astype(np.int64)


def _ns_local(dia: np.ndarray, segundo: np.ndarray) -> np.ndarray:
    return (dia - _EPOCA).astype(np.int64) * _NS_DIA + segundo * 10**9


# ---------------------------------------------------------------------------------------------------
# Small tables and the context the big ones draw from
# ---------------------------------------------------------------------------------------------------


def _unidades_federativas() -> pa.RecordBatch:
    return _lote(
        "UnidadeFederativa",
        Uf=[u.sigla for u in _UFS],
        Nome=[u.nome for u in _UFS],
        Regiao=[u.regiao for u in _UFS],
        CepInicial=[u.cep_inicial for u in _UFS],
        CepFinal=[u.cep_final for u in _UFS],
    )


def _segmentos() -> pa.RecordBatch:
    return _lote(
        "Segmento",
        SegmentoId=[s.segmento_id for s in _SEG],
        Codigo=[s.codigo for s in _SEG],
        Descricao=[s.descricao for s in _SEG],
        IndiceReajuste=[s.indice_reajuste for s in _SEG],
        PrazoMinimo=[s.prazo_minimo for s in _SEG],
        PrazoMaximo=[s.prazo_maximo for s in _SEG],
    )


# yearly mean and monthly standard deviation of each index's monthly change, in percent
_MEDIAS_INDICE = {
    "INCC": ((0.58, 0.50, 0.35, 0.32, 0.33, 0.70, 1.10, 0.75, 0.28, 0.50, 0.48, 0.42), 0.22),
    "IPCA": ((0.85, 0.50, 0.25, 0.31, 0.35, 0.37, 0.80, 0.48, 0.37, 0.40, 0.38, 0.33), 0.22),
    "IGPM": ((0.85, 0.57, -0.05, 0.60, 0.60, 1.80, 1.30, 0.45, -0.28, 0.50, 0.30, 0.35), 0.60),
}


def _indices(seed: int) -> pa.RecordBatch:
    """Monthly index history; IPCA is published ~10 days after its month, the FGV indices at month end."""
    rng = _rng(seed, "IndiceCorrecao")
    meses = np.arange(INICIO_INDICES, FIM_INDICES + 1)
    ano = meses.astype("datetime64[Y]").astype(np.int64) + 1970 - 2015
    competencia = meses.astype("datetime64[D]")
    nomes, comps, pcts, publicados = [], [], [], []
    for indice in ref.INDICES:
        medias, desvio = _MEDIAS_INDICE[indice]
        pct = np.asarray(medias)[ano] + rng.normal(0, desvio, meses.size)
        if indice == "INCC":  # construction wage agreements push May and June up
            pct += np.isin(meses.astype(np.int64) % 12, (4, 5)) * 0.9
        if indice == "IPCA":
            dia = (meses + 1).astype("datetime64[D]") + rng.integers(7, 12, meses.size)
        else:
            dia = competencia + rng.integers(26, 29, meses.size)
        segundo = (dia - _EPOCA).astype(np.int64) * 86_400 + 9 * 3600 + rng.integers(0, 900, meses.size)
        nomes += [indice] * meses.size
        comps.append(competencia)
        pcts.append(np.round(pct * 10**6).astype(np.int64))
        publicados.append(_datetime_sqlserver(segundo, rng.integers(0, 300, meses.size)))
    return _lote(
        "IndiceCorrecao",
        Indice=nomes,
        Competencia=np.concatenate(comps),
        PctMes=np.concatenate(pcts),
        PublicadoEm=np.concatenate(publicados),
    )


def _cnpjs_numericos(raizes: np.ndarray, filiais: np.ndarray) -> np.ndarray:
    return documents.gerar_cnpjs(digitos_ascii(raizes * 10**4 + filiais, 12))


_ALFANUMERICOS = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", np.uint8)


def _cnpjs_alfanumericos(rng: np.random.Generator, n: int) -> np.ndarray:
    """New-format CNPJs: an alphanumeric root with at least one letter, head office branch 0001."""
    raiz = _ALFANUMERICOS[rng.integers(0, 36, (n, 8))]
    raiz[np.arange(n), rng.integers(0, 8, n)] = _ALFANUMERICOS[rng.integers(10, 36, n)]
    return documents.gerar_cnpjs(
        np.concatenate([raiz, np.broadcast_to(np.frombuffer(b"0001", np.uint8), (n, 4))], axis=1)
    )


@dataclass(frozen=True)
class _Contexto:
    """What the chunked tables draw from: the small tables and per-customer location."""

    seed: int
    simulacoes: int
    clientes: int
    lotes: dict[str, pa.RecordBatch]
    plano: dict[str, np.ndarray]  # per plan (index = PlanoId - 1)
    plano_por_segmento: np.ndarray  # plan indices sorted by segment
    plano_acumulado: np.ndarray  # segment index + cumulative weight within the segment, same order
    plano_reserva: np.ndarray  # per segment: a plan in force over the whole simulation period
    grupos_abertos: np.ndarray  # GrupoIds of groups in formation or running, sorted by plan
    grupo_inicio: np.ndarray  # per plan: first position in grupos_abertos
    grupo_qtd: np.ndarray  # per plan: how many
    cliente_uf: np.ndarray  # per customer: index into UFS
    cliente_fuso: np.ndarray  # per customer: UTC offset in hours
    raiz_deslocamento: int  # offset of the index -> document root bijection


def _administradoras(seed: int) -> tuple[pa.RecordBatch, np.ndarray, np.ndarray, np.ndarray]:
    """Administradoras (the last one registered with an alphanumeric CNPJ in 2026); also returns
    each one's activity, registration day and market weight."""
    rng = _rng(seed, "Administradora")
    n = len(ref.ADMINISTRADORAS)
    cnpj = _cnpjs_numericos(rng.choice(10**8, n - 1, replace=False), np.ones(n - 1, np.int64))
    cnpj = np.concatenate([cnpj, _cnpjs_alfanumericos(rng, 1)])
    ativa = np.ones(n, bool)
    ativa[rng.choice(np.arange(1, n - 1), 2, replace=False)] = False
    dia = np.datetime64("2015-01-01") + rng.integers(0, 8 * 365, n)
    dia[-1] = INICIO_CNPJ_ALFANUMERICO + rng.integers(10, 40)
    segundo = (dia - _EPOCA).astype(np.int64) * 86_400 + rng.integers(8 * 3600, 19 * 3600, n)
    peso = 1.0 / np.arange(1, n + 1) ** 0.9
    lote = _lote(
        "Administradora",
        AdministradoraId=np.arange(1, n + 1),
        Cnpj=_texto_fixo(cnpj),
        RazaoSocial=list(ref.ADMINISTRADORAS),
        Ativa=ativa,
        CadastradaEm=_datetime_sqlserver(segundo, rng.integers(0, 300, n)),
    )
    return lote, ativa, dia, peso


def _um_plano(rng: np.random.Generator, s: int, vigencia_inicio: np.datetime64, vigencia_fim: np.datetime64) -> dict:
    """One commercial plan of segment s: scaled integers, a flag beside each nullable value."""
    seg = _SEG[s]
    prazos = np.array([p for p in PRAZOS_COMERCIAIS if seg.prazo_minimo <= p <= seg.prazo_maximo])
    if rng.random() < 0.9:  # the usual terms, the longer ones more popular (smaller instalments)
        prazo = int(rng.choice(prazos, p=prazos / prazos.sum()))
    else:
        prazo = int(rng.integers(seg.prazo_minimo, seg.prazo_maximo + 1))
    taxa_min, taxa_max = (int(x * 10**4) for x in seg.taxa_adm)
    if rng.random() < 0.3:  # quoted as a monthly rate (4 decimals) times the term
        taxa = int(rng.integers(-(-taxa_min // prazo), taxa_max // prazo + 1)) * prazo
    else:
        taxa = int(rng.integers(taxa_min // 500, taxa_max // 500 + 1)) * 500
    credito_min = int(seg.credito_piso * rng.choice([1.0, 1.2, 1.5, 2.0])) // 1000 * 1000
    credito_max = max(int(seg.credito_teto * rng.choice([0.5, 0.75, 1.0])) // 1000 * 1000, 2 * credito_min)
    embutido = [0, 15, 20, 25, 30] if seg.codigo == "IMOVEL" else [0, 0, 10, 15, 20, 25, 30]
    tem_reducao, tem_lance_fixo = rng.random() < 0.5, rng.random() < 0.45
    return {
        "segmento": s,
        "prazo": prazo,
        "taxa_adm": taxa,
        "fundo_reserva": int(rng.choice([0, 5000, 10000, 10000, 15000, 20000, 20000, 25000, 30000, 40000, 50000])),
        "antecipacao": 0 if rng.random() < 0.6 else int(rng.choice([10000, 15000, 20000])),
        "seguro_mes": int(rng.integers(30_000, 90_001)),
        "base_sd": bool(rng.random() < 0.6),
        "reducao": int(rng.choice([2500, 3000, 5000])) if tem_reducao else 0,
        "tem_reducao": tem_reducao,
        "embutido_max": int(rng.choice(embutido)) * 100,
        "lance_fixo": int(rng.choice([2000, 2500, 3000])) if tem_lance_fixo else 0,
        "tem_lance_fixo": tem_lance_fixo,
        "credito_min": credito_min * 100,
        "credito_max": credito_max * 100,
        "vigencia_inicio": vigencia_inicio,
        "vigencia_fim": vigencia_fim,
    }


def _vigencia(
    rng: np.random.Generator, ativa: bool, cadastro: np.datetime64, sempre: bool
) -> tuple[np.datetime64, np.datetime64]:
    """In force from after the administradora's registration; inactive administradoras' plans ended in 2024,
    a quarter of the others end 1-6 years after they start (NaT = open), `sempre` ones stay open."""
    if cadastro >= INICIO_CNPJ_ALFANUMERICO:
        inicio = cadastro + rng.integers(5, 30)
    else:
        inicio_adm = max(cadastro, np.datetime64("2019-01-01"))
        inicio = inicio_adm + rng.integers(0, max(1, (INICIO_SIMULACOES - inicio_adm).astype(int)))
    if not ativa:
        return inicio, max(np.datetime64("2024-01-01") + rng.integers(0, 366), inicio + 180)
    if not sempre and rng.random() < 0.25:
        return inicio, inicio + rng.integers(365, 6 * 365)
    return inicio, np.datetime64("NaT", "D")


def _planos(
    seed: int, ativa: np.ndarray, cadastro: np.ndarray, peso_adm: np.ndarray
) -> tuple[pa.RecordBatch, dict[str, np.ndarray], np.ndarray]:
    """1-4 plans per (administradora, segment) it offers; the first administradora offers all six
    and its first plan of each is in force for the whole period (the plan selection's fallback)."""
    rng = _rng(seed, "PlanoComercial")
    linhas, adm, nomes, reserva = [], [], [], np.zeros(len(_SEG), np.int64)
    for a in range(ativa.size):
        for s, seg in enumerate(_SEG):
            if a > 0 and rng.random() >= OFERTA_SEGMENTO[s]:
                continue
            for j in range(int(rng.integers(1, 5))):
                if a == 0 and j == 0:
                    reserva[s] = len(linhas)
                linhas.append(_um_plano(rng, s, *_vigencia(rng, ativa[a], cadastro[a], a == 0 and j == 0)))
                adm.append(a + 1)
                nomes.append(f"{seg.rotulo} {rng.choice(ref.ADJETIVOS_PLANO)} {linhas[-1]['prazo']}")
    p = {k: np.array([linha[k] for linha in linhas]) for k in linhas[0]}
    adm = np.array(adm)
    p["peso"] = peso_adm[adm - 1] * rng.uniform(0.5, 1.5, adm.size)
    lote = _lote(
        "PlanoComercial",
        PlanoId=np.arange(1, adm.size + 1),
        AdministradoraId=adm,
        SegmentoId=p["segmento"] + 1,
        Nome=nomes,
        PrazoMeses=p["prazo"],
        PctTaxaAdm=p["taxa_adm"],
        PctFundoReserva=p["fundo_reserva"],
        PctAntecipacao=p["antecipacao"],
        PctSeguroMes=p["seguro_mes"],
        BaseSeguro=np.where(p["base_sd"], "SD", "CR"),
        PctReducao=np.ma.array(p["reducao"], mask=~p["tem_reducao"]),
        PctEmbutidoMax=p["embutido_max"],
        PctLanceFixo=np.ma.array(p["lance_fixo"], mask=~p["tem_lance_fixo"]),
        CreditoMinimo=p["credito_min"] * 100,
        CreditoMaximo=p["credito_max"] * 100,
        VigenciaInicio=p["vigencia_inicio"],
        VigenciaFim=pa.array(p["vigencia_fim"], type=_D),
    )
    return lote, p, reserva


_COTAS = {
    "AUTO": (300, 5000),
    "MOTO": (500, 5000),
    "IMOVEL": (200, 1500),
    "PESADO": (100, 800),
    "ELETRO": (500, 3000),
    "SERVICO": (300, 2000),
}


def _grupos(seed: int, plano: dict[str, np.ndarray]) -> pa.RecordBatch:
    """1-6 groups per plan, the first one running so every plan has a group to join; a group is closed
    only if its plan started at least one full term before the end of the period."""
    rng = _rng(seed, "Grupo")
    qtd = rng.integers(1, 7, plano["prazo"].size)
    plano_id = np.repeat(np.arange(plano["prazo"].size), qtd)
    n = plano_id.size
    primeiro = np.r_[True, plano_id[1:] != plano_id[:-1]]
    inicio = plano["vigencia_inicio"][plano_id]
    ultimo_inicio_encerrado = formulas.somar_meses_vetor(np.full(n, FIM_SIMULACOES), -plano["prazo"][plano_id])
    situacao = rng.choice(np.array(["F", "A", "E"]), n, p=[0.3, 0.5, 0.2])
    situacao[primeiro | ((situacao == "E") & (ultimo_inicio_encerrado < inicio))] = "A"
    fim = np.where(situacao == "E", ultimo_inicio_encerrado, FIM_SIMULACOES)
    constituicao = inicio + (rng.random(n) * (fim - inicio + 1).astype(np.int64)).astype(np.int64)
    codigo_seg = np.array([s.codigo for s in _SEG])[plano["segmento"][plano_id]]
    faixa = np.array([_COTAS[c] for c in codigo_seg])
    grupo_id = np.arange(1, n + 1)
    return _lote(
        "Grupo",
        GrupoId=grupo_id,
        PlanoId=plano_id + 1,
        CodigoGrupo=[f"{c[:3]}-{g:05d}" for c, g in zip(codigo_seg, grupo_id)],
        QuantidadeCotas=rng.integers(faixa[:, 0], faixa[:, 1] + 1) // 10 * 10,
        DataConstituicao=pa.array(constituicao, type=_D, mask=situacao == "F"),
        DiaAssembleia=rng.integers(1, 29, n),
        Situacao=situacao,
    )


def _contexto(simulacoes: int, seed: int) -> _Contexto:
    adm_lote, ativa, cadastro, peso_adm = _administradoras(seed)
    plano_lote, plano, reserva = _planos(seed, ativa, cadastro, peso_adm)
    grupo_lote = _grupos(seed, plano)
    ordem = np.argsort(plano["segmento"], kind="stable")
    seg_ordenado = plano["segmento"][ordem]
    peso = plano["peso"][ordem]
    acumulado = np.zeros(ordem.size)
    for s in range(len(_SEG)):
        em_s = seg_ordenado == s
        acumulado[em_s] = s + np.cumsum(peso[em_s]) / peso[em_s].sum()
    g_plano = grupo_lote.column("PlanoId").to_numpy() - 1
    aberto = pc.not_equal(grupo_lote.column("Situacao"), "E").to_numpy(zero_copy_only=False)
    abertos = grupo_lote.column("GrupoId").to_numpy()[aberto]
    n_planos = plano["prazo"].size
    grupo_qtd = np.bincount(g_plano[aberto], minlength=n_planos)
    clientes = max(1, round(CLIENTES_POR_SIMULACAO * simulacoes)) if simulacoes else 0
    rng = _rng(seed, "ClienteUf")
    uf = rng.choice(len(_UFS), clientes, p=_PESO_UF).astype(np.uint8)
    noronha = (uf == _UF_PE) & (rng.random(clientes) < 0.01)  # over-represented so small runs have UTC-2
    fuso = np.where(noronha, ref.FUSO_NORONHA, _FUSOS[uf]).astype(np.int8)
    lotes = {
        "UnidadeFederativa": _unidades_federativas(),
        "Segmento": _segmentos(),
        "IndiceCorrecao": _indices(seed),
        "Administradora": adm_lote,
        "PlanoComercial": plano_lote,
        "Grupo": grupo_lote,
    }
    return _Contexto(
        seed,
        simulacoes,
        clientes,
        lotes,
        plano,
        ordem,
        acumulado,
        reserva,
        abertos,
        np.cumsum(grupo_qtd) - grupo_qtd,
        grupo_qtd,
        uf,
        fuso,
        int(rng.integers(0, 10**8)),
    )


# ---------------------------------------------------------------------------------------------------
# Cliente
# ---------------------------------------------------------------------------------------------------

_NOMES = pa.array(ref.NOMES_MASCULINOS + ref.NOMES_FEMININOS)
_NOMES_ASCII = pa.array([_ascii(n) for n in ref.NOMES_MASCULINOS + ref.NOMES_FEMININOS])
_SOBRENOMES = pa.array(ref.SOBRENOMES)
_SOBRENOMES_ASCII = pa.array([_ascii(n) for n in ref.SOBRENOMES])
_ATIVIDADES = pa.array(ref.ATIVIDADES_EMPRESA)
_FANTASIAS = pa.array(ref.FANTASIAS_EMPRESA)
_FANTASIAS_ASCII = pa.array([_ascii(n) for n in ref.FANTASIAS_EMPRESA])
_SUFIXOS = pa.array(ref.SUFIXOS_EMPRESA)
_DOMINIOS = pa.array([d for d, _ in ref.DOMINIOS_EMAIL])
_PESO_DOMINIOS = np.array([p for _, p in ref.DOMINIOS_EMAIL]) / sum(p for _, p in ref.DOMINIOS_EMAIL)
_DDDS = np.array([u.ddds + (0,) * (9 - len(u.ddds)) for u in _UFS], np.int64)
_QTD_DDDS = np.array([len(u.ddds) for u in _UFS])
_REGIAO_FISCAL = np.array([u.regiao_fiscal_cpf for u in _UFS], np.int64)
#: multiplier coprime with 10**8: index -> CPF/CNPJ root is a bijection, so documents never repeat
_MULTIPLICADOR_RAIZ = 48_271_207


def _escolher(rng: np.random.Generator, vocabulario: pa.Array, n: int) -> pa.Array:
    return vocabulario.take(pa.array(rng.integers(0, len(vocabulario), n)))


def _ceps(rng: np.random.Generator, uf: np.ndarray, fuso: np.ndarray) -> pa.Array:
    """A CEP inside a real range of the customer's UF (Fernando de Noronha has its own)."""
    cep = np.zeros(uf.size, np.int64)
    for i, u in enumerate(_UFS):
        dele = np.flatnonzero(uf == i)
        tamanhos = np.array([b - a + 1 for a, b in u.faixas_cep])
        faixa = rng.choice(tamanhos.size, dele.size, p=tamanhos / tamanhos.sum())
        inicios = np.array([a for a, _ in u.faixas_cep])
        cep[dele] = inicios[faixa] + rng.integers(0, tamanhos[faixa])
    cep[fuso == ref.FUSO_NORONHA] = ref.CEP_NORONHA
    return _texto_fixo(digitos_ascii(cep, 8))


def _documentos(
    rng: np.random.Generator,
    deslocamento: int,
    indice: np.ndarray,
    uf: np.ndarray,
    juridica: np.ndarray,
    alfanumerico: np.ndarray,
) -> pa.Array:
    """CPF whose 9th digit is the UF's fiscal region, or CNPJ; roots are a bijection of the index."""
    raiz = (indice * _MULTIPLICADOR_RAIZ + deslocamento) % 10**8
    base = raiz * 10 + _REGIAO_FISCAL[uf]
    base = np.where(base % 111_111_111 == 0, np.where(base < 5 * 10**8, base + 10, base - 10), base)
    cpf = _texto_fixo(documents.gerar_cpfs(base))
    filial = np.where(rng.random(indice.size) < 0.85, 1, rng.integers(2, 60, indice.size))
    cnpj = _cnpjs_numericos(raiz, filial)
    cnpj[alfanumerico] = _cnpjs_alfanumericos(rng, int(alfanumerico.sum()))
    return pc.if_else(juridica, _texto_fixo(cnpj), cpf)


def _nomes_e_emails(rng: np.random.Generator, juridica: np.ndarray) -> tuple[pa.Array, pa.Array]:
    n = juridica.size
    primeiro = rng.integers(0, len(_NOMES), n)
    s1, s2 = rng.integers(0, len(_SOBRENOMES), n), rng.integers(0, len(_SOBRENOMES), n)
    segundo = pa.array(s2, mask=rng.random(n) < 0.4)
    pessoa = pc.binary_join_element_wise(
        _NOMES.take(primeiro), _SOBRENOMES.take(segundo), _SOBRENOMES.take(s1), " ", null_handling="skip"
    )
    fantasia = rng.integers(0, len(_FANTASIAS), n)
    empresa = pc.binary_join_element_wise(
        _escolher(rng, _ATIVIDADES, n), _FANTASIAS.take(fantasia), _escolher(rng, _SUFIXOS, n), " "
    )
    numero = pa.array(rng.integers(1, 2000, n), mask=rng.random(n) < 0.5).cast(_S)
    separador = pa.array(np.array([".", "_", ""])[rng.integers(0, 3, n)])
    dominio = _DOMINIOS.take(pa.array(rng.choice(len(_DOMINIOS), n, p=_PESO_DOMINIOS)))
    email_pessoa = pc.binary_join_element_wise(
        _NOMES_ASCII.take(primeiro),
        separador,
        _SOBRENOMES_ASCII.take(s1),
        numero,
        "@",
        dominio,
        "",
        null_handling="skip",
    )
    caixa = pa.array(np.array(["contato", "financeiro", "comercial", "adm"])[rng.integers(0, 4, n)])
    email_empresa = pc.binary_join_element_wise(caixa, "@", _FANTASIAS_ASCII.take(fantasia), ".com.br", "")
    email = pc.if_else(juridica, email_empresa, email_pessoa)
    return pc.if_else(juridica, empresa, pessoa), pc.if_else(pa.array(rng.random(n) < 0.12), pa.nulls(n, _S), email)


def _telefones(rng: np.random.Generator, uf: np.ndarray, juridica: np.ndarray) -> pa.Array:
    """55 + a DDD of the UF + mobile (9 + 8 digits) or, mostly for companies, a landline (8 digits)."""
    n = uf.size
    ddd = _DDDS[uf, rng.integers(0, _QTD_DDDS[uf])]
    fixo = rng.random(n) < np.where(juridica, 0.6, 0.08)
    numero = np.where(
        fixo,
        55 * 10**10 + ddd * 10**8 + rng.integers(2 * 10**7, 6 * 10**7, n),
        55 * 10**11 + ddd * 10**9 + 9 * 10**8 + rng.integers(6 * 10**7, 10**8, n),
    )
    return pa.array(numero, mask=rng.random(n) < 0.10).cast(_S)


def _clientes(ctx: _Contexto, bloco: int) -> pa.RecordBatch:
    rng = _rng(ctx.seed, "Cliente", bloco)
    indice = np.arange(bloco * BLOCO, min(ctx.clientes, (bloco + 1) * BLOCO), dtype=np.int64)
    n = indice.size
    uf, fuso = ctx.cliente_uf[indice], ctx.cliente_fuso[indice]
    juridica = rng.random(n) < PCT_PESSOA_JURIDICA
    dia = _dias_ponderados(rng, INICIO_CADASTROS, FIM_SIMULACOES, n, crescimento=1.5)
    local_ns = _ns_local(dia, _segundo_do_dia(rng, n)) + rng.integers(0, 1000, n) * 10**6
    alfanumerico = juridica & (dia >= INICIO_CNPJ_ALFANUMERICO) & (rng.random(n) < 0.6)
    nome, email = _nomes_e_emails(rng, juridica)
    idade = np.clip(rng.normal(40, 12, n), 18, 85)
    nascimento = dia - (idade * 365.25).astype(np.int64)
    renda = np.exp(np.where(juridica, np.log(60_000) + rng.normal(0, 1.0, n), np.log(4_200) + rng.normal(0, 0.65, n)))
    renda_centavos = np.where(rng.random(n) < 0.5, np.round(renda * 100), np.round(renda) * 100).astype(np.int64)
    return _lote(
        "Cliente",
        ClienteId=_guids(ctx.seed, "Cliente", indice),
        TipoPessoa=np.where(juridica, "J", "F"),
        CpfCnpj=_documentos(rng, ctx.raiz_deslocamento, indice, uf, juridica, alfanumerico),
        Nome=nome,
        Email=email,
        Telefone=_telefones(rng, uf, juridica),
        DataNascimento=pa.array(nascimento, type=_D, mask=juridica | (rng.random(n) < 0.06)),
        RendaMensal=np.ma.array(renda_centavos * 100, mask=rng.random(n) < 0.18),
        Cep=_ceps(rng, uf, fuso),
        Uf=pa.array([u.sigla for u in _UFS]).take(pa.array(uf)),
        ConsentimentoLgpd=rng.random(n) < 0.87,
        CadastradoEm=_datetimeoffset(local_ns, fuso, 3),
    )


# ---------------------------------------------------------------------------------------------------
# Simulacao and its children
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Nucleo:
    """What a chunk's Simulacao, SimulacaoLance and SimulacaoParcela rows must agree on."""

    simulacao_id: np.ndarray
    plano: np.ndarray  # plan index (PlanoId - 1)
    termos: formulas.TermosVetor
    cliente: np.ndarray  # customer index, -1 for an anonymous simulation
    fuso: np.ndarray  # UTC offset in hours of CriadaEm
    dia: np.ndarray  # local date of CriadaEm
    criada_local_ns: np.ndarray  # local wall time of CriadaEm, 100 ns granularity


def _em_vigor(ctx: _Contexto, plano: np.ndarray, dia: np.ndarray) -> np.ndarray:
    fim = ctx.plano["vigencia_fim"][plano]
    return (ctx.plano["vigencia_inicio"][plano] <= dia) & (np.isnat(fim) | (dia <= fim))


def _escolher_planos(ctx: _Contexto, rng: np.random.Generator, segmento: np.ndarray, dia: np.ndarray) -> np.ndarray:
    """A plan of the segment in force on the day, weighted by market share; redraws the plans not in
    force and falls back to the segment's always-in-force plan."""

    def sortear(seg: np.ndarray) -> np.ndarray:
        posicao = np.searchsorted(ctx.plano_acumulado, seg + rng.random(seg.size), side="right")
        return ctx.plano_por_segmento[np.minimum(posicao, ctx.plano_por_segmento.size - 1)]

    plano = sortear(segmento)
    for _ in range(8):
        fora = np.flatnonzero(~_em_vigor(ctx, plano, dia))
        if not fora.size:
            break
        plano[fora] = sortear(segmento[fora])
    fora = ~_em_vigor(ctx, plano, dia)
    plano[fora] = ctx.plano_reserva[segmento[fora]]
    return plano


_MEDIANA = np.array([s.credito_mediana for s in _SEG])
_SIGMA = np.array([s.credito_sigma for s in _SEG])


def _creditos(ctx: _Contexto, rng: np.random.Generator, segmento: np.ndarray, plano: np.ndarray) -> np.ndarray:
    """Log-normal credit per segment, mostly in round amounts, clipped to the plan (centavos)."""
    n = segmento.size
    reais = _MEDIANA[segmento] * np.exp(rng.normal(0, 1, n) * _SIGMA[segmento])
    passo = rng.choice([100_000, 10_000, 100, 1], n, p=[0.45, 0.30, 0.15, 0.10])  # in centavos
    centavos = np.maximum(np.round(reais * 100 / passo), 1).astype(np.int64) * passo
    return np.clip(centavos, ctx.plano["credito_min"][plano], ctx.plano["credito_max"][plano])


def _nucleo(ctx: _Contexto, bloco: int) -> _Nucleo:
    rng = _rng(ctx.seed, "SimulacaoNucleo", bloco)
    simulacao_id = np.arange(bloco * BLOCO, min(ctx.simulacoes, (bloco + 1) * BLOCO), dtype=np.int64) + 1
    n = simulacao_id.size
    segmento = rng.choice(len(_SEG), n, p=[s.peso_mix for s in _SEG])
    dia = _dias_ponderados(rng, INICIO_SIMULACOES, FIM_SIMULACOES, n, crescimento=0.6)
    criada = _ns_local(dia, _segundo_do_dia(rng, n)) + rng.integers(0, 10**7, n) * 100
    plano = _escolher_planos(ctx, rng, segmento, dia)
    credito = _creditos(ctx, rng, segmento, plano)
    com_seguro = rng.random(n) < PCT_COM_SEGURO
    cliente = np.where(rng.random(n) < PCT_ANONIMAS, -1, rng.integers(0, ctx.clientes, n))
    fuso = np.where(
        cliente >= 0, ctx.cliente_fuso[np.maximum(cliente, 0)], _FUSOS[rng.choice(len(_UFS), n, p=_PESO_UF)]
    )
    p = ctx.plano
    termos = formulas.TermosVetor(
        credito=credito,
        prazo=p["prazo"][plano],
        taxa_adm=p["taxa_adm"][plano],
        fundo_reserva=p["fundo_reserva"][plano],
        antecipacao=p["antecipacao"][plano],
        seguro_mes=p["seguro_mes"][plano],
        base_sd=p["base_sd"][plano],
        com_seguro=com_seguro,
        reducao=p["reducao"][plano],
        tem_reducao=p["tem_reducao"][plano],
    )
    return _Nucleo(simulacao_id, plano, termos, cliente, fuso, dia, criada)


def _observacoes(rng: np.random.Generator, simulacao_id: np.ndarray) -> pa.Array:
    """Mostly NULL, some short notes, and rare long proposal texts of 20-60 thousand characters."""
    n = simulacao_id.size
    u = rng.random(n)
    longa = np.flatnonzero((u < 1 / LONGA_A_CADA) | ((simulacao_id - 1) % LONGA_A_CADA == FASE_LONGA))
    tamanhos = rng.integers(20_000, 60_001, longa.size)
    longas = [
        (f"Proposta nº {i}: " + ref.PARAGRAFO_LONGO * (t // len(ref.PARAGRAFO_LONGO) + 1))[:t]
        for i, t in zip(simulacao_id[longa].tolist(), tamanhos.tolist())
    ]
    textos = pa.array(list(ref.OBSERVACOES) + longas)
    indice = rng.integers(0, len(ref.OBSERVACOES), n)
    indice[longa] = len(ref.OBSERVACOES) + np.arange(longa.size)
    nulo = u < 0.85
    nulo[longa] = False
    return textos.take(pa.array(indice, mask=nulo))


def _atualizada_em(rng: np.random.Generator, nu: _Nucleo, situacao: np.ndarray, valida_ate: np.ndarray) -> np.ndarray:
    """AtualizadaEm (UTC, 100 ns) at or after CriadaEm: proposals and contracts move on within days,
    expired ones are touched by the nightly job after ValidaAte, most plain simulations never change."""
    n = situacao.size
    criada_utc = nu.criada_local_ns - nu.fuso.astype(np.int64) * _NS_HORA
    media_s = np.array([600.0, 2 * 86_400, 5 * 86_400, 0.0])[situacao]
    atraso = (rng.exponential(1.0, n) * media_s * 10**7).astype(np.int64) * 100
    atraso[(situacao == 0) & (rng.random(n) < 0.7)] = 0
    job_local = _ns_local(valida_ate + 1, np.full(n, 2 * 3600)) + rng.integers(0, 1800 * 10**7, n) * 100
    expirada = job_local - nu.fuso.astype(np.int64) * _NS_HORA
    return np.where(situacao == 3, expirada, criada_utc + atraso).astype("datetime64[ns]")


def _simulacoes(ctx: _Contexto, bloco: int) -> pa.RecordBatch:
    nu = _nucleo(ctx, bloco)
    rng = _rng(ctx.seed, "Simulacao", bloco)
    n, t = nu.simulacao_id.size, nu.termos
    parcelas = formulas.parcelas_vetor(t)
    valida_ate = nu.dia + rng.choice([7, 15, 30], n, p=[0.15, 0.25, 0.60])
    situacao = rng.choice(4, n, p=PESO_SITUACOES)
    situacao[(situacao == 3) & (valida_ate >= HOJE)] = 0
    com_grupo = rng.random(n) < PCT_GRUPO_POR_SITUACAO[situacao]
    grupo = ctx.grupos_abertos[ctx.grupo_inicio[nu.plano] + rng.integers(0, ctx.grupo_qtd[nu.plano])]
    versao = ROWVERSION_BASE + nu.simulacao_id * 4 + rng.integers(0, 4, n)
    anonima = nu.cliente < 0
    return _lote(
        "Simulacao",
        SimulacaoId=nu.simulacao_id,
        SimulacaoGuid=_guids(ctx.seed, "Simulacao", nu.simulacao_id),
        ClienteId=pc.if_else(anonima, pa.nulls(n, _S), _guids(ctx.seed, "Cliente", np.maximum(nu.cliente, 0))),
        PlanoId=nu.plano + 1,
        GrupoId=pa.array(grupo, mask=~com_grupo),
        Canal=rng.choice(5, n, p=PESO_CANAIS) + 1,
        ValorCredito=t.credito,
        PrazoMeses=t.prazo,
        PctTaxaAdm=t.taxa_adm,
        PctFundoReserva=t.fundo_reserva,
        PctAntecipacao=t.antecipacao,
        PctSeguroMes=t.seguro_mes,
        PctReducao=np.ma.array(t.reducao, mask=~t.tem_reducao),
        ComSeguro=t.com_seguro,
        ParcelaIntegral=parcelas.integral,
        ParcelaReduzida=np.ma.array(parcelas.reduzida, mask=~t.tem_reducao),
        PrimeiraParcela=parcelas.primeira,
        ValorTotalPlano=parcelas.total_plano,
        Situacao=SITUACOES[situacao],
        Observacao=_observacoes(rng, nu.simulacao_id),
        CriadaEm=_datetimeoffset(nu.criada_local_ns, nu.fuso, 7),
        AtualizadaEm=_atualizada_em(rng, nu, situacao, valida_ate),
        ValidaAte=valida_ate,
        VersaoLinha=_texto_fixo(versao.astype(">u8").view(np.uint8).reshape(-1, 8), pa.binary()),
    )


def _pct_lance(rng: np.random.Generator, n: int) -> np.ndarray:
    """A free bid percentage (x100): mostly whole percents, some with centesimal precision."""
    inteiro = rng.integers(10, 51, n) * 100
    return np.where(rng.random(n) < 0.7, inteiro, rng.integers(1000, 5001, n))


def _lances(ctx: _Contexto, bloco: int, primeiro_id: int) -> pa.RecordBatch:
    """One bid for ~30 % of the simulations, obeying the bid rules: fixed bids only on plans with
    PctLanceFixo, embedded ones only within PctEmbutidoMax."""
    nu = _nucleo(ctx, bloco)
    rng = _rng(ctx.seed, "SimulacaoLance", bloco)
    linha = np.flatnonzero(rng.random(nu.simulacao_id.size) < PCT_COM_LANCE)
    n, plano, c, prazo = linha.size, nu.plano[linha], nu.termos.credito[linha], nu.termos.prazo[linha]
    fixo_pct, tem_fixo = ctx.plano["lance_fixo"][plano], ctx.plano["tem_lance_fixo"][plano]
    embutido_max = formulas.mul_div_round(c, ctx.plano["embutido_max"][plano], 10**4)
    livre_pct = _pct_lance(rng, n)
    u = rng.random(n)
    pode_embutir = embutido_max >= 1
    tipo = np.where(tem_fixo & (u < 0.3), "F", np.where(pode_embutir & (u < 0.65), "E", "L"))
    pct = np.where(tipo == "F", fixo_pct, livre_pct)
    valor = formulas.mul_div_round(c, pct, 10**4)
    teto = np.minimum(valor, embutido_max)
    embutido = np.maximum(teto * rng.integers(300, 1001, n) // 1000, 1)
    embutido = np.where(embutido >= 10_000, embutido // 100 * 100, embutido)  # whole reais when large
    embute = (tipo == "E") | ((tipo == "F") & pode_embutir & (rng.random(n) < 0.4))
    embutido = np.where(embute & (teto >= 1), embutido, 0)
    tipo = np.where((tipo == "E") & (embutido == 0), "L", tipo)
    mes = np.minimum(1 + (prazo * rng.random(n) ** 1.6).astype(np.int64), prazo)
    return _lote(
        "SimulacaoLance",
        LanceId=np.arange(primeiro_id, primeiro_id + n),
        SimulacaoId=nu.simulacao_id[linha],
        TipoLance=tipo,
        PctLance=pct,
        ValorProprio=valor - embutido,
        ValorEmbutido=embutido,
        CreditoLiquido=c - embutido,
        MesContemplacao=mes,
        Abatimento=np.where(rng.random(n) < 0.55, "P", "V"),
    )


def _parcelas(ctx: _Contexto, bloco: int) -> pa.RecordBatch:
    """Full schedules for ~8 % of the simulations; month 1 is due a month after the local CriadaEm date."""
    nu = _nucleo(ctx, bloco)
    rng = _rng(ctx.seed, "SimulacaoParcela", bloco)
    linha = np.flatnonzero(rng.random(nu.simulacao_id.size) < PCT_COM_CRONOGRAMA)
    primeiro = formulas.somar_meses_vetor(nu.dia[linha], np.ones(linha.size, np.int64))
    c = formulas.cronograma_vetor(nu.termos.take(linha), primeiro)
    return _lote(
        "SimulacaoParcela",
        SimulacaoId=nu.simulacao_id[linha][c.linha],
        NumeroParcela=c.numero,
        Vencimento=c.vencimento,
        ValorFundoComum=c.fundo_comum,
        ValorTaxaAdm=c.taxa_adm,
        ValorFundoReserva=c.fundo_reserva,
        ValorSeguro=c.seguro,
        ValorAntecipacao=c.antecipacao,
        ValorTotal=c.total,
        PctAmortizadoAcumulado=c.pct_amortizado,
    )


# ---------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------


def _fatias(tabela: str, lote: pa.RecordBatch, batch_rows: int) -> Iterator[tuple[str, pa.RecordBatch]]:
    for inicio in range(0, lote.num_rows, batch_rows):
        yield tabela, lote.slice(inicio, batch_rows)


def generate(
    simulacoes: int = 20_000, seed: int = 42, batch_rows: int = 65_536
) -> Iterator[tuple[str, pa.RecordBatch]]:
    """Yields (contract table name, batch) in foreign-key order: UnidadeFederativa, Segmento, IndiceCorrecao,
    Administradora, PlanoComercial, Grupo, Cliente, Simulacao, SimulacaoLance, SimulacaoParcela.
    Same (simulacoes, seed) -> byte-identical batches, whatever batch_rows is."""
    if simulacoes < 0 or seed < 0 or batch_rows < 1:
        raise ValueError("simulacoes and seed must be >= 0 and batch_rows >= 1")
    ctx = _contexto(simulacoes, seed)
    for tabela, lote in ctx.lotes.items():
        yield from _fatias(tabela, lote, batch_rows)
    for bloco in range(-(-ctx.clientes // BLOCO)):
        yield from _fatias("Cliente", _clientes(ctx, bloco), batch_rows)
    blocos = range(-(-simulacoes // BLOCO))
    for bloco in blocos:
        yield from _fatias("Simulacao", _simulacoes(ctx, bloco), batch_rows)
    proximo_lance = 1
    for bloco in blocos:
        lote = _lances(ctx, bloco, proximo_lance)
        proximo_lance += lote.num_rows
        yield from _fatias("SimulacaoLance", lote, batch_rows)
    for bloco in blocos:
        yield from _fatias("SimulacaoParcela", _parcelas(ctx, bloco), batch_rows)
