"""View snapshots against their recomputation, Aurora's schema against the catalog, and source drift."""

import shutil

import duckdb
import psycopg
import sqlalchemy as sa

from consorcio_assets.checks import schema, views
from consorcio_assets.checks.outcome import WARN
from consorcio_assets.checks.sides import SOURCE, Side


def test_view_snapshots_equal_their_recomputation(target_side, cat):
    for view in cat.views:
        assert views.reconcile(target_side, view, cat).passed


def test_recomputed_sql_is_postgresql_with_booleans_and_make_date(cat):
    resumo = views.recompute_sql(cat["vw_SimulacaoResumo"], cat)
    funil = views.recompute_sql(cat["vw_FunilMensal"], cat)
    assert "com_seguro = 1" not in resumo and "CASE WHEN s.com_seguro THEN" in resumo
    assert "MAKE_DATE(CAST(EXTRACT(YEAR" in funil and "DATE_FROM_PARTS" not in funil
    assert "criada_em_offset_minutes" in funil


def test_stale_snapshot_row_and_changed_base_table(target_side, cat, corrupt, fetch):
    (sim,) = fetch("SELECT simulacao_id FROM consorcio_snapshot.vw_simulacao_resumo ORDER BY 1 OFFSET 9")
    corrupt(
        f"UPDATE consorcio_snapshot.vw_simulacao_resumo SET parcela_inicial = parcela_inicial + 1 "
        f"WHERE simulacao_id = {sim}",
        "UPDATE consorcio.simulacao SET criada_em = criada_em - interval '400 days' "
        "WHERE simulacao_id = (SELECT min(simulacao_id) FROM consorcio.simulacao)",
    )
    resumo = views.reconcile(target_side, cat["vw_SimulacaoResumo"], cat)
    assert not resumo.passed and f"SimulacaoId={sim} (snapshot)" in resumo.keys
    assert f"SimulacaoId={sim} (live view)" in resumo.keys
    assert resumo.counts == {"snapshot_rows_not_recomputed": 2, "recomputed_rows_not_in_snapshot": 2}
    funil = views.reconcile(target_side, cat["vw_FunilMensal"], cat)
    assert not funil.passed and funil.counts["snapshot_rows_not_recomputed"] >= 1


def test_aurora_schema_matches_the_catalog(target_side, cat):
    for table in cat:
        outcome = schema.aurora_schema(target_side, table, cat)
        assert outcome.passed, (table.name, outcome.summary)


def test_aurora_schema_reports_type_nullability_and_constraint_drift(target_side, cat, corrupt):
    corrupt(
        "ALTER TABLE consorcio.cliente ALTER COLUMN email TYPE varchar(100)",
        "ALTER TABLE consorcio.cliente ALTER COLUMN cep DROP NOT NULL",
        "ALTER TABLE consorcio.cliente DROP CONSTRAINT fk_cliente_uf",
        "ALTER TABLE consorcio.cliente ADD COLUMN extra int",
    )
    outcome = schema.aurora_schema(target_side, cat["Cliente"], cat)
    assert sorted(outcome.details["differences"]) == sorted(
        [
            "column extra not in the catalog",
            "column email is character varying(100), catalog says character varying(254)",
            "column cep is nullable, catalog says NOT NULL",
            "foreign key (uf) -> unidade_federativa (uf) missing",
        ]
    )


def test_aurora_schema_accepts_the_glue_stage_ddl(fresh_db, cat):
    """The physical model the Glue stage creates is what the catalog says (integration with glue.ddl)."""
    from consorcio_assets.target import ddl
    from consorcio_assets.target.postgres import sqlalchemy_url

    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(ddl.schema_script(cat))
    engine = sa.create_engine(sqlalchemy_url(fresh_db), poolclass=sa.NullPool)
    target = Side("target", engine)
    for table in cat:
        outcome = schema.aurora_schema(target, table, cat)
        assert outcome.passed, (table.name, outcome.summary)
    engine.dispose()


def test_source_drift_is_a_warning(small_source, tmp_path, cat):
    path = tmp_path / "drifted.duckdb"
    shutil.copy(small_source, path)
    with duckdb.connect(str(path)) as con:
        con.execute('ALTER TABLE dbo."Cliente" ADD COLUMN "Apelido" VARCHAR')
        con.execute('ALTER TABLE dbo."Segmento" ALTER COLUMN "PrazoMinimo" TYPE INTEGER')
        con.execute('ALTER TABLE dbo."Grupo" DROP COLUMN "DataConstituicao"')
    engine = sa.create_engine(f"duckdb:///{path}", connect_args={"read_only": True}, poolclass=sa.NullPool)
    source = Side(SOURCE, engine)
    assert schema.source_drift(source, cat["Simulacao"]).passed
    cliente = schema.source_drift(source, cat["Cliente"])
    assert cliente.severity == WARN and not cliente.passed
    assert cliente.details["differences"] == ["column Apelido added (VARCHAR)"]
    assert schema.source_drift(source, cat["Grupo"]).details["differences"] == ["column DataConstituicao removed"]
    assert schema.source_drift(source, cat["Segmento"]).details["differences"] == [
        "column PrazoMinimo is INTEGER, catalog says SMALLINT"
    ]
    engine.dispose()
