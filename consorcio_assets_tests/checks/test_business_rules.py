"""The business rules, written once, hold on the source and on Aurora, and name the rows that break them."""

from decimal import Decimal

import psycopg
import pytest

from consorcio_assets.checks import business_rules as br
from consorcio_assets.common.stages import SQLSERVER
from consorcio_assets.rules import formulas as f


def _rule(name):
    return next(r for r in br.RULES if r.check == name)


def test_every_rule_holds_on_the_source_stand_in_and_on_aurora(source_side, target_side, cat):
    for side, stage in ((source_side, SQLSERVER), (target_side, "aurora")):
        for rule in br.RULES:
            outcome = br.evaluate(rule, side, cat, stage=stage)
            assert outcome.passed, (side, rule.check, outcome.summary, outcome.keys)


def test_wrong_instalment_breaks_formula_and_schedule(target_side, cat, corrupt, fetch):
    sim, num = fetch("SELECT simulacao_id, numero_parcela FROM consorcio.simulacao_parcela ORDER BY 1, 2 OFFSET 30")
    corrupt(
        f"UPDATE consorcio.simulacao_parcela SET valor_fundo_comum = valor_fundo_comum + 0.01, "
        f"valor_total = valor_total + 0.01 WHERE simulacao_id = {sim} AND numero_parcela = {num}"
    )
    values = br.evaluate(_rule("rule_schedule_values"), target_side, cat)
    assert values.keys == [f"SimulacaoId={sim}, NumeroParcela={num}"]
    assert values.counts["part_2_violations"] == 1 and values.counts["violating_rows"] == 1
    assert "ValorFundoComum = R(C / N)" in values.summary
    totals = br.evaluate(_rule("rule_schedule_totals"), target_side, cat)
    assert totals.keys == [f"SimulacaoId={sim}"] and totals.counts["part_2_violations"] == 1


@pytest.mark.parametrize(
    ("change", "part"),
    [
        ("valor_seguro = valor_seguro + 0.01, valor_total = valor_total + 0.01", 6),
        ("pct_amortizado_acumulado = pct_amortizado_acumulado - 0.000001", 8),
    ],
)
def test_an_instalment_off_by_its_smallest_unit_breaks_that_part_alone(target_side, cat, corrupt, fetch, change, part):
    """Insurance and the amortised percentage are compared scaled up to integers: one unit off still counts."""
    sim, num = fetch(
        "SELECT simulacao_id, numero_parcela FROM consorcio.simulacao_parcela WHERE numero_parcela > 1 "
        "AND valor_seguro > 0 ORDER BY 1, 2 OFFSET 7"
    )
    corrupt(f"UPDATE consorcio.simulacao_parcela SET {change} WHERE simulacao_id = {sim} AND numero_parcela = {num}")
    outcome = br.evaluate(_rule("rule_schedule_values"), target_side, cat)
    assert outcome.keys == [f"SimulacaoId={sim}, NumeroParcela={num}"]
    broken = {i for i in range(1, 10) if outcome.counts[f"part_{i}_violations"]}
    assert broken == {part} and outcome.counts["violating_rows"] == 1


def test_wrong_simulation_instalment_by_one_centavo(target_side, cat, corrupt, fetch):
    (sim,) = fetch("SELECT simulacao_id FROM consorcio.simulacao WHERE parcela_reduzida IS NOT NULL ORDER BY 1")
    corrupt(f"UPDATE consorcio.simulacao SET parcela_reduzida = parcela_reduzida - 0.01 WHERE simulacao_id = {sim}")
    outcome = br.evaluate(_rule("rule_instalments"), target_side, cat)
    assert outcome.keys == [f"SimulacaoId={sim}"] and outcome.counts["part_2_violations"] == 1


def test_missing_instalment_makes_the_schedule_incomplete(target_side, cat, corrupt, fetch):
    (sim,) = fetch("SELECT simulacao_id FROM consorcio.simulacao_parcela ORDER BY 1 DESC")
    corrupt(f"DELETE FROM consorcio.simulacao_parcela WHERE simulacao_id = {sim} AND numero_parcela = 2")
    outcome = br.evaluate(_rule("rule_schedule_totals"), target_side, cat)
    assert outcome.keys == [f"SimulacaoId={sim}"]
    assert outcome.counts["part_1_violations"] == 1 and outcome.counts["part_2_violations"] == 1


def test_instalments_without_their_first_break_every_schedule_value(target_side, cat, corrupt, fetch):
    """No instalment 1, no terms (Vencimento is counted from it): the rest of the schedule is still checked."""
    sim, n = fetch("SELECT simulacao_id, count(*) FROM consorcio.simulacao_parcela GROUP BY 1 ORDER BY 1 OFFSET 3")
    corrupt(f"DELETE FROM consorcio.simulacao_parcela WHERE simulacao_id = {sim} AND numero_parcela = 1")
    outcome = br.evaluate(_rule("rule_schedule_values"), target_side, cat)
    assert outcome.counts["violating_rows"] == n - 1 and outcome.counts["part_9_violations"] == n - 1
    assert outcome.keys[0] == f"SimulacaoId={sim}, NumeroParcela=2"


def test_invalid_cpf_is_named_by_key_only(target_side, cat, corrupt, fetch):
    cliente, cpf = fetch("SELECT cliente_id, cpf_cnpj FROM consorcio.cliente WHERE tipo_pessoa = 'F' ORDER BY 1")
    wrong = cpf[:10] + str((int(cpf[10]) + 1) % 10)
    corrupt(f"UPDATE consorcio.cliente SET cpf_cnpj = '{wrong}' WHERE cliente_id = '{cliente}'")
    outcome = br.evaluate(_rule("rule_documents"), target_side, cat)
    assert outcome.keys == [f"ClienteId={cliente}"]
    assert cpf not in repr(outcome) and wrong not in repr(outcome)


def test_cep_phone_bid_and_dates(target_side, cat, corrupt, fetch):
    (cliente,) = fetch("SELECT cliente_id FROM consorcio.cliente WHERE uf = 'SP' ORDER BY 1")
    (outro,) = fetch("SELECT cliente_id FROM consorcio.cliente WHERE telefone IS NOT NULL ORDER BY 1 DESC")
    (lance,) = fetch("SELECT lance_id FROM consorcio.simulacao_lance WHERE tipo_lance = 'L' ORDER BY 1")
    (sim,) = fetch("SELECT simulacao_id FROM consorcio.simulacao ORDER BY 1 OFFSET 12")
    corrupt(
        f"UPDATE consorcio.cliente SET cep = '99999999' WHERE cliente_id = '{cliente}'",
        f"UPDATE consorcio.cliente SET telefone = '5501912345678' WHERE cliente_id = '{outro}'",
        f"UPDATE consorcio.simulacao_lance SET valor_embutido = valor_embutido + 1, "
        f"valor_proprio = valor_proprio - 1 WHERE lance_id = {lance}",
        f"UPDATE consorcio.simulacao SET valida_ate = (criada_em AT TIME ZONE 'UTC')::date - 2 "
        f"WHERE simulacao_id = {sim}",
    )
    assert br.evaluate(_rule("rule_cep"), target_side, cat).keys == [f"ClienteId={cliente}"]
    assert br.evaluate(_rule("rule_telefone"), target_side, cat).keys == [f"ClienteId={outro}"]
    bids = br.evaluate(_rule("rule_bids"), target_side, cat)
    assert bids.keys == [f"LanceId={lance}"]
    assert [bids.counts[f"part_{i}_violations"] for i in (1, 3, 5)] == [0, 1, 1]
    dates = br.evaluate(_rule("rule_dates"), target_side, cat)
    assert dates.keys == [f"SimulacaoId={sim}"] and dates.counts["part_1_violations"] == 1


def test_plan_ranges_and_simulation_plan_consistency(target_side, cat, corrupt, fetch):
    (plano,) = fetch("SELECT plano_id FROM consorcio.plano_comercial ORDER BY 1 OFFSET 3")
    (sim,) = fetch("SELECT simulacao_id FROM consorcio.simulacao WHERE grupo_id IS NOT NULL ORDER BY 1")
    (grupo,) = fetch(
        f"SELECT grupo_id FROM consorcio.grupo WHERE plano_id <> "
        f"(SELECT plano_id FROM consorcio.simulacao WHERE simulacao_id = {sim}) ORDER BY 1"
    )
    corrupt(
        f"UPDATE consorcio.plano_comercial SET prazo_meses = 9999 WHERE plano_id = {plano}",
        f"UPDATE consorcio.simulacao SET grupo_id = {grupo} WHERE simulacao_id = {sim}",
    )
    assert br.evaluate(_rule("rule_plan_ranges"), target_side, cat).keys == [f"PlanoId={plano}"]
    consistency = br.evaluate(_rule("rule_simulation_plan"), target_side, cat)
    assert f"SimulacaoId={sim}" in consistency.keys and consistency.counts["part_3_violations"] == 1


@pytest.mark.parametrize("dialect_side", ["source_side", "target_side"])
def test_document_sql_agrees_with_the_python_validators(dialect_side, request, cat):
    """The CPF/CNPJ SQL against rules.documents on valid, mutated and alphanumeric documents."""
    import numpy as np
    import sqlalchemy as sa

    from consorcio_assets.rules import documents

    side = request.getfixturevalue(dialect_side)
    rng = np.random.default_rng(5)
    cpfs = [bytes(r).decode() for r in documents.gerar_cpfs(rng.integers(10**8, 10**9 - 1, 40))]
    bases = rng.choice(np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", np.uint8), (40, 12))
    cnpjs = [bytes(r).decode() for r in documents.gerar_cnpjs(bases)]
    samples = cpfs + cnpjs + [s[:-1] + str((int(s[-1]) + 3) % 10) for s in cpfs[:10] + cnpjs[:10]]
    samples += ["11111111111", "00000000000000", "1234567890", "12ABC34501DE3X", "abcdefghijklmn"]
    values = sa.values(sa.column("d", sa.String()), name="docs").data([(s,) for s in samples])
    query = sa.select(
        values.c.d, sa.case((br.valid_cpf(values.c.d), 1), else_=0), sa.case((br.valid_cnpj(values.c.d), 1), else_=0)
    )
    with side.engine.connect() as conn:
        got = {d: (bool(cpf), bool(cnpj)) for d, cpf, cnpj in conn.execute(query)}
    assert got == {s: (documents.is_valid_cpf(s), documents.is_valid_cnpj(s)) for s in samples}
    assert any(not c[:12].isdigit() for c in cnpjs) and any(got[s][1] for s in cnpjs)


# (ValorCredito, PrazoMeses, PctTaxaAdm, PctFundoReserva, PctAntecipacao, PctSeguroMes, PctReducao): long and
# short plans, huge amounts, the BIGINT floor sum's bound (300 months) and the NUMERIC path beyond it
EXTREME_TERMS = [
    ("2521700.00", 240, "13.6700", "1.5000", "0.5000", "0.089387", "30.00"),
    ("9999999999.99", 300, "29.9999", "5.0000", "1.0000", "0.999999", None),
    ("1000.01", 1, "0.0001", "0.0000", "0.0000", "0.000001", "50.00"),
    ("123456.78", 299, "17.1234", "2.3456", "0.1234", "0.012345", None),
    ("7777777.77", 301, "20.0000", "3.0000", "2.0000", "0.500000", "25.00"),
    ("31415926.53", 420, "11.1111", "4.4444", "0.0000", "0.271828", None),
]


def test_instalment_formulas_hold_for_extreme_terms(target_side, cat, corrupt, migrated):
    """The insurance series (BIGINT floor sum, and its NUMERIC month-by-month fallback) against rules.formulas."""
    with psycopg.connect(migrated) as conn:
        sims = [
            r[0]
            for r in conn.execute(
                "SELECT s.simulacao_id FROM consorcio.simulacao s JOIN consorcio.plano_comercial p USING (plano_id) "
                f"WHERE s.com_seguro AND p.base_seguro = 'SD' ORDER BY 1 LIMIT {len(EXTREME_TERMS)}"
            )
        ]
    updates = []
    for sim, (credito, prazo, ta, fr, ant, seg, red) in zip(sims, EXTREME_TERMS):
        t = f.Termos(
            Decimal(credito),
            prazo,
            Decimal(ta),
            Decimal(fr),
            Decimal(ant),
            Decimal(seg),
            "SD",
            True,
            Decimal(red) if red else None,
        )
        reduzida = f.parcela_reduzida(t)
        updates.append(
            f"UPDATE consorcio.simulacao SET valor_credito = {credito}, prazo_meses = {prazo}, pct_taxa_adm = {ta}, "
            f"pct_fundo_reserva = {fr}, pct_antecipacao = {ant}, pct_seguro_mes = {seg}, "
            f"pct_reducao = {red or 'NULL'}, parcela_integral = {f.parcela_integral(t)}, "
            f"parcela_reduzida = {reduzida if reduzida is not None else 'NULL'}, "
            f"primeira_parcela = {f.primeira_parcela(t)}, valor_total_plano = {f.valor_total_plano(t)} "
            f"WHERE simulacao_id = {sim}"
        )  # pct_fundo_comum_mes: PostgreSQL recomputes the generated column
    corrupt(*updates)
    assert br.evaluate(_rule("rule_instalments"), target_side, cat).passed
    off = [sims[0], sims[1], sims[4], sims[5]]  # two on the BIGINT path, two on the NUMERIC one
    corrupt(
        f"UPDATE consorcio.simulacao SET valor_total_plano = valor_total_plano + 0.01 "
        f"WHERE simulacao_id IN ({', '.join(map(str, off))})"
    )
    outcome = br.evaluate(_rule("rule_instalments"), target_side, cat)
    assert outcome.keys == [f"SimulacaoId={s}" for s in sorted(off)]
    assert outcome.counts["part_4_violations"] == 4 and outcome.counts["violating_rows"] == 4
