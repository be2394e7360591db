"""The rules of business-rules.md, written once in SQLAlchemy Core, evaluated in Aurora and runnable on the source.

Each rule selects, per row of its table, the key and one 0/1 flag per part of the rule; the same
expression compiles for Aurora (snake_case, trimmed, timestamptz) and for the source (SQL Server's
storage in the DuckDB stand-in) through `sides.Side`, for PostgreSQL, DuckDB and SQL Server 2017 (no
generate_series, no OFFSET fences there). Money is compared in integer
centavos and every percentage as its DECIMAL's unscaled integer, with R(x) as exact integer rounding half away from zero
(`sql.mul_div_round`), so "to the centavo" means the same thing in every database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from consorcio_assets.catalog import Catalog, Table
from consorcio_assets.checks import sql as q
from consorcio_assets.checks.outcome import Outcome
from consorcio_assets.checks.rows import find, key_labels
from consorcio_assets.checks.sides import Side
from consorcio_assets.common.stages import AURORA

#: mod-11 weights of the CPF's two check digits and of the CNPJ's (over 9/10 and 12/13 characters)
CPF_WEIGHTS = ((10, 9, 8, 7, 6, 5, 4, 3, 2), (11, 10, 9, 8, 7, 6, 5, 4, 3, 2))
CNPJ_WEIGHTS = ((5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2), (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2))
TELEFONE_REGEX = "55[1-9][1-9]9?[0-9]{8}"
_TELEFONE_LIKE = ("55[1-9][1-9]" + "[0-9]" * 8, "55[1-9][1-9]9" + "[0-9]" * 8)


class T:
    """A catalog table inside a rule: values by SQL Server column name, on whichever side."""

    def __init__(self, side: Side, table: Table, alias: str):
        self.side, self.table = side, table
        self.clause = side.table(table, alias)

    def __getitem__(self, name: str) -> sa.ColumnElement:
        return self.side.value(self.clause, self.table.column(name))

    def cents(self, name: str, scale: int = 2) -> sa.ColumnElement:
        """A DECIMAL as its unscaled integer (ValorCredito 12.50 -> 1250, PctTaxaAdm 12.5 -> 125000)."""
        return q.scaled(self[name], scale)

    def flag(self, name: str) -> sa.ColumnElement:
        return self.side.flag(self.clause, self.table.column(name))

    def local_date(self, name: str) -> sa.ColumnElement:
        return q.as_date(self.side.local_timestamp(self.clause, self.table.column(name)))

    def keys(self) -> list[sa.ColumnElement]:
        names = self.table.primary_key
        return [self[n].label(label) for n, label in zip(names, key_labels(len(names)))]


@dataclass(frozen=True)
class Rule:
    """One check: the rule's parts (in words) and the query that flags each part per row."""

    check: str
    table: str  # the catalog table whose asset carries the check
    summary: str
    parts: tuple[str, ...]
    build: Callable[[Side, Catalog], sa.Select]  # (side, catalog) -> keys + flags
    key: tuple[str, ...] | None = None  # key columns when not the table's primary key

    def query(self, side: Side, catalog: Catalog) -> sa.Select:
        return self.build(side, catalog)


def _flags(conditions: list[sa.ColumnElement]) -> list[sa.ColumnElement]:
    return [q.violated(ok).label(f"v{i}") for i, ok in enumerate(conditions)]


# ---- instalment formulas --------------------------------------------------------------------------
#
# Every formula is evaluated once per simulation, in three fenced subqueries: `valores` (inputs as integers:
# c in centavos, percentages unscaled, as rules.formulas.TermosVetor), `entradas` (the formulas' numerators)
# and `termos` (the rounded terms; expected money also as exact DECIMALs). OFFSET 0 keeps PostgreSQL from
# inlining an expression wherever it is used (it has no common-subexpression elimination). The fences keep
# the query in one process, which costs nothing now that check queries run without parallel workers.
#
# Insurance on the outstanding balance: S_k = R(u * m / D) with u = c * (10^6 + TA + FR) * SEG (unscaled),
# D = N * 10^14 and m = N - k + 1 months left. Split once per simulation as u = q * D + r, it is
# S_k = q * m + floor((r * m + D / 2) / D) (D is even): BIGINT arithmetic while D * (N + 1) < 2^63. Its sum
# over the plan is q * N(N + 1) / 2 plus a floor sum, which `_serie_seguro` evaluates in O(log N) steps
# instead of N terms. Other simulations (N > _BIGINT_MONTHS or u < 0) take the exact NUMERIC path.

#: months up to which D * (N + 1) = N * (N + 1) * 10^14 stays below 2^63
_BIGINT_MONTHS = 300

_SEGURO_TERMS = ("n", "com_seguro", "base_sd", "saldo_seg", "divisor_sd", "sd_q", "sd_r", "seguro_cr")


def _saldo_seguro(c, ta, fr, seg) -> sa.ColumnElement:
    """u = c * (10^6 + TA + FR) * SEG, unscaled (exact: widened before the products)."""
    return q.wide(c) * (q.num(10**6) + ta + fr) * seg


def _divisor_sd(n) -> sa.ColumnElement:
    """D = N * 10^14 in BIGINT (N <= _BIGINT_MONTHS)."""
    return q.as_bigint(n) * q.num(10**14)


def _inputs(s: T) -> dict[str, sa.ColumnElement]:
    """The simulation's formula inputs as integers: c in centavos, percentages unscaled."""
    return {
        "c": s.cents("ValorCredito"),
        "ta": s.cents("PctTaxaAdm", 4),
        "fr": s.cents("PctFundoReserva", 4),
        "ant": s.cents("PctAntecipacao", 4),
        "seg": s.cents("PctSeguroMes", 6),
    }


def _valores(side: Side, catalog: Catalog, scheduled_only: bool) -> sa.Subquery:
    """Each simulation's inputs as integers (c in centavos, percentages unscaled), converted once (fenced): a
    DECIMAL's conversion is a NUMERIC product and a cast, and the numerators name c seven times.

    `scheduled_only`: only simulations whose schedule has an instalment 1, with its Vencimento as
    `vencimento_1`: a join with one instalment per simulation, where "has any instalment" (IN) made every
    parallel process hash the whole schedule.
    """
    s, plano = T(side, catalog["Simulacao"], "s"), T(side, catalog["PlanoComercial"], "p")
    columns = {
        "simulacao_id": s["SimulacaoId"],
        "n": s["PrazoMeses"],
        **_inputs(s),
        "com_seguro": sa.case((s.flag("ComSeguro"), 1), else_=0),
        "base_sd": sa.case((plano["BaseSeguro"] == q.text_literal("SD"), 1), else_=0),
        "reducao": s.cents("PctReducao"),
        "parcela_integral": s.cents("ParcelaIntegral"),
        "parcela_reduzida": s.cents("ParcelaReduzida"),
        "primeira_parcela": s.cents("PrimeiraParcela"),
        "valor_total_plano": s.cents("ValorTotalPlano"),
        "pct_fundo_comum_mes": s.cents("PctFundoComumMes", 6),
    }
    joined = s.clause.join(plano.clause, plano["PlanoId"] == s["PlanoId"])
    if scheduled_only:
        first = T(side, catalog["SimulacaoParcela"], "p1")
        columns["vencimento_1"] = first["Vencimento"]
        joined = joined.join(
            first.clause, sa.and_(first["SimulacaoId"] == s["SimulacaoId"], first["NumeroParcela"] == 1)
        )
    query = sa.select(*(expr.label(name) for name, expr in columns.items())).select_from(joined)
    return q.fence(query, side.dialect).subquery("valores")


#: the simulation's own values `rule_instalments` compares its terms with (and the reduction it applies)
_AS_STORED = (
    "reducao",
    "parcela_integral",
    "parcela_reduzida",
    "primeira_parcela",
    "valor_total_plano",
    "pct_fundo_comum_mes",
)
#: `valores` columns the levels above pass on unchanged
_AS_GIVEN = ("simulacao_id", "c", "n", "com_seguro", "base_sd", *_AS_STORED)


def _entradas(side: Side, catalog: Catalog, scheduled_only: bool) -> sa.Subquery:
    """Each simulation's integer inputs and the numerators of its formulas, computed once (fenced)."""
    v = _valores(side, catalog, scheduled_only).c
    wide_c = q.wide(v.c)
    months = sa.func.nullif(v.n, 0)  # a divisor: PrazoMeses 0 makes every formula NULL, hence violated
    columns: dict[str, sa.ColumnElement] = {
        name: v[name] for name in _AS_GIVEN + (("vencimento_1",) if scheduled_only else ())
    }
    columns |= {
        "months": months,
        "num_base": wide_c * (q.num(10**6) + v.ta + v.fr - v.ant),
        "num_taxa": wide_c * (v.ta - v.ant),
        "num_reserva": wide_c * v.fr,
        "num_antecipacao": wide_c * v.ant,
        "num_seguro_cr": wide_c * v.seg,
        "saldo_seg": _saldo_seguro(v.c, v.ta, v.fr, v.seg),
        "divisor_sd": q.wide(months) * q.num(10**14),
    }
    query = sa.select(*(expr.label(name) for name, expr in columns.items()))
    return q.fence(query, side.dialect).subquery("entradas")


def _termos(side: Side, catalog: Catalog, names: tuple[str, ...], scheduled_only: bool = False) -> sa.Subquery:
    """The terms `names` of every simulation (or only of those with an instalment 1), computed once (fenced)."""
    e = _entradas(side, catalog, scheduled_only).c
    rd = q.round_div

    def cents(numerator, divisor):
        return q.as_bigint(rd(numerator, divisor))

    base, antecipacao = cents(e.num_base, e.months * q.num(10**6)), cents(e.num_antecipacao, q.num(10**6))
    taxa_total, reserva_total = cents(e.num_taxa, q.num(10**6)), cents(e.num_reserva, q.num(10**6))
    fundo_mes, taxa_mes = cents(e.c, e.months), cents(e.num_taxa, e.months * q.num(10**6))
    reserva_mes = cents(e.num_reserva, e.months * q.num(10**6))
    bigint_sd = sa.and_(e.com_seguro == 1, e.base_sd == 1, e.saldo_seg >= 0, e.n.between(1, _BIGINT_MONTHS))
    columns: dict[str, sa.ColumnElement] = {name: e[name] for name in _AS_GIVEN}
    columns |= {
        "saldo_seg": e.saldo_seg,
        "divisor_sd": e.divisor_sd,
        "sd_q": sa.case((bigint_sd, q.idiv(e.saldo_seg, e.divisor_sd))),
        "sd_r": sa.case((bigint_sd, q.as_bigint(q.modulo(e.saldo_seg, e.divisor_sd)))),
        "seguro_cr": cents(e.num_seguro_cr, q.num(10**8)),
        "base": base,
        "antecipacao": antecipacao,
        "taxa_total": taxa_total,
        "reserva_total": reserva_total,
        # what each instalment must hold, as DECIMALs: month N takes each component's residual
        "fundo_mes": q.from_cents(fundo_mes),
        "fundo_ultimo": q.from_cents(e.c - (e.n - 1) * fundo_mes),
        "taxa_mes": q.from_cents(taxa_mes),
        "taxa_ultimo": q.from_cents(taxa_total - (e.n - 1) * taxa_mes),
        "reserva_mes": q.from_cents(reserva_mes),
        "reserva_ultimo": q.from_cents(reserva_total - (e.n - 1) * reserva_mes),
        "antecipacao_mes_1": q.from_cents(antecipacao),
    }
    if scheduled_only:
        columns["vencimento_1"] = e.vencimento_1
    query = sa.select(*(columns[name].label(name) for name in ("simulacao_id", *names)))
    return q.fence(query, side.dialect).subquery("termos")


def _seguro(t, k) -> sa.ColumnElement:
    """S_k in centavos: 0 without insurance, R(C * SEG) on the credit, on the outstanding balance for SD."""
    months_left = t.c.n - k + 1
    d = _divisor_sd(t.c.n)
    on_balance = sa.case(
        (
            t.c.sd_r.is_not(None),
            t.c.sd_q * months_left + q.bigint_div(t.c.sd_r * months_left + q.bigint_div(d, q.num(2)), d),
        ),
        else_=q.round_div(t.c.saldo_seg * months_left, t.c.divisor_sd),
    )
    return sa.case((t.c.com_seguro == 0, q.num(0)), (t.c.base_sd == 1, on_balance), else_=t.c.seguro_cr)


def _serie_seguro(side: Side, catalog: Catalog) -> sa.Subquery:
    """(simulacao_id, serie): sum of floor((r * m + D / 2) / D) for m = 1..N, per BIGINT-safe SD simulation.

    The floor sum sum(floor((a * i + b) / m), i = 0..n-1) of AtCoder Library (Euclid-like: with a, b < m,
    y = a * n + b; the sum is 0 when y < m, else that of (y div m, a, m mod a, (y mod m) mod a) plus the
    whole parts taken out), one recursive step for every simulation at once; each row's n at least
    halves every two steps. Every partial sum is part of the result, and a * n + b < D * (N + 1) < 2^63.
    """
    s, plano = T(side, catalog["Simulacao"], "s"), T(side, catalog["PlanoComercial"], "p")
    n = s["PrazoMeses"]
    given = _inputs(s)
    u = _saldo_seguro(given["c"], given["ta"], given["fr"], given["seg"])
    saldos = q.fence(  # u once per simulation: it is both filtered on and divided
        sa.select(s["SimulacaoId"].label("simulacao_id"), q.as_bigint(n).label("n"), u.label("u"))
        .select_from(s.clause.join(plano.clause, plano["PlanoId"] == s["PlanoId"]))
        .where(s.flag("ComSeguro"), plano["BaseSeguro"] == q.text_literal("SD"), n.between(1, _BIGINT_MONTHS)),
        side.dialect,
    ).subquery("saldos_seguro")
    d = _divisor_sd(saldos.c.n)
    inputs = q.fence(
        sa.select(
            saldos.c.simulacao_id,
            saldos.c.n,
            d.label("d"),
            q.as_bigint(q.modulo(saldos.c.u, q.wide(d))).label("r"),
        ).where(saldos.c.u >= 0),
        side.dialect,
    ).subquery("saldos")
    b = inputs.c.r + q.bigint_div(inputs.c.d, q.num(2))  # r + D / 2 < 2D: one whole part taken out
    start = sa.select(
        inputs.c.simulacao_id,
        inputs.c.n,
        inputs.c.d.label("m"),
        inputs.c.r.label("a"),
        q.modulo(b, inputs.c.d).label("b"),
        (inputs.c.n * q.bigint_div(b, inputs.c.d)).label("acc"),
    )
    serie = start.cte("serie_seguro", recursive=True)
    y = serie.c.a * serie.c.n + serie.c.b
    count = q.bigint_div(y, serie.c.m)  # the next n: 0 when y < m, which ends the row
    rest = q.modulo(y, serie.c.m)
    step = sa.select(
        serie.c.simulacao_id,
        count,
        serie.c.a,
        q.modulo(serie.c.m, serie.c.a),
        q.modulo(rest, serie.c.a),
        serie.c.acc
        + q.bigint_div(count * (count - 1), q.num(2)) * q.bigint_div(serie.c.m, serie.c.a)
        + count * q.bigint_div(rest, serie.c.a),
    ).where(serie.c.n > 0, serie.c.a > 0)
    serie = serie.union_all(step)
    return (
        sa.select(serie.c.simulacao_id, serie.c.acc.label("serie"))
        .where(sa.or_(serie.c.n == 0, serie.c.a == 0))
        .subquery("series")
    )


#: PrazoMeses is a SMALLINT: a plan has at most 32,767 months
_MAX_MONTHS = 32_767


def _months() -> sa.Subquery:
    """Months 1.._MAX_MONTHS (column k) as a cross-joined tally of decimal digits: portable where
    generate_series is not (SQL Server has it only from 2022)."""
    digits = sa.union_all(*(sa.select(sa.literal_column(str(i)).label("d")) for i in range(10)))
    places = [digits.subquery(f"d{p}") for p in range(len(str(_MAX_MONTHS)))]
    k = sum((place.c.d * q.num(10**p) for p, place in enumerate(places[1:], start=1)), places[0].c.d) + q.num(1)
    top = places[-1].c.d <= q.num(_MAX_MONTHS // 10 ** (len(places) - 1))
    always = sa.literal_column("1") == sa.literal_column("1")
    tally = places[0]
    for place in places[1:]:
        tally = tally.join(place, always)  # a cross join, spelled the same in every dialect
    return sa.select(k.label("k")).select_from(tally).where(top).subquery("meses")


def _instalments(side: Side, catalog: Catalog) -> sa.Select:
    t = _termos(
        side,
        catalog,
        (
            *_SEGURO_TERMS,
            "c",
            "base",
            "antecipacao",
            "taxa_total",
            "reserva_total",
            *_AS_STORED,
        ),
    )
    series = _serie_seguro(side, catalog)
    # the month-by-month sum only where the BIGINT floor sum does not apply (none in practice)
    meses = _months()
    by_month = (
        sa.select(sa.func.sum(_seguro(t, meses.c.k))).select_from(meses).where(meses.c.k <= t.c.n).scalar_subquery()
    )
    on_balance = sa.case(
        (t.c.sd_r.is_not(None), t.c.sd_q * q.bigint_div(q.as_bigint(t.c.n) * (t.c.n + 1), q.num(2)) + series.c.serie),
        else_=by_month,
    )
    seguro_total = sa.case((t.c.com_seguro == 0, q.num(0)), (t.c.base_sd == 1, on_balance), else_=t.c.n * t.c.seguro_cr)
    s1 = _seguro(t, q.num(1))
    integral = t.c.base + s1
    reduzida_ok = sa.or_(
        sa.and_(t.c.reducao.is_(None), t.c.parcela_reduzida.is_(None)),
        t.c.parcela_reduzida == q.mul_div_round(t.c.base, q.num(10**4) - t.c.reducao, q.num(10**4)) + s1,
    )
    return sa.select(
        t.c.simulacao_id.label("k0"),
        *_flags(
            [
                t.c.parcela_integral == integral,
                reduzida_ok,
                t.c.primeira_parcela == integral + t.c.antecipacao,
                t.c.valor_total_plano == (t.c.c + t.c.taxa_total + t.c.reserva_total + t.c.antecipacao + seguro_total),
                t.c.pct_fundo_comum_mes == q.round_div(q.num(10**8), t.c.n),
            ]
        ),
    ).select_from(t.outerjoin(series, series.c.simulacao_id == t.c.simulacao_id))


def _schedule_values(side: Side, catalog: Catalog) -> sa.Select:
    """Every instalment against its simulation's terms; an instalment whose simulation or instalment 1 is
    missing has no terms, so it breaks every part (outer join).

    The terms are computed once per simulation (fenced) and the per-instalment work is kept to comparisons: an
    amount computed in integer units is compared with the column scaled up (`ValorSeguro * 100 = S_k`), not with
    the integer turned back into a DECIMAL, one NUMERIC operation a row instead of two (7.2M instalments)."""
    pa = T(side, catalog["SimulacaoParcela"], "pa")
    per_month = tuple(f"{term}_{when}" for term in ("fundo", "taxa", "reserva") for when in ("mes", "ultimo"))
    t = _termos(
        side,
        catalog,
        _SEGURO_TERMS + per_month + ("antecipacao_mes_1", "vencimento_1"),
        scheduled_only=True,
    )
    k, n = pa["NumeroParcela"], t.c.n
    last = k == n

    def month_or_last(column: str) -> sa.ColumnElement:
        return sa.case((last, t.c[f"{column}_ultimo"]), else_=t.c[f"{column}_mes"])

    components = ["ValorFundoComum", "ValorTaxaAdm", "ValorFundoReserva", "ValorSeguro", "ValorAntecipacao"]
    return sa.select(
        *pa.keys(),
        *_flags(
            [
                sa.and_(k >= 1, k <= n),
                pa["ValorFundoComum"] == month_or_last("fundo"),
                pa["ValorTaxaAdm"] == month_or_last("taxa"),
                pa["ValorFundoReserva"] == month_or_last("reserva"),
                pa["ValorAntecipacao"] == sa.case((k == 1, t.c.antecipacao_mes_1), else_=q.num(0)),
                pa["ValorSeguro"] * q.num(100) == _seguro(t, k),
                pa["ValorTotal"] == sum((pa[c] for c in components[1:]), pa[components[0]]),
                pa["PctAmortizadoAcumulado"] * q.num(10**6) == q.round_div_bigint(q.as_bigint(k) * q.num(10**8), n),
                pa["Vencimento"] == q.add_months(t.c.vencimento_1, k - 1),
            ]
        ),
    ).select_from(pa.clause.outerjoin(t, t.c.simulacao_id == pa["SimulacaoId"]))


def _schedule_totals(side: Side, catalog: Catalog) -> sa.Select:
    pa = T(side, catalog["SimulacaoParcela"], "pa")
    s = T(side, catalog["Simulacao"], "s")
    per = (
        sa.select(
            pa["SimulacaoId"].label("simulacao_id"),
            sa.func.count().label("parcelas"),
            sa.func.min(pa["NumeroParcela"]).label("primeira"),
            sa.func.max(pa["NumeroParcela"]).label("ultima"),
            sa.func.sum(pa["ValorTotal"]).label("soma"),
        )
        .group_by(pa["SimulacaoId"])
        .subquery("cronograma")
    )
    n = s["PrazoMeses"]
    return sa.select(
        per.c.simulacao_id.label("k0"),
        *_flags(
            [
                sa.and_(per.c.parcelas == n, per.c.primeira == 1, per.c.ultima == n),
                per.c.soma == s["ValorTotalPlano"],
            ]
        ),
    ).select_from(per.outerjoin(s.clause, s["SimulacaoId"] == per.c.simulacao_id))


# ---- bids, plans, dates ----------------------------------------------------------------------------


def _bids(side: Side, catalog: Catalog) -> sa.Select:
    lance = T(side, catalog["SimulacaoLance"], "l")
    s, plano = T(side, catalog["Simulacao"], "s"), T(side, catalog["PlanoComercial"], "p")
    c = s.cents("ValorCredito")
    tipo, embutido = lance["TipoLance"], lance["ValorEmbutido"]
    joined = lance.clause.join(s.clause, s["SimulacaoId"] == lance["SimulacaoId"]).join(
        plano.clause, plano["PlanoId"] == s["PlanoId"]
    )
    return sa.select(
        *lance.keys(),
        *_flags(
            [
                lance.cents("ValorProprio") + lance.cents("ValorEmbutido")
                == q.mul_div_round(c, lance.cents("PctLance"), q.num(10**4)),
                lance.cents("ValorEmbutido") <= q.mul_div_round(c, plano.cents("PctEmbutidoMax"), q.num(10**4)),
                lance["CreditoLiquido"] == s["ValorCredito"] - embutido,
                sa.and_(lance["MesContemplacao"] >= 1, lance["MesContemplacao"] <= s["PrazoMeses"]),
                sa.or_(
                    sa.and_(tipo == q.text_literal("L"), embutido == 0),
                    sa.and_(tipo == q.text_literal("E"), embutido > 0),
                    sa.and_(
                        tipo == q.text_literal("F"),
                        plano["PctLanceFixo"].is_not(None),
                        lance["PctLance"] == plano["PctLanceFixo"],
                    ),
                ),
            ]
        ),
    ).select_from(joined)


def _plan_ranges(side: Side, catalog: Catalog) -> sa.Select:
    plano, seg = T(side, catalog["PlanoComercial"], "p"), T(side, catalog["Segmento"], "sg")
    return sa.select(
        *plano.keys(),
        *_flags(
            [
                sa.and_(plano["PrazoMeses"] >= seg["PrazoMinimo"], plano["PrazoMeses"] <= seg["PrazoMaximo"]),
                sa.and_(plano["PctTaxaAdm"] > 0, plano["PctTaxaAdm"] <= 30),
                sa.and_(plano["PctFundoReserva"] >= 0, plano["PctFundoReserva"] <= 5),
                plano["PctAntecipacao"] <= plano["PctTaxaAdm"],
            ]
        ),
    ).select_from(plano.clause.outerjoin(seg.clause, seg["SegmentoId"] == plano["SegmentoId"]))


def _same(a, b) -> sa.ColumnElement:
    """Null-safe equality (SQL Server 2017 has no IS NOT DISTINCT FROM)."""
    return sa.or_(a == b, sa.and_(a.is_(None), b.is_(None)))


def _simulation_plan(side: Side, catalog: Catalog) -> sa.Select:
    s, plano = T(side, catalog["Simulacao"], "s"), T(side, catalog["PlanoComercial"], "p")
    grupo = T(side, catalog["Grupo"], "g")
    snapshot = ["PrazoMeses", "PctTaxaAdm", "PctFundoReserva", "PctAntecipacao", "PctSeguroMes", "PctReducao"]
    joined = s.clause.outerjoin(plano.clause, plano["PlanoId"] == s["PlanoId"]).outerjoin(
        grupo.clause, grupo["GrupoId"] == s["GrupoId"]
    )
    return sa.select(
        *s.keys(),
        *_flags(
            [
                sa.and_(*(_same(s[c], plano[c]) for c in snapshot)),
                sa.and_(s["ValorCredito"] >= plano["CreditoMinimo"], s["ValorCredito"] <= plano["CreditoMaximo"]),
                sa.or_(s["GrupoId"].is_(None), grupo["PlanoId"] == s["PlanoId"]),
            ]
        ),
    ).select_from(joined)


def _dates(side: Side, catalog: Catalog) -> sa.Select:
    s = T(side, catalog["Simulacao"], "s")
    return sa.select(
        *s.keys(),
        *_flags(
            [
                s["ValidaAte"] >= s.local_date("CriadaEm"),
                s["AtualizadaEm"] >= s["CriadaEm"],
            ]
        ),
    ).select_from(s.clause)


# ---- customers -------------------------------------------------------------------------------------


def _digit(value, position: int) -> sa.ColumnElement:
    """The character at `position` (1-based) valued as its ASCII code minus 48."""
    return q.ascii_code(q.substr(value, q.num(position), q.num(1))) - 48


def _check_digit(value, weights: tuple[int, ...]) -> sa.ColumnElement:
    """11 - (weighted sum mod 11), or 0 when the rest is below 2."""
    total = sum((_digit(value, i + 1) * w for i, w in enumerate(weights[1:], start=1)), _digit(value, 1) * weights[0])
    rest = q.modulo(total, q.num(11))
    return sa.case((rest < 2, q.num(0)), else_=q.num(11) - rest)


def valid_cpf(value) -> sa.ColumnElement:
    """11 digits, not all equal, both mod-11 check digits right."""
    return sa.and_(
        q.full_match(value, "[0-9]{11}", "[0-9]" * 11),
        value != q.repeat_text(q.substr(value, q.num(1), q.num(1)), q.num(11)),
        _check_digit(value, CPF_WEIGHTS[0]) == _digit(value, 10),
        _check_digit(value, CPF_WEIGHTS[1]) == _digit(value, 11),
    )


def valid_cnpj(value) -> sa.ColumnElement:
    """12 characters of [0-9A-Z] (alphanumeric from July 2026) then two mod-11 check digits; not all zeros."""
    return sa.and_(
        q.full_match(value, "[0-9A-Z]{12}[0-9]{2}", "[0-9A-Z]" * 12 + "[0-9]" * 2),
        value != q.text_literal("0" * 14),
        _check_digit(value, CNPJ_WEIGHTS[0]) == _digit(value, 13),
        _check_digit(value, CNPJ_WEIGHTS[1]) == _digit(value, 14),
    )


def _documents(side: Side, catalog: Catalog) -> sa.Select:
    c = T(side, catalog["Cliente"], "c")
    doc, tipo = c["CpfCnpj"], c["TipoPessoa"]
    return sa.select(
        *c.keys(),
        *_flags(
            [
                sa.or_(
                    sa.and_(tipo == q.text_literal("F"), valid_cpf(doc)),
                    sa.and_(tipo == q.text_literal("J"), valid_cnpj(doc)),
                ),
            ]
        ),
    ).select_from(c.clause)


def _cep(side: Side, catalog: Catalog) -> sa.Select:
    c, uf = T(side, catalog["Cliente"], "c"), T(side, catalog["UnidadeFederativa"], "u")
    cep = c["Cep"]
    return sa.select(
        *c.keys(),
        *_flags(
            [
                sa.and_(q.full_match(cep, "[0-9]{8}", "[0-9]" * 8), cep >= uf["CepInicial"], cep <= uf["CepFinal"]),
            ]
        ),
    ).select_from(c.clause.outerjoin(uf.clause, uf["Uf"] == c["Uf"]))


def _telefone(side: Side, catalog: Catalog) -> sa.Select:
    c = T(side, catalog["Cliente"], "c")
    tel = c["Telefone"]
    return sa.select(
        *c.keys(),
        *_flags(
            [
                sa.or_(tel.is_(None), q.full_match(tel, TELEFONE_REGEX, *_TELEFONE_LIKE)),
            ]
        ),
    ).select_from(c.clause)


RULES: tuple[Rule, ...] = (
    Rule(
        "rule_instalments",
        "Simulacao",
        "instalment formulas to the centavo",
        (
            "ParcelaIntegral = B + S_1",
            "ParcelaReduzida = R(B * (1 - RED)) + S_1, NULL without PctReducao",
            "PrimeiraParcela = ParcelaIntegral + R(C * ANT)",
            "ValorTotalPlano = C + R(C * (TA - ANT)) + R(C * FR) + R(C * ANT) + sum(S_k)",
            "PctFundoComumMes = round(100 / N, 6)",
        ),
        _instalments,
    ),
    Rule(
        "rule_simulation_plan",
        "Simulacao",
        "simulation consistent with its plan and group",
        (
            "PrazoMeses and percentages equal the plan's",
            "CreditoMinimo <= ValorCredito <= CreditoMaximo",
            "GrupoId, when set, is a group of the same plan",
        ),
        _simulation_plan,
    ),
    Rule(
        "rule_dates",
        "Simulacao",
        "date ordering",
        ("ValidaAte >= local date of CriadaEm", "AtualizadaEm (UTC) >= CriadaEm"),
        _dates,
    ),
    Rule(
        "rule_schedule_values",
        "SimulacaoParcela",
        "instalment schedule values to the centavo",
        (
            "1 <= NumeroParcela <= N",
            "ValorFundoComum = R(C / N), month N takes the residual",
            "ValorTaxaAdm = R(C * (TA - ANT) / N), month N takes the residual",
            "ValorFundoReserva = R(C * FR / N), month N takes the residual",
            "ValorAntecipacao = R(C * ANT) in month 1, else 0",
            "ValorSeguro = S_k",
            "ValorTotal = sum of the five components",
            "PctAmortizadoAcumulado = round(100 * k / N, 6)",
            "Vencimento = month 1's + (k - 1) months",
        ),
        _schedule_values,
    ),
    Rule(
        "rule_schedule_totals",
        "SimulacaoParcela",
        "schedule complete and summing to ValorTotalPlano",
        ("exactly N instalments numbered 1..N", "sum(ValorTotal) = ValorTotalPlano"),
        _schedule_totals,
        key=("SimulacaoId",),
    ),
    Rule(
        "rule_bids",
        "SimulacaoLance",
        "bid rules",
        (
            "ValorProprio + ValorEmbutido = R(C * PctLance / 100)",
            "ValorEmbutido <= R(C * PctEmbutidoMax / 100)",
            "CreditoLiquido = C - ValorEmbutido",
            "1 <= MesContemplacao <= N",
            "L: ValorEmbutido = 0; E: ValorEmbutido > 0; F: PctLance = the plan's PctLanceFixo",
        ),
        _bids,
    ),
    Rule(
        "rule_plan_ranges",
        "PlanoComercial",
        "plan ranges",
        (
            "PrazoMinimo <= PrazoMeses <= PrazoMaximo of the segment",
            "0 < PctTaxaAdm <= 30",
            "0 <= PctFundoReserva <= 5",
            "PctAntecipacao <= PctTaxaAdm",
        ),
        _plan_ranges,
    ),
    Rule(
        "rule_documents",
        "Cliente",
        "CPF/CNPJ check digits",
        ("TipoPessoa F has a valid CPF, J a valid (alphanumeric) CNPJ",),
        _documents,
    ),
    Rule("rule_cep", "Cliente", "CEP within its UF's range", ("Cep is 8 digits within CepInicial..CepFinal",), _cep),
    Rule("rule_telefone", "Cliente", "phone format", (f"Telefone matches ^{TELEFONE_REGEX}$",), _telefone),
)


def rule_queries(rule: Rule, side: Side, catalog: Catalog) -> tuple[sa.Select, sa.Select]:
    """(rows per combination of broken parts, keys of the offending rows)."""
    sub = rule.query(side, catalog).subquery("regra")
    flags = [sub.c[f"v{i}"] for i in range(len(rule.parts))]
    n_keys = len(rule.key or catalog[rule.table].primary_key)
    offenders = sa.select(*(sub.c[k] for k in key_labels(n_keys))).where(sum(flags[1:], flags[0]) > 0)
    # rows per combination of broken parts, as a bit mask: each flag is evaluated once per row (PostgreSQL
    # inlines a flag wherever the outer query names it: in its sum and again in "any part broken"), and
    # without a fence the flags may still be computed in parallel workers
    mask = sum((flag * q.num(1 << i) for i, flag in enumerate(flags[1:], start=1)), flags[0]).label("broken")
    return sa.select(mask, sa.func.count()).group_by(mask), offenders


def evaluate(rule: Rule, side: Side, catalog: Catalog, stage: str = AURORA) -> Outcome:
    """Count the rows breaking each part of the rule and list the first offending keys."""
    table = catalog[rule.table]
    key_names = list(rule.key or table.primary_key)
    by_mask, offenders = rule_queries(rule, side, catalog)
    with side.engine.connect() as conn:  # one pass for every count; the listing only when something broke
        rows = conn.execute(by_mask).all()
        totals = [sum(n for broken, n in rows if broken >> i & 1) for i in range(len(rule.parts))]
        violating = sum(n for broken, n in rows if broken)
        found = find(conn, offenders, table, key_names, count=violating)
    counts = {"violating_rows": found.count}
    counts.update({f"part_{i + 1}_violations": int(n) for i, n in enumerate(totals)})
    if not found.count:
        return Outcome(
            stage,
            table,
            rule.check,
            True,
            f"{rule.summary}: all rows obey",
            counts=counts,
            details={"parts": list(rule.parts)},
        )
    broken = "; ".join(f"{part} ({int(n):,} rows)" for part, n in zip(rule.parts, totals) if n)
    return Outcome(
        stage,
        table,
        rule.check,
        False,
        f"{rule.summary}: {found.count:,} rows break it — {broken}",
        counts=counts,
        keys=found.keys,
        sql=found.sql,
        details={"parts": list(rule.parts)},
    )
