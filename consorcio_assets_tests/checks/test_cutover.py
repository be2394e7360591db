"""The cutover rehearsal on a faithful migration of the small source: GO with the evidence pack; a planted broken
default gives NO-GO naming table, column and SQLSTATE; a write to the source gives NO-GO; Aurora is unchanged."""

from __future__ import annotations

import json
import shutil

import duckdb
import psycopg
import pytest

from consorcio_assets import cli


@pytest.fixture
def env(migrated, lake_copy, small_source, tmp_path, monkeypatch):
    source = tmp_path / "source.duckdb"
    shutil.copy(small_source, source)
    monkeypatch.setenv("CONSORCIO_ENV", "local")
    monkeypatch.setenv("CONSORCIO_HOME", str(tmp_path))
    monkeypatch.setenv("CONSORCIO_SOURCE_URL", f"duckdb:///{source}")
    monkeypatch.setenv("CONSORCIO_TARGET_URL", migrated)
    monkeypatch.setenv("CONSORCIO_LAKE_URI", lake_copy.as_uri())
    return {"target": migrated, "source": source, "out": tmp_path / "reports"}


def _counts(url: str) -> tuple:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT (SELECT count(*) FROM consorcio.cliente), (SELECT count(*) FROM consorcio.simulacao),"
                            " (SELECT count(*) FROM consorcio.simulacao_parcela),"
                            " (SELECT count(*) FROM consorcio.administradora)").fetchone()


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
    assert all(s["passed"] for s in report["smoke"]) and len(report["smoke"]) == 7
    assert report["rows"]["consorcio.simulacao"]["source"] == report["rows"]["consorcio.simulacao"]["aurora"] == 300
    assert {c["check"] for c in report["checks"]} >= {"identity_continues", "application_semantics", "rows_match_source"}
    html = next(env["out"].glob("*.html")).read_text()
    assert html.count("<svg") == 3 and "Accepted semantic differences" in html


def test_a_planted_broken_default_gives_no_go(env, capsys):
    with psycopg.connect(env["target"], autocommit=True) as conn:
        conn.execute("ALTER TABLE consorcio.cliente ALTER COLUMN cliente_id DROP DEFAULT")
    code = cli.main(["cutover", "--rehearse", "--out", str(env["out"])])
    report = _report(env["out"])
    assert code == 1 and report["verdict"] == "NO-GO"
    step = next(s for s in report["smoke"] if s["name"] == "cliente relies on its DEFAULT")
    assert (step["passed"], step["table"], step["column"], step["sqlstate"]) == (False, "cliente", "cliente_id", "23502")
    assert any("application_semantics failed on consorcio.cliente" in r for r in report["reasons"])


def test_a_write_to_the_source_after_the_load_gives_no_go(env, capsys):
    with duckdb.connect(str(env["source"])) as con:
        con.execute('UPDATE dbo.Segmento SET Descricao = Descricao || \'x\' WHERE SegmentoId = 1')
        con.execute('DELETE FROM dbo.SimulacaoLance WHERE LanceId = (SELECT min(LanceId) FROM dbo.SimulacaoLance)')
    assert cli.main(["cutover", "--rehearse", "--out", str(env["out"])]) == 1
    report = _report(env["out"])
    assert "source changed since the last load: consorcio.simulacao_lance" in report["reasons"]
