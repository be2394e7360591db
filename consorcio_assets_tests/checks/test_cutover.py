"""The cutover rehearsal on a faithful migration of the small source: GO with the evidence pack; a planted broken
default gives NO-GO naming table, column and SQLSTATE; a write to the source gives NO-GO; Aurora is unchanged."""

from __future__ import annotations

import json
import shutil

import duckdb
import psycopg
import pytest

from consorcio_assets.target.roles import apply_roles
from consorcio_assets.tooling import cli


@pytest.fixture
def env(migrated, lake_copy, small_source, tmp_path, monkeypatch):
    source = tmp_path / "source.duckdb"
    shutil.copy(small_source, source)
    monkeypatch.setenv("CONSORCIO_ENV", "local")
    monkeypatch.setenv("CONSORCIO_HOME", str(tmp_path))
    monkeypatch.setenv("CONSORCIO_SOURCE_URL", f"duckdb:///{source}")
    monkeypatch.setenv("CONSORCIO_TARGET_URL", migrated)
    monkeypatch.setenv("CONSORCIO_LAKE_URI", lake_copy.as_uri())
    # the CLI sets DAGSTER_PG_URL in os.environ for its instance: drop another test's (its database may be gone)
    monkeypatch.delenv("DAGSTER_PG_URL", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    apply_roles(migrated)
    return {"target": migrated, "source": source, "out": tmp_path / "reports"}


def _counts(url: str) -> tuple:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM consorcio.cliente), (SELECT count(*) FROM consorcio.simulacao),"
            " (SELECT count(*) FROM consorcio.simulacao_parcela),"
            " (SELECT count(*) FROM consorcio.administradora)"
        ).fetchone()


def _report(out) -> dict:
    (path,) = out.glob("*.json")
    assert path.with_suffix(".html").exists()
    return json.loads(path.read_text())


def test_rehearsal_is_go_on_a_faithful_migration_and_changes_nothing(env, capsys):
    before = _counts(env["target"])
    code = cli.main(["cutover", "--rehearse", "--out", str(env["out"])])
    out = capsys.readouterr().out
    report = _report(env["out"])
    assert code == 0 and "GO  report" in out and report["verdict"] == "GO", report["reasons"]
    assert _counts(env["target"]) == before  # the smoke workload was rolled back
    assert all(s["passed"] for s in report["smoke"]) and len(report["smoke"]) == 8
    assert report["rows"]["consorcio.simulacao"]["source"] == report["rows"]["consorcio.simulacao"]["aurora"] == 300
    assert {c["check"] for c in report["checks"]} >= {
        "identity_continues",
        "application_semantics",
        "rows_match_source",
    }
    html = next(env["out"].glob("*.html")).read_text()
    assert html.count("<svg") == 3 and "Accepted semantic differences" in html
    lookups = next(s for s in report["smoke"] if s["name"] == "case- and accent-insensitive lookups")
    assert "refused a case variant" in lookups["detail"]  # ICU, or the stand-in's CI_AI key index
    views = next(s for s in report["smoke"] if s["name"] == "both live views")
    assert views["passed"] and "show the new simulation" in views["detail"]


def test_a_key_that_is_no_longer_case_insensitive_gives_no_go(env, capsys):
    with psycopg.connect(env["target"], autocommit=True) as conn:
        conn.execute("DROP INDEX IF EXISTS consorcio.uq_segmento_codigo_ci_ai")  # the local stand-in's CI_AI key
        icu = conn.execute("SELECT collprovider = 'i' FROM pg_collation WHERE collname = 'ci_ai'").fetchone()[0]
        if icu:  # there the unique constraint itself compares as CI_AI
            conn.execute("ALTER TABLE consorcio.segmento DROP CONSTRAINT uq_segmento_codigo")
    assert cli.main(["cutover", "--rehearse", "--out", str(env["out"])]) == 1
    step = next(s for s in _report(env["out"])["smoke"] if s["name"] == "case- and accent-insensitive lookups")
    assert not step["passed"] and "CI_AI unique key missing" in step["detail"]


def test_a_planted_broken_default_gives_no_go(env, capsys):
    with psycopg.connect(env["target"], autocommit=True) as conn:
        conn.execute("ALTER TABLE consorcio.cliente ALTER COLUMN cliente_id DROP DEFAULT")
    code = cli.main(["cutover", "--rehearse", "--out", str(env["out"])])
    report = _report(env["out"])
    assert code == 1 and report["verdict"] == "NO-GO"
    step = next(s for s in report["smoke"] if s["name"] == "cliente relies on its DEFAULT")
    assert (step["passed"], step["table"], step["column"], step["sqlstate"]) == (
        False,
        "cliente",
        "cliente_id",
        "23502",
    )
    assert any("application_semantics failed on consorcio.cliente" in r for r in report["reasons"])


def test_a_write_to_the_source_after_the_load_gives_no_go(env, capsys):
    with duckdb.connect(str(env["source"])) as con:
        con.execute("UPDATE dbo.Segmento SET Descricao = Descricao || 'x' WHERE SegmentoId = 1")
        con.execute("DELETE FROM dbo.SimulacaoLance WHERE LanceId = (SELECT min(LanceId) FROM dbo.SimulacaoLance)")
    assert cli.main(["cutover", "--rehearse", "--out", str(env["out"])]) == 1
    report = _report(env["out"])
    assert "source changed since the last load: consorcio.simulacao_lance" in report["reasons"]


def _as(conn, role: str, statement: str):
    with conn.transaction(force_rollback=True):
        conn.execute(f"SET LOCAL ROLE {role}")
        return conn.execute(statement)


def test_roles_app_writes_without_ddl_checker_reads_analyst_sees_only_analytics(migrated):
    apply_roles(migrated)
    apply_roles(migrated)  # idempotent
    with psycopg.connect(migrated, autocommit=True) as conn:
        _as(conn, "consorcio_app", "UPDATE consorcio.simulacao SET situacao = 'P' WHERE simulacao_id = 1")
        _as(conn, "consorcio_app", "SELECT nextval('consorcio.rowversion_seq')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            _as(conn, "consorcio_app", "CREATE TABLE consorcio.app_ddl (x int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            _as(conn, "consorcio_app", "ALTER TABLE consorcio.simulacao ADD COLUMN x int")
        assert _as(conn, "consorcio_checker", "SELECT count(*) FROM consorcio.simulacao").fetchone()[0] == 300
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            _as(conn, "consorcio_checker", "DELETE FROM consorcio.simulacao_lance")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            _as(conn, "consorcio_analyst", "SELECT count(*) FROM consorcio.cliente")
        # a reload creates the table in the staging schema and swaps it in: the privileges come with it
        conn.execute("CREATE TABLE consorcio_staging.reloaded (x int)")
        conn.execute("ALTER TABLE consorcio_staging.reloaded SET SCHEMA consorcio")
        _as(conn, "consorcio_app", "INSERT INTO consorcio.reloaded VALUES (1)")
        conn.execute("CREATE TABLE analytics.seen (x int)")
        _as(conn, "consorcio_analyst", "SELECT * FROM analytics.seen")
        conn.execute("REVOKE INSERT ON consorcio.simulacao FROM consorcio_app")
        from consorcio_assets.target.roles import privilege_problems

        assert privilege_problems(conn) == ["consorcio_app may write consorcio.simulacao"]
