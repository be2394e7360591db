"""The fast path of a one-table reload (`consorcio run --tables`, as the UI's Materialize of a table's chain):
exactly that table's assets and checks run, all in the run's one process (no step processes), and the table is
in PostgreSQL afterwards with the source's rows; an unknown table is refused in one line before anything runs."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import dagster as dg
import duckdb
import psycopg
import pytest

REPO = Path(__file__).resolve().parent.parent
TABLE = "segmento"


@pytest.fixture
def cli_env(seeded_env, pg_server_url, monkeypatch) -> dict[str, str]:
    """The seeded home with Dagster's storage on a database of its own (dropped afterwards)."""
    from consorcio_assets.orchestration.instance import prepare_instance_env

    name = f"d_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    monkeypatch.setenv("DAGSTER_HOME", str(seeded_env / "dagster_home"))
    monkeypatch.setenv("DAGSTER_PG_URL", pg_server_url.replace("/postgres?", f"/{name}?", 1))
    yield prepare_instance_env()
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def consorcio(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "consorcio_assets.tooling.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )


def checks_of(assets: set[dg.AssetKey]) -> set[tuple[str, str]]:
    """Every check the definitions put on `assets` (the reload must evaluate each of them)."""
    from consorcio_assets.definitions import defs

    graph = defs().resolve_asset_graph()
    return {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys if k.asset_key in assets}


def test_one_table_reload_runs_that_table_and_its_checks_in_the_run_process(cli_env, seeded_env, fresh_db):
    done = consorcio(cli_env, "run", "--tables", TABLE)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    run_id = next(line.split()[1] for line in done.stdout.splitlines() if " created;" in line)

    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(run_id)
        events = [r.dagster_event for r in instance.all_logs(run_id) if r.dagster_event]
    assert run.status == dg.DagsterRunStatus.SUCCESS and run.job_name == "migrate_all"
    chain = {dg.AssetKey([stage, TABLE]) for stage in ("s3_raw", "transformed", "aurora")}
    materialized = {
        e.event_specific_data.materialization.asset_key
        for e in events
        if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
    }
    assert materialized == chain
    evaluated = {
        (
            e.event_specific_data.asset_key.to_user_string(),
            e.event_specific_data.check_name,
        ): e.event_specific_data.passed
        for e in events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    }
    assert set(evaluated) == checks_of(chain) and all(evaluated.values()), evaluated
    # every step ran in the run's own process: no process per step (each cost seconds of start-up)
    run_pid = next(e.pid for e in events if e.event_type == dg.DagsterEventType.RUN_START)
    step_pids = {e.pid for e in events if e.event_type == dg.DagsterEventType.STEP_START}
    assert step_pids == {run_pid}
    assert not [e for e in events if e.event_type == dg.DagsterEventType.STEP_WORKER_STARTING]

    with duckdb.connect(str(seeded_env / "source" / "consorcio_simulacao.duckdb"), read_only=True) as con:
        source = sorted(con.execute('SELECT "SegmentoId", "Codigo", "Descricao" FROM dbo."Segmento"').fetchall())
    with psycopg.connect(fresh_db) as conn:
        target = sorted(conn.execute("SELECT segmento_id, codigo, descricao FROM consorcio.segmento").fetchall())
        loaded = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'consorcio'")}
    assert target == source and len(target) == 6
    assert loaded - {"consorcio_rejects"} == {TABLE}  # nothing but the table asked for (and the rejects' table)


def test_an_unknown_table_is_refused_in_one_line_naming_the_tables(cli_env):
    done = consorcio(cli_env, "run", "--tables", "segmento,nope")
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith("consorcio run: error: no table 'nope' in migrate_all (tables: ")
    )
    assert "segmento" in done.stderr and "Traceback" not in done.stderr
    with dg.DagsterInstance.get() as instance:
        assert instance.get_runs() == []  # refused before a run was created
