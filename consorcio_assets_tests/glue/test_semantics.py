"""The application's semantics in Aurora after a load by the Glue job: DEFAULTs, identity after reloads,
the generated column, ROWVERSION as an optimistic lock, the ICU collation rule table, and the checks that
prove them (`identity_continues`, `application_semantics`)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from consorcio_assets.catalog.collations import ci_ai_lookup
from consorcio_assets.checks import application
from consorcio_assets.checks.sides import TARGET, Side
from consorcio_assets.target.postgres import sqlalchemy_url
from consorcio_assets_tests.glue import data
from consorcio_assets_tests.glue.data import CAT
from consorcio_assets_tests.glue.helpers import fetch, ok, run_job, write_raw

BRT = dt.timezone(dt.timedelta(hours=-3))


def clientes(n: int = 2) -> list[dict]:
    return [
        {
            "ClienteId": str(uuid.UUID(int=i)),
            "TipoPessoa": "F",
            "CpfCnpj": "52998224725",
            "Nome": f"Cliente {i}",
            "Email": f"c{i}@example.com",
            "Telefone": None,
            "DataNascimento": None,
            "RendaMensal": None,
            "Cep": "01000000",
            "Uf": "SP",
            "ConsentimentoLgpd": True,
            "CadastradoEm": dt.datetime(2024, 1, i, 9, 0, tzinfo=BRT),
        }
        for i in range(1, n + 1)
    ]


def simulacoes(n: int = 3) -> list[dict]:
    return [
        {
            "SimulacaoId": i,
            "SimulacaoGuid": str(uuid.UUID(int=100 + i)),
            "ClienteId": str(uuid.UUID(int=1)),
            "PlanoId": 1,
            "GrupoId": None,
            "Canal": 1,
            "ValorCredito": Decimal("100000.00"),
            "PrazoMeses": 60 + i,
            "PctTaxaAdm": Decimal("15.0000"),
            "PctFundoReserva": Decimal("2.5000"),
            "PctAntecipacao": Decimal("1.0000"),
            "PctSeguroMes": Decimal("0.035000"),
            "PctReducao": None,
            "ComSeguro": False,
            "ParcelaIntegral": Decimal("1900.00"),
            "ParcelaReduzida": None,
            "PrimeiraParcela": Decimal("2900.00"),
            "ValorTotalPlano": Decimal("116500.00"),
            "Situacao": "S",
            "Observacao": None,
            "CriadaEm": dt.datetime(2024, 2, 1, 10, 0, tzinfo=BRT),
            "AtualizadaEm": dt.datetime(2024, 2, 1, 13, 0),
            "ValidaAte": dt.date(2024, 3, 1),
            "PctFundoComumMes": round(Decimal(100) / (60 + i), 6),
            "VersaoLinha": (5000 + i).to_bytes(8, "big"),
        }
        for i in range(1, n + 1)
    ]


ROWS = {
    "UnidadeFederativa": lambda: data.UFS,
    "Segmento": data.segmentos,
    "Administradora": data.administradoras,
    "PlanoComercial": data.planos,
    "Cliente": clientes,
    "Simulacao": simulacoes,
}


def load(lake: Path, url: str, name: str, rows: list[dict]) -> None:
    target = lake / "raw" / "dbo" / name
    if target.exists():
        for f in target.iterdir():
            f.unlink()
    write_raw(lake, CAT[name], data.table(name, rows))
    ok(run_job(lake, CAT[name], CAT, url, expected_rows=len(rows)))


@pytest.fixture
def loaded(fresh_db, tmp_path) -> str:
    for name, rows in ROWS.items():
        load(tmp_path / "lake", fresh_db, name, rows())
    return fresh_db


def execute(url: str, statement: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


def target(url: str) -> Side:
    return Side(TARGET, sa.create_engine(sqlalchemy_url(url), poolclass=sa.NullPool))


def test_inserts_rely_on_every_default(loaded):
    with psycopg.connect(loaded) as conn:
        ativa, admin_id = conn.execute(
            "INSERT INTO consorcio.administradora (cnpj, razao_social, cadastrada_em) "
            "VALUES ('12345678000199', 'Nova', now()) "
            "RETURNING ativa, administradora_id"
        ).fetchone()
        antecipacao = conn.execute(
            "INSERT INTO consorcio.plano_comercial (administradora_id, segmento_id, nome, prazo_meses, pct_taxa_adm, "
            "pct_fundo_reserva, pct_seguro_mes, base_seguro, pct_embutido_max, credito_minimo, credito_maximo, "
            "vigencia_inicio) VALUES (1, 1, 'P', 60, 10, 1, 0.03, 'CR', 30, 1000, 2000, current_date) "
            "RETURNING pct_antecipacao"
        ).fetchone()[0]
        cliente_id = conn.execute(
            "INSERT INTO consorcio.cliente (tipo_pessoa, cpf_cnpj, nome, cep, uf, consentimento_lgpd, cadastrado_em, "
            "cadastrado_em_offset_minutes) VALUES ('F', '52998224725', 'N', '01000000', 'SP', true, now(), -180) "
            "RETURNING cliente_id"
        ).fetchone()[0]
    assert ativa is True and admin_id == 4  # the identity continues after the 3 loaded rows
    assert antecipacao == Decimal("0")
    assert isinstance(cliente_id, uuid.UUID)
    semantics_check_names_a_missing_default_and_trigger(loaded)


def test_identity_continues_after_reloads_and_partial_reloads(loaded, tmp_path):
    lake = tmp_path / "lake"
    load(lake, loaded, "Administradora", data.administradoras(7))  # a reload with more rows
    assert application.identity_continues(target(loaded), CAT["Administradora"]).passed
    load(lake, loaded, "Simulacao", simulacoes(5))  # a partial reload: one table of the migration
    next_id = fetch(loaded, "SELECT nextval(pg_get_serial_sequence('consorcio.simulacao', 'simulacao_id'))")[0][0]
    assert next_id == 6
    execute(loaded, "SELECT setval(pg_get_serial_sequence('consorcio.administradora', 'administradora_id'), 2)")
    outcome = application.identity_continues(target(loaded), CAT["Administradora"])
    assert not outcome.passed and "administradora_id would next be 3" in outcome.summary
    a_reload_with_higher_rowversions_moves_the_sequence_past_them(loaded, tmp_path)


def test_generated_column_is_computed_by_postgres_and_recomputed_on_update(loaded):
    loaded_values = fetch(loaded, "SELECT prazo_meses, pct_fundo_comum_mes FROM consorcio.simulacao ORDER BY 1")
    assert loaded_values == [(n, round(Decimal(100) / n, 6)) for n in (61, 62, 63)]
    with psycopg.connect(loaded) as conn:
        conn.execute("UPDATE consorcio.simulacao SET prazo_meses = 7 WHERE simulacao_id = 1")
        assert conn.execute("SELECT pct_fundo_comum_mes FROM consorcio.simulacao WHERE simulacao_id = 1").fetchone()[
            0
        ] == Decimal("14.285714")
        with pytest.raises(psycopg.errors.GeneratedAlways):
            conn.execute("UPDATE consorcio.simulacao SET pct_fundo_comum_mes = 1")
    rowversion_keeps_migrated_values_and_works_as_optimistic_lock(loaded)
    collation_rule_columns_use_the_ci_ai_collation(loaded)


def _version(conn, simulacao_id: int) -> bytes:
    return conn.execute(
        "SELECT versao_linha FROM consorcio.simulacao WHERE simulacao_id = %s", (simulacao_id,)
    ).fetchone()[0]


def rowversion_keeps_migrated_values_and_works_as_optimistic_lock(loaded):
    with psycopg.connect(loaded, autocommit=True) as conn:
        migrated = [bytes(r[0]) for r in conn.execute("SELECT versao_linha FROM consorcio.simulacao ORDER BY 1")]
        assert migrated[1:] == [(5000 + i).to_bytes(8, "big") for i in (2, 3)]  # row 1 was updated above
        seen = bytes(_version(conn, 2))
        updated = conn.execute(
            "UPDATE consorcio.simulacao SET situacao = 'P' WHERE simulacao_id = 2 AND versao_linha = %s", (seen,)
        ).rowcount
        assert updated == 1
        after = bytes(_version(conn, 2))
        assert after > max(migrated)
        stale = conn.execute(
            "UPDATE consorcio.simulacao SET situacao = 'C' WHERE simulacao_id = 2 AND versao_linha = %s", (seen,)
        ).rowcount
        assert stale == 0
        conn.execute("UPDATE consorcio.simulacao SET situacao = 'C' WHERE simulacao_id = 3")
        assert bytes(_version(conn, 3)) > after  # database-wide, always increasing
    assert application.application_semantics(target(loaded), CAT["Simulacao"]).passed


def a_reload_with_higher_rowversions_moves_the_sequence_past_them(loaded, tmp_path):
    rows = simulacoes(2)
    rows[1]["VersaoLinha"] = (10**12).to_bytes(8, "big")
    load(tmp_path / "lake", loaded, "Simulacao", rows)
    with psycopg.connect(loaded, autocommit=True) as conn:
        conn.execute("UPDATE consorcio.simulacao SET canal = 2 WHERE simulacao_id = 1")
        assert int.from_bytes(bytes(_version(conn, 1)), "big") > 10**12


def semantics_check_names_a_missing_default_and_trigger(loaded):
    execute(loaded, "ALTER TABLE consorcio.administradora ALTER COLUMN ativa DROP DEFAULT")
    outcome = application.application_semantics(target(loaded), CAT["Administradora"])
    assert not outcome.passed and "ativa: DEFAULT (1) is not attached" in outcome.summary
    execute(loaded, "ALTER TABLE consorcio.simulacao DISABLE TRIGGER simulacao_versao_linha_rowversion")
    outcome = application.application_semantics(target(loaded), CAT["Simulacao"])
    assert not outcome.passed and "versao_linha: ROWVERSION trigger" in outcome.summary


def collation_rule_columns_use_the_ci_ai_collation(loaded):
    collated = fetch(
        loaded,
        """SELECT c.relname || '.' || a.attname FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid JOIN pg_collation k ON k.oid = a.attcollation
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'consorcio' AND k.collname = 'ci_ai' AND c.relkind = 'r' ORDER BY 1""",
    )
    assert [r[0] for r in collated] == [
        "administradora.cnpj",
        "administradora.razao_social",
        "cliente.email",
        "cliente.nome",
        "plano_comercial.nome",
        "segmento.codigo",
    ]
    provider, comment = fetch(
        loaded, "SELECT collprovider, obj_description(oid, 'pg_collation') FROM pg_collation WHERE collname = 'ci_ai'"
    )[0]
    with psycopg.connect(loaded) as conn:  # SQL Server's CI_AI semantics, by ICU or by the local stand-in
        lookup = ci_ai_lookup("nome", "%s")
        assert conn.execute(f"SELECT count(*) FROM consorcio.cliente WHERE {lookup}", ("CLIENTE 1",)).fetchone() == (1,)
        conn.execute(
            "UPDATE consorcio.cliente SET nome = 'José Ávila', email = 'Jose.Avila@Example.COM' WHERE cliente_id = %s",
            (str(uuid.UUID(int=1)),),
        )
        for column, value in (("nome", "JOSE AVILA"), ("nome", "josé ávila"), ("email", "jose.avila@example.com")):
            assert conn.execute(
                f"SELECT count(*) FROM consorcio.cliente WHERE {ci_ai_lookup(column, '%s')}", (value,)
            ).fetchone() == (1,), (column, value)
        for first, second in (("ABC", "abc"), ("José", "Jose")):  # collide on the unique key segmento.codigo
            with conn.transaction(force_rollback=True):
                conn.execute("INSERT INTO consorcio.segmento VALUES (9, %s, 'x', 'INCC', 12, 200)", (first,))
                with pytest.raises(psycopg.errors.UniqueViolation):
                    conn.execute("INSERT INTO consorcio.segmento VALUES (10, %s, 'x', 'INCC', 12, 200)", (second,))
        if provider == "i":  # Aurora, or a local server built with ICU: plain = compares as CI_AI too
            assert conn.execute("SELECT count(*) FROM consorcio.cliente WHERE nome = 'JOSE AVILA'").fetchone() == (1,)
    if provider != "i":  # the embedded pgserver wheel has no ICU: the stand-in says so (the rehearsal reports it)
        assert provider == "c" and comment.startswith("stand-in")
        assert fetch(loaded, "SELECT count(*) FROM consorcio.cliente WHERE nome = 'JOSE AVILA'") == [(0,)]  # byte-wise
        indexes = fetch(
            loaded,
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'consorcio' AND indexname LIKE '%%_ci_ai' ORDER BY 1",
        )
        assert [r[0] for r in indexes] == ["uq_administradora_cnpj_ci_ai", "uq_segmento_codigo_ci_ai"]
