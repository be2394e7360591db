"""Instalment formulas of business-rules.md, twice: an exact Decimal reference and a vectorised twin.

The reference reads like the rules and is what the checks trust. The twin runs the same formulas
on numpy arrays for the generator: money is integer centavos and every percentage is its DECIMAL's
unscaled integer (PctTaxaAdm 12.5000 -> 125000), so no float ever touches a value and both agree to
the centavo (the property tests prove it).
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from functools import wraps
from typing import NamedTuple, TypeVar

import numpy as np

# ---------------------------------------------------------------------------------------------------
# Decimal reference
# ---------------------------------------------------------------------------------------------------

CENTAVO = Decimal("0.01")
_MICRO = Decimal("0.000001")
_ZERO = Decimal("0.00")
#: 60 significant digits: a quotient of these DECIMALs is either an exact tie or at least 1e-21 away
#: from one, so rounding the 60-digit quotient to centavos equals rounding the exact rational.
_EXATO = Context(prec=60, rounding=ROUND_HALF_UP)

_T = TypeVar("_T")


def _exato(f: Callable[..., _T]) -> Callable[..., _T]:
    """Run f under the 60-digit context, whatever the caller's context is."""

    @wraps(f)
    def rodar(*args, **kwargs):
        with localcontext(_EXATO):
            return f(*args, **kwargs)

    return rodar


def R(x: Decimal) -> Decimal:
    """The rules' R(x): round half away from zero to centavos (Decimal's ROUND_HALF_UP)."""
    return x.quantize(CENTAVO, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Termos:
    """One simulation's inputs as stored: percentages as in the table (12.5000 means 12.5 %)."""

    credito: Decimal
    prazo: int
    pct_taxa_adm: Decimal
    pct_fundo_reserva: Decimal
    pct_antecipacao: Decimal
    pct_seguro_mes: Decimal
    base_seguro: str
    com_seguro: bool
    pct_reducao: Decimal | None = None


@_exato
def parcela_base(t: Termos) -> Decimal:
    """B = R(C * (1 + TA + FR - ANT) / N)."""
    return R(t.credito * (100 + t.pct_taxa_adm + t.pct_fundo_reserva - t.pct_antecipacao) / 100 / t.prazo)


@_exato
def seguro(t: Termos, k: int) -> Decimal:
    """S_k: 0 without insurance; R(C * SEG) on the credit; on the outstanding balance for SD."""
    if not t.com_seguro:
        return _ZERO
    if t.base_seguro == "CR":
        return R(t.credito * t.pct_seguro_mes / 100)
    saldo = t.credito * (100 + t.pct_taxa_adm + t.pct_fundo_reserva) / 100
    return R(saldo * (t.prazo - k + 1) * t.pct_seguro_mes / 100 / t.prazo)


def parcela_integral(t: Termos) -> Decimal:
    """ParcelaIntegral = B + S_1."""
    return parcela_base(t) + seguro(t, 1)


@_exato
def parcela_reduzida(t: Termos) -> Decimal | None:
    """ParcelaReduzida = R(B * (1 - RED)) + S_1, NULL when the plan has no reduction."""
    if t.pct_reducao is None:
        return None
    return R(parcela_base(t) * (100 - t.pct_reducao) / 100) + seguro(t, 1)


@_exato
def antecipacao(t: Termos) -> Decimal:
    """R(C * ANT): the advance of administration fee charged in the first instalment."""
    return R(t.credito * t.pct_antecipacao / 100)


def primeira_parcela(t: Termos) -> Decimal:
    """PrimeiraParcela = ParcelaIntegral + R(C * ANT)."""
    return parcela_integral(t) + antecipacao(t)


@_exato
def valor_total_plano(t: Termos) -> Decimal:
    """C + R(C * (TA - ANT)) + R(C * FR) + R(C * ANT) + sum of S_k over the N months."""
    c = t.credito
    return (
        c
        + R(c * (t.pct_taxa_adm - t.pct_antecipacao) / 100)
        + R(c * t.pct_fundo_reserva / 100)
        + antecipacao(t)
        + sum((seguro(t, k) for k in range(1, t.prazo + 1)), _ZERO)
    )


@_exato
def pct_amortizado(k: int, n: int) -> Decimal:
    """PctAmortizadoAcumulado = round(100 * k / N, 6), half away from zero."""
    return (Decimal(100) * k / n).quantize(_MICRO, rounding=ROUND_HALF_UP)


def somar_meses(d: date, meses: int) -> date:
    """d plus calendar months, the day clamped to the end of a shorter month (Jan 31 + 1 -> Feb 28)."""
    ano, mes0 = divmod(d.year * 12 + d.month - 1 + meses, 12)
    return date(ano, mes0 + 1, min(d.day, calendar.monthrange(ano, mes0 + 1)[1]))


class Parcela(NamedTuple):
    """One row of dbo.SimulacaoParcela, money in reais."""

    numero: int
    vencimento: date
    fundo_comum: Decimal
    taxa_adm: Decimal
    fundo_reserva: Decimal
    seguro: Decimal
    antecipacao: Decimal
    total: Decimal
    pct_amortizado: Decimal


@_exato
def cronograma(t: Termos, primeiro_vencimento: date) -> list[Parcela]:
    """The N instalments; month N absorbs each component's rounding residual."""
    c, n = t.credito, t.prazo
    taxa_total = R(c * (t.pct_taxa_adm - t.pct_antecipacao) / 100)
    reserva_total = R(c * t.pct_fundo_reserva / 100)
    # the monthly values come from C itself, not from the rounded totals
    fundo = R(c / n)
    taxa = R(c * (t.pct_taxa_adm - t.pct_antecipacao) / 100 / n)
    reserva = R(c * t.pct_fundo_reserva / 100 / n)
    parcelas = []
    for k in range(1, n + 1):
        ultima = k == n
        fc = c - fundo * (n - 1) if ultima else fundo
        ta = taxa_total - taxa * (n - 1) if ultima else taxa
        fr = reserva_total - reserva * (n - 1) if ultima else reserva
        ant = antecipacao(t) if k == 1 else _ZERO
        s = seguro(t, k)
        parcelas.append(
            Parcela(
                k,
                somar_meses(primeiro_vencimento, k - 1),
                fc,
                ta,
                fr,
                s,
                ant,
                fc + ta + fr + s + ant,
                pct_amortizado(k, n),
            )
        )
    return parcelas


@_exato
def valor_lance(credito: Decimal, pct_lance: Decimal) -> Decimal:
    """The bid amount R(C * PctLance / 100) = ValorProprio + ValorEmbutido."""
    return R(credito * pct_lance / 100)


def violacoes_lance(
    *,
    credito: Decimal,
    prazo: int,
    pct_embutido_max: Decimal,
    pct_lance_fixo: Decimal | None,
    tipo_lance: str,
    pct_lance: Decimal,
    valor_proprio: Decimal,
    valor_embutido: Decimal,
    credito_liquido: Decimal,
    mes_contemplacao: int,
) -> list[str]:
    """The bid rules a SimulacaoLance row breaks (empty when it obeys them all)."""
    regras = {
        "ValorProprio + ValorEmbutido = R(C * PctLance / 100)": valor_proprio + valor_embutido
        == valor_lance(credito, pct_lance),
        "ValorEmbutido <= R(C * PctEmbutidoMax / 100)": valor_embutido <= valor_lance(credito, pct_embutido_max),
        "CreditoLiquido = C - ValorEmbutido": credito_liquido == credito - valor_embutido,
        "1 <= MesContemplacao <= N": 1 <= mes_contemplacao <= prazo,
        "TipoLance in (L, F, E)": tipo_lance in ("L", "F", "E"),
        "L has ValorEmbutido = 0": tipo_lance != "L" or valor_embutido == 0,
        "E has ValorEmbutido > 0": tipo_lance != "E" or valor_embutido > 0,
        "F needs the plan's PctLanceFixo and PctLance = PctLanceFixo": tipo_lance != "F"
        or (pct_lance_fixo is not None and pct_lance == pct_lance_fixo),
    }
    return [regra for regra, ok in regras.items() if not ok]


# ---------------------------------------------------------------------------------------------------
# Vectorised twin (numpy int64, exact)
# ---------------------------------------------------------------------------------------------------

_LIMITE = 1 << 62
#: divisors stay below 2**55: the long multiplication then has digits of at least 7 bits, and for the
#: insurance on the balance (d = N * 10**14, so N <= 360) r0 * m < N * d fits in uint64
_DIVISOR_MAX = 1 << 55


def _mul(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x * y, refusing products that could overflow int64 instead of wrapping silently.

    The guard estimates each product in float64: it only bounds magnitudes (2**62 leaves a factor 2 of
    margin to 2**63), the product itself stays an exact integer.
    """
    if np.any(np.abs(np.asarray(x, np.float64)) * np.abs(np.asarray(y, np.float64)) >= _LIMITE):
        raise OverflowError("product out of the exact int64 range")
    return x * y


def _mul_divmod(a: np.ndarray, b: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(floor(a * b / d), a * b mod d) for a, b >= 0 and 0 < d < 2**55, exact where a * b overflows.

    a is split as qa * d + ra; ra * b is then long-multiplied over b's digits of w bits, reducing
    modulo d at every step: with w = 62 - bits(d), (r << w) + ra * digit < d * 2**(w + 1) <= 2**63.
    """
    if a.size == 0:
        return np.zeros_like(a), np.zeros_like(a)
    if d.min() <= 0 or d.max() >= _DIVISOR_MAX or a.min() < 0 or b.min() < 0:
        raise ValueError("exact division needs a, b >= 0 and 0 < d < 2**55")
    largura = 62 - int(d.max()).bit_length()
    mascara = (1 << largura) - 1
    qa, ra = np.divmod(a, d)
    q = np.zeros_like(a)
    r = np.zeros_like(a)
    digitos = -(-int(b.max()).bit_length() // largura)
    for deslocamento in range(largura * (digitos - 1), -1, -largura):
        dq, r = np.divmod((r << largura) + ra * ((b >> deslocamento) & mascara), d)
        q = (q << largura) + dq
    return _mul(qa, b) + q, r


def mul_div_round(a, b, d) -> np.ndarray:
    """round(a * b / d) half away from zero, exact in int64 even where a * b itself is not.

    a >= 0, 0 < d < 2**55, b of any sign; the remainder decides the rounding exactly.
    """
    a, b, d = np.broadcast_arrays(np.asarray(a, np.int64), np.asarray(b, np.int64), np.asarray(d, np.int64))
    q, r = _mul_divmod(a, np.abs(b), d)
    q = q + (2 * r >= d)
    return np.where(b < 0, -q, q)


@dataclass(frozen=True)
class TermosVetor:
    """Many simulations' inputs as scaled integers (int64 arrays of equal length)."""

    credito: np.ndarray  # ValorCredito in centavos
    prazo: np.ndarray  # PrazoMeses, 1 .. 360
    taxa_adm: np.ndarray  # PctTaxaAdm * 10**4
    fundo_reserva: np.ndarray  # PctFundoReserva * 10**4
    antecipacao: np.ndarray  # PctAntecipacao * 10**4, 0 <= antecipacao <= taxa_adm
    seguro_mes: np.ndarray  # PctSeguroMes * 10**6
    base_sd: np.ndarray  # bool: BaseSeguro = 'SD'
    com_seguro: np.ndarray  # bool
    reducao: np.ndarray  # PctReducao * 10**2, read only where tem_reducao
    tem_reducao: np.ndarray  # bool: PctReducao is not NULL

    def take(self, linhas: np.ndarray) -> TermosVetor:
        """The subset of simulations at positions `linhas`."""
        return TermosVetor(**{k: v[linhas] for k, v in vars(self).items()})


class ParcelasVetor(NamedTuple):
    """Per-simulation results in centavos; reduzida is meaningful only where tem_reducao."""

    integral: np.ndarray
    reduzida: np.ndarray
    primeira: np.ndarray
    total_plano: np.ndarray


class CronogramaVetor(NamedTuple):
    """Schedule rows of many simulations, simulation-major; `linha` points into the TermosVetor."""

    linha: np.ndarray
    numero: np.ndarray
    vencimento: np.ndarray  # datetime64[D]
    fundo_comum: np.ndarray
    taxa_adm: np.ndarray
    fundo_reserva: np.ndarray
    seguro: np.ndarray
    antecipacao: np.ndarray
    total: np.ndarray
    pct_amortizado: np.ndarray  # PctAmortizadoAcumulado * 10**6


def _meses(prazo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expand simulations into month rows: (position of the simulation, k = 1..N)."""
    linha = np.repeat(np.arange(prazo.size), prazo)
    inicio = np.cumsum(prazo) - prazo
    return linha, np.arange(linha.size) - np.repeat(inicio, prazo) + 1


def seguro_vetor(t: TermosVetor, linha: np.ndarray, k: np.ndarray) -> np.ndarray:
    """S_k in centavos for the rows (simulation position, month k).

    On the balance, S_k = round(X * m / D) with X = C(1 + TA + FR) * SEG scaled, m = N - k + 1 and
    D = N * 10**14. X is split once per simulation as q0 * D + r0, so each row costs one uint64
    product r0 * m (< N * D < 2**64 since N <= 360) and one division.
    """
    credito = mul_div_round(t.credito, t.seguro_mes, 10**8)
    d = t.prazo * 10**14
    q0, r0 = _mul_divmod(_mul(t.credito, 10**6 + t.taxa_adm + t.fundo_reserva), t.seguro_mes, d)
    m = t.prazo[linha] - k + 1
    d_linha = d[linha].astype(np.uint64)
    q1, r1 = np.divmod(r0[linha].astype(np.uint64) * m.astype(np.uint64), d_linha)
    saldo = _mul(q0[linha], m) + q1.astype(np.int64) + (2 * r1 >= d_linha)
    return np.where(t.com_seguro[linha], np.where(t.base_sd[linha], saldo, credito[linha]), 0)


def _soma_seguro(t: TermosVetor, s1: np.ndarray) -> np.ndarray:
    """Sum of S_k over k = 1..N: N * S_1 on the credit, month by month on the balance."""
    soma = t.prazo * s1
    sd = np.flatnonzero(t.com_seguro & t.base_sd)
    if sd.size:
        linha, k = _meses(t.prazo[sd])
        soma[sd] = np.add.reduceat(seguro_vetor(t, sd[linha], k), np.cumsum(t.prazo[sd]) - t.prazo[sd])
    return soma


def parcelas_vetor(t: TermosVetor) -> ParcelasVetor:
    """ParcelaIntegral, ParcelaReduzida, PrimeiraParcela and ValorTotalPlano of every simulation."""
    c, n = t.credito, t.prazo
    base = mul_div_round(c, 10**6 + t.taxa_adm + t.fundo_reserva - t.antecipacao, n * 10**6)
    s1 = seguro_vetor(t, np.arange(c.size), np.ones(c.size, np.int64))
    antecipacao = mul_div_round(c, t.antecipacao, 10**6)
    reduzida = np.where(t.tem_reducao, mul_div_round(base, 10**4 - t.reducao, 10**4) + s1, 0)
    total = (
        c
        + mul_div_round(c, t.taxa_adm - t.antecipacao, 10**6)
        + mul_div_round(c, t.fundo_reserva, 10**6)
        + antecipacao
        + _soma_seguro(t, s1)
    )
    return ParcelasVetor(base + s1, reduzida, base + s1 + antecipacao, total)


def somar_meses_vetor(d: np.ndarray, meses: np.ndarray) -> np.ndarray:
    """datetime64[D] plus calendar months, the day clamped to the end of a shorter month."""
    mes = d.astype("datetime64[M]")
    dia = d - mes.astype("datetime64[D]")
    alvo = mes + meses.astype("timedelta64[M]")
    ultimo_dia = (alvo + 1).astype("datetime64[D]") - alvo.astype("datetime64[D]") - 1
    return alvo.astype("datetime64[D]") + np.minimum(dia, ultimo_dia)


def _com_residuo(por_mes: np.ndarray, total: np.ndarray, n: np.ndarray, ultima: np.ndarray) -> np.ndarray:
    """Per-month values whose last month takes total - (N - 1) * per-month value."""
    return np.where(ultima, total - _mul(por_mes, n - 1), por_mes)


def cronograma_vetor(t: TermosVetor, primeiro_vencimento: np.ndarray) -> CronogramaVetor:
    """Full schedules of every simulation in t (N rows each), exactly as `cronograma`."""
    linha, k = _meses(t.prazo)
    c, n = t.credito[linha], t.prazo[linha]
    liquida = (t.taxa_adm - t.antecipacao)[linha]
    reserva = t.fundo_reserva[linha]
    ultima = k == n
    fundo = _com_residuo(mul_div_round(c, 1, n), c, n, ultima)
    taxa = _com_residuo(mul_div_round(c, liquida, n * 10**6), mul_div_round(c, liquida, 10**6), n, ultima)
    fr = _com_residuo(mul_div_round(c, reserva, n * 10**6), mul_div_round(c, reserva, 10**6), n, ultima)
    antecipacao = np.where(k == 1, mul_div_round(c, t.antecipacao[linha], 10**6), 0)
    s = seguro_vetor(t, linha, k)
    return CronogramaVetor(
        linha,
        k,
        somar_meses_vetor(primeiro_vencimento[linha], k - 1),
        fundo,
        taxa,
        fr,
        s,
        antecipacao,
        fundo + taxa + fr + s + antecipacao,
        mul_div_round(k, 10**8, n),
    )
