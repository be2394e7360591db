"""hashdiff finds exactly the corrupted rows, names their keys and columns, and stays silent otherwise."""

import hashlib

import duckdb
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consorcio_assets.checks import hashdiff
from consorcio_assets.checks import sql as q
from consorcio_assets.checks.sides import SOURCE, TARGET, Side


def test_faithful_migration_passes_for_every_table_and_view(source_side, target_side, cat):
    for table in cat:
        outcome = hashdiff.reconcile(source_side, target_side, table)
        assert outcome.passed, (table.name, outcome.summary)
        assert outcome.counts["source_rows"] == outcome.counts["target_rows"] > 0


def test_one_deleted_row_is_named(source_side, target_side, cat, corrupt, fetch):
    sim, num = fetch("SELECT simulacao_id, numero_parcela FROM consorcio.simulacao_parcela ORDER BY 1, 2 OFFSET 900")
    corrupt(f"DELETE FROM consorcio.simulacao_parcela WHERE simulacao_id = {sim} AND numero_parcela = {num}")
    outcome = hashdiff.reconcile(source_side, target_side, cat["SimulacaoParcela"])
    assert not outcome.passed
    assert outcome.counts["rows_missing_in_target"] == 1 and outcome.counts["rows_different"] == 0
    assert outcome.keys == [f"SimulacaoId={sim}, NumeroParcela={num} (missing in target)"]
    assert f"simulacao_id AS TEXT) = '{sim}'" in outcome.sql


def test_one_changed_centavo_is_named_with_its_column(source_side, target_side, cat, corrupt, fetch):
    sim, num = fetch("SELECT simulacao_id, numero_parcela FROM consorcio.simulacao_parcela ORDER BY 1, 2 OFFSET 17")
    corrupt(
        f"UPDATE consorcio.simulacao_parcela SET valor_seguro = valor_seguro + 0.01 "
        f"WHERE simulacao_id = {sim} AND numero_parcela = {num}"
    )
    outcome = hashdiff.reconcile(source_side, target_side, cat["SimulacaoParcela"])
    assert outcome.counts["rows_different"] == 1
    assert outcome.details["column_mismatches"] == {"ValorSeguro": 1}
    assert outcome.keys == [f"SimulacaoId={sim}, NumeroParcela={num} (differs)"]
    assert "simulacao_parcela" in outcome.table.qualified_target


def test_timestamp_shifted_by_one_microsecond(source_side, target_side, cat, corrupt, fetch):
    (sim,) = fetch("SELECT simulacao_id FROM consorcio.simulacao ORDER BY 1 OFFSET 41")
    corrupt(
        f"UPDATE consorcio.simulacao SET criada_em = criada_em + interval '1 microsecond' WHERE simulacao_id = {sim}"
    )
    outcome = hashdiff.reconcile(source_side, target_side, cat["Simulacao"])
    assert outcome.keys == [f"SimulacaoId={sim} (differs)"]
    assert outcome.details["column_mismatches"] == {"CriadaEm": 1}


def test_changed_offset_is_a_difference_even_at_the_same_instant(source_side, target_side, cat, corrupt, fetch):
    (sim,) = fetch("SELECT simulacao_id FROM consorcio.simulacao ORDER BY 1 OFFSET 3")
    corrupt(
        f"UPDATE consorcio.simulacao SET criada_em_offset_minutes = criada_em_offset_minutes + 60 "
        f"WHERE simulacao_id = {sim}"
    )
    outcome = hashdiff.reconcile(source_side, target_side, cat["Simulacao"])
    assert outcome.details["column_mismatches"] == {"criada_em_offset_minutes": 1}


def test_changed_guid_and_null_where_a_value_was(source_side, target_side, cat, corrupt, fetch):
    (sim,) = fetch("SELECT simulacao_id FROM consorcio.simulacao ORDER BY 1 OFFSET 250")
    (other,) = fetch("SELECT simulacao_id FROM consorcio.simulacao WHERE observacao IS NOT NULL ORDER BY 1 DESC")
    corrupt(
        f"UPDATE consorcio.simulacao SET simulacao_guid = gen_random_uuid() WHERE simulacao_id = {sim}",
        f"UPDATE consorcio.simulacao SET observacao = NULL WHERE simulacao_id = {other}",
    )
    outcome = hashdiff.reconcile(source_side, target_side, cat["Simulacao"])
    assert outcome.details["column_mismatches"] == {"SimulacaoGuid": 1, "Observacao": 1}
    assert sorted(outcome.keys) == sorted([f"SimulacaoId={sim} (differs)", f"SimulacaoId={other} (differs)"])


def test_uuid_key_table_changed_key_is_one_missing_and_one_extra(source_side, target_side, cat, corrupt, fetch):
    (cliente,) = fetch("SELECT cliente_id FROM consorcio.cliente ORDER BY 1 OFFSET 10")
    corrupt(
        "ALTER TABLE consorcio.simulacao DROP CONSTRAINT fk_simulacao_cliente",
        f"UPDATE consorcio.cliente SET cliente_id = '00000000-0000-4000-8000-000000000001' "
        f"WHERE cliente_id = '{cliente}'",
    )
    outcome = hashdiff.reconcile(source_side, target_side, cat["Cliente"])
    assert sorted(outcome.keys) == sorted(
        [f"ClienteId={cliente} (missing in target)", "ClienteId=00000000-0000-4000-8000-000000000001 (extra in target)"]
    )


def test_char_key_table_untrimmed_value_differs(source_side, target_side, cat, corrupt):
    corrupt("UPDATE consorcio.unidade_federativa SET nome = nome || ' ' WHERE uf = 'SP'")
    outcome = hashdiff.reconcile(source_side, target_side, cat["UnidadeFederativa"])
    assert outcome.keys == ["Uf=SP (differs)"] and outcome.details["column_mismatches"] == {"Nome": 1}


def test_composite_text_key_and_view_snapshot(source_side, target_side, cat, corrupt, fetch):
    indice, competencia = fetch("SELECT indice, competencia FROM consorcio.indice_correcao ORDER BY 1, 2 OFFSET 99")
    (mes, segmento, uf) = fetch(
        "SELECT mes, segmento, uf FROM consorcio_snapshot.vw_funil_mensal ORDER BY 1, 2, 3 OFFSET 5"
    )
    corrupt(
        f"UPDATE consorcio.indice_correcao SET pct_mes = pct_mes + 0.000001 "
        f"WHERE indice = '{indice}' AND competencia = '{competencia}'",
        f"DELETE FROM consorcio_snapshot.vw_funil_mensal WHERE mes = '{mes}' AND segmento = '{segmento}' AND uf = '{uf}'",
    )
    assert hashdiff.reconcile(source_side, target_side, cat["IndiceCorrecao"]).keys == [
        f"Indice={indice}, Competencia={competencia} (differs)"
    ]
    assert hashdiff.reconcile(source_side, target_side, cat["vw_FunilMensal"]).keys == [
        f"Mes={mes}, Segmento={segmento}, Uf={uf} (missing in target)"
    ]


def test_report_caps_keys_and_stops_descending_when_everything_differs(source_side, target_side, cat, corrupt):
    corrupt("UPDATE consorcio.simulacao_parcela SET valor_total = valor_total + 0.01")
    outcome = hashdiff.reconcile(source_side, target_side, cat["SimulacaoParcela"], max_rows=500, leaf_rows=100)
    assert not outcome.passed and len(outcome.keys) == 20
    assert 500 <= outcome.counts["rows_different"] < 1785 and outcome.details["exhaustive"] is False
    assert outcome.summary.startswith("at least")


@pytest.fixture(scope="module")
def large_pair(pg_server_url, tmp_path_factory):
    """200,000 SimulacaoParcela-like rows in DuckDB and PostgreSQL (same data, built inside each database)."""
    import uuid

    import psycopg

    from consorcio_assets.catalog import catalog

    table = catalog()["SimulacaoParcela"]
    rows = (
        "SELECT i // 100 + 1 AS sim, i % 100 + 1 AS num, "
        "DATE '2024-01-01' + CAST((i % 100) * 30 AS INTEGER) AS venc, (i % 9973) * 1.01 AS v "
        "FROM range(200000) t(i)"
    )
    path = tmp_path_factory.mktemp("large") / "src.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA dbo")
        cols = ", ".join(f'"{c.name}" {c.duckdb_type}' for c in table.columns)
        con.execute(f'CREATE TABLE dbo."SimulacaoParcela" ({cols})')
        con.execute(
            f'INSERT INTO dbo."SimulacaoParcela" SELECT sim, num, venc, v, v, v, v, v, v * 5, num FROM ({rows})'
        )
    name = f"large_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_server_url.replace("/postgres?", f"/{name}?")
    with psycopg.connect(url, autocommit=True) as conn:
        cols = ", ".join(f"{c.target_name} {c.postgres_type}" for c in table.columns)
        conn.execute(
            f"CREATE SCHEMA consorcio; CREATE TABLE {table.qualified_target} ({cols}, "
            "PRIMARY KEY (simulacao_id, numero_parcela))"
        )
        conn.execute(
            f"INSERT INTO {table.qualified_target} SELECT i / 100 + 1, i % 100 + 1, "
            "DATE '2024-01-01' + (i % 100) * 30, (i % 9973) * 1.01, (i % 9973) * 1.01, (i % 9973) * 1.01, "
            "(i % 9973) * 1.01, (i % 9973) * 1.01, (i % 9973) * 1.01 * 5, i % 100 + 1 "
            "FROM generate_series(0, 199999) i"
        )
    source = sa.create_engine(f"duckdb:///{path}", connect_args={"read_only": True}, poolclass=sa.NullPool)
    target = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.NullPool)
    yield Side(SOURCE, source), Side(TARGET, target), url, table
    target.dispose()
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_one_centavo_in_a_large_table_costs_two_small_range_scans(large_pair):
    import psycopg

    source, target, url, table = large_pair
    clean = hashdiff.reconcile(source, target, table)
    assert clean.passed and clean.counts["rows_fetched"] == 0 and clean.details["queries"] == 4
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"UPDATE {table.qualified_target} SET valor_taxa_adm = valor_taxa_adm - 0.01 "
            "WHERE simulacao_id = 1234 AND numero_parcela = 56"
        )
    try:
        outcome = hashdiff.reconcile(source, target, table)
        assert outcome.keys == ["SimulacaoId=1234, NumeroParcela=56 (differs)"]
        assert outcome.details["column_mismatches"] == {"ValorTaxaAdm": 1}
        # bounds + 2 levels of segments + 1 leaf, each on both sides; a leaf holds at most ~1,000 rows per side
        assert outcome.details["queries"] <= 8 and outcome.counts["rows_fetched"] <= 2 * 1000
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                f"UPDATE {table.qualified_target} SET valor_taxa_adm = valor_taxa_adm + 0.01 "
                "WHERE simulacao_id = 1234 AND numero_parcela = 56"
            )


def test_non_ascii_text_is_compared_by_value_against_aurora(small_source, tmp_path, target_side, cat, corrupt):
    """As when the source is SQL Server 2017 (which hashes text in its code page): rows with emoji leave the
    checksums and are compared by value at the leaves; equal values pass, a changed emoji is named by key."""
    import shutil

    path = tmp_path / "emoji.duckdb"
    shutil.copy(small_source, path)
    with duckdb.connect(str(path)) as con:
        con.execute("""UPDATE dbo."Simulacao" SET "Observacao" = 'cliente 😀 quer ' || "SimulacaoId" || '🎉'
                       WHERE "SimulacaoId" % 7 = 0""")
        (non_ascii,) = con.execute("""SELECT count(*) FROM dbo."Simulacao" WHERE strlen("Observacao") <>
            length("Observacao") OR strlen("Situacao") <> length("Situacao")""").fetchone()
    corrupt(
        "UPDATE consorcio.simulacao SET observacao = 'cliente 😀 quer ' || simulacao_id || '🎉' "
        "WHERE simulacao_id % 7 = 0"
    )
    source = Side(
        SOURCE, sa.create_engine(f"duckdb:///{path}", connect_args={"read_only": True}, poolclass=sa.NullPool)
    )
    outcome = hashdiff.reconcile(source, target_side, cat["Simulacao"], by_value=True, leaf_rows=50)
    assert outcome.passed, outcome.summary
    assert outcome.counts["rows_compared_by_value"] == non_ascii > 0
    corrupt("UPDATE consorcio.simulacao SET observacao = replace(observacao, '😀', '😁') WHERE simulacao_id = 14")
    outcome = hashdiff.reconcile(source, target_side, cat["Simulacao"], by_value=True, leaf_rows=50)
    assert outcome.keys == ["SimulacaoId=14 (differs)"]
    assert outcome.details["column_mismatches"] == {"Observacao": 1}


DUCKDB = sa.create_engine("duckdb:///:memory:")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=60))
def test_hash60_is_the_md5_prefix_in_postgresql_and_duckdb(target_side, text):
    """The documented hash, 60 bits after the digest's first hex digit, computed the same by both databases (the
    target fixture is only read)."""
    expected = int(hashlib.md5(text.encode()).hexdigest()[1:16], 16)
    query = sa.select(q.hash60(sa.literal(text, sa.String())))
    for engine in (target_side.engine, DUCKDB):
        with engine.connect() as conn:
            assert conn.execute(query).scalar_one() == expected, engine.dialect.name
