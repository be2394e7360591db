"""Keys and CHECK constraints in Aurora are proven by queries that name the offending rows."""

from consorcio_assets.checks import constraints


def test_all_constraints_hold_on_faithful_data(target_side, cat):
    for table in cat:
        assert constraints.primary_key(target_side, table).passed
        assert constraints.foreign_keys(target_side, table, cat).passed
        assert constraints.unique_keys(target_side, table).passed
        assert constraints.check_constraints(target_side, table).passed


def test_validated_constraints_are_trusted_and_missing_or_not_valid_ones_scanned(target_side, cat, corrupt):
    assert "enforced by constraint pk_simulacao" in constraints.primary_key(target_side, cat["Simulacao"]).summary
    assert (
        "(3 enforced by validated constraints, 0 checked row by row)"
        in constraints.foreign_keys(target_side, cat["Simulacao"], cat).summary
    )
    corrupt(
        "ALTER TABLE consorcio.simulacao DROP CONSTRAINT pk_simulacao CASCADE",
        "ALTER TABLE consorcio.simulacao DROP CONSTRAINT fk_simulacao_grupo",
        "ALTER TABLE consorcio.simulacao ADD CONSTRAINT fk_simulacao_grupo FOREIGN KEY (grupo_id) "
        "REFERENCES consorcio.grupo (grupo_id) NOT VALID",
    )
    pk = constraints.primary_key(target_side, cat["Simulacao"])
    assert pk.passed and "every row checked" in pk.summary
    fks = constraints.foreign_keys(target_side, cat["Simulacao"], cat)
    assert fks.passed and "(2 enforced by validated constraints, 1 checked row by row)" in fks.summary


def test_duplicate_primary_key(target_side, cat, corrupt):
    corrupt(
        "ALTER TABLE consorcio.simulacao_parcela DROP CONSTRAINT pk_simulacao_parcela",
        "INSERT INTO consorcio.simulacao_parcela SELECT * FROM consorcio.simulacao_parcela "
        "ORDER BY simulacao_id, numero_parcela LIMIT 1",
    )
    outcome = constraints.primary_key(target_side, cat["SimulacaoParcela"])
    assert not outcome.passed and outcome.counts["duplicate_key_rows"] == 2
    assert len(set(outcome.keys)) == 1 and outcome.keys[0].startswith("SimulacaoId=")


def test_orphan_foreign_key(target_side, cat, corrupt, fetch):
    (lance,) = fetch("SELECT lance_id FROM consorcio.simulacao_lance ORDER BY 1 OFFSET 7")
    corrupt(
        "ALTER TABLE consorcio.simulacao_lance DROP CONSTRAINT fk_lance_simulacao",
        f"UPDATE consorcio.simulacao_lance SET simulacao_id = 999999999 WHERE lance_id = {lance}",
    )
    outcome = constraints.foreign_keys(target_side, cat["SimulacaoLance"], cat)
    assert not outcome.passed and outcome.counts["fk_lance_simulacao_rows"] == 1
    assert outcome.keys == [f"LanceId={lance} (fk_lance_simulacao)"]
    assert "LEFT OUTER JOIN consorcio.simulacao" in outcome.sql


def test_duplicate_unique_key_and_broken_check(target_side, cat, corrupt):
    corrupt(
        "ALTER TABLE consorcio.grupo DROP CONSTRAINT uq_grupo_codigo",
        "DROP INDEX IF EXISTS consorcio.uq_grupo_codigo_ci_ai",  # the local stand-in of the CI_AI key
        "ALTER TABLE consorcio.grupo DROP CONSTRAINT ck_grupo_situacao",
        "UPDATE consorcio.grupo SET codigo_grupo = (SELECT codigo_grupo FROM consorcio.grupo WHERE grupo_id = 1) "
        "WHERE grupo_id = 2",
        "UPDATE consorcio.grupo SET situacao = 'Z' WHERE grupo_id = 3",
    )
    unique = constraints.unique_keys(target_side, cat["Grupo"])
    assert unique.keys == ["GrupoId=1 (uq_grupo_codigo)", "GrupoId=2 (uq_grupo_codigo)"]
    check = constraints.check_constraints(target_side, cat["Grupo"])
    assert check.keys == ["GrupoId=3 (ck_grupo_situacao)"] and check.counts["ck_grupo_situacao_rows"] == 1
    assert "NOT (situacao IN ('F', 'A', 'E'))" in check.sql
