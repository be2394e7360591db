"""A batch's child load starts while its parents are still loading: its data streams into its staging table,
then it waits for the parents staged by the same batch before validating its foreign keys against them. A
parent no run is loading fails it after the grace; a stopped job (SIGTERM) cleans up like a failed one."""

from __future__ import annotations

import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg

from consorcio_assets_tests.glue import data
from consorcio_assets_tests.glue.data import CAT
from consorcio_assets_tests.glue.helpers import error_of, fetch, job_command, job_env, ok, run_job, write_raw

BATCH = "segmento,administradora,plano_comercial"
PARENTS = ("Segmento", "Administradora")
ROWS = {"Segmento": data.segmentos(), "Administradora": data.administradoras(), "PlanoComercial": data.planos()}


def _lake(tmp_path: Path) -> Path:
    lake = tmp_path / "lake"
    for name, rows in ROWS.items():
        write_raw(lake, CAT[name], data.table(name, rows))
    return lake


def _deferred(batch_id: str, *extra: str) -> tuple[str, ...]:
    return ("--swap", "deferred", "--batch-tables", BATCH, "--run-id", batch_id, *extra)


@contextmanager
def _parents_loading(url: str):
    """Hold the parents' load locks, as their live runs do."""
    with psycopg.connect(url, autocommit=True) as conn:
        for name in PARENTS:
            conn.execute(
                "SELECT pg_advisory_lock(hashtextextended(%s, 0))", (f"consorcio.load:{CAT[name].target_name}",)
            )
        yield conn


def _start_child(lake: Path, url: str, log: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        job_command(lake, CAT["PlanoComercial"], CAT, *args, expected_rows=len(ROWS["PlanoComercial"])),
        env=job_env(url),
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )


def _wait_for_text(job: subprocess.Popen, log: Path, text: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        assert job.poll() is None and time.monotonic() < deadline, f"never logged {text!r}: {log.read_text()[-500:]}"
        time.sleep(0.05)


def _staged_rows(url: str, table: str) -> int:
    return fetch(url, f"SELECT count(*) FROM consorcio_staging.{table}")[0][0]


def _leftovers(url: str, lake: Path) -> tuple[list, list]:
    tables = fetch(
        url, "SELECT tablename FROM pg_tables WHERE schemaname = 'consorcio_staging' AND tablename <> '_staged'"
    )
    hidden = [p.name for p in (lake / "transformed").iterdir() if p.name.startswith(".")]
    return tables, hidden


def test_a_child_streams_first_and_validates_its_keys_once_its_parents_are_staged(fresh_db, tmp_path):
    lake, log = _lake(tmp_path), tmp_path / "child.log"
    with _parents_loading(fresh_db) as locks:
        child = _start_child(lake, fresh_db, log, *_deferred("b1"))
        _wait_for_text(child, log, "plano_comercial: waiting for administradora, segmento to be staged by this batch")
        assert _staged_rows(fresh_db, "plano_comercial") == len(ROWS["PlanoComercial"])  # streamed meanwhile
        time.sleep(0.5)
        assert child.poll() is None  # its parents are loading: it keeps waiting
        for name in PARENTS:  # the parents' runs take their locks back and stage their tables
            locks.execute(
                "SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (f"consorcio.load:{CAT[name].target_name}",)
            )
            ok(run_job(lake, CAT[name], CAT, fresh_db, *_deferred("b1"), expected_rows=len(ROWS[name])))
        out, _ = child.communicate(timeout=90)
    assert child.returncode == 0, log.read_text()[-2000:]
    assert "plano_comercial: parents staged after" in log.read_text()
    assert '"parents_wait_seconds"' in out
    # its keys reference the parents this batch staged, validated before the publish
    referenced = fetch(
        fresh_db,
        "SELECT confrelid::regclass::text, convalidated FROM pg_constraint "
        "WHERE contype = 'f' AND conrelid = 'consorcio_staging.plano_comercial'::regclass",
    )
    assert sorted(referenced) == [("consorcio_staging.administradora", True), ("consorcio_staging.segmento", True)]
    ok(run_job(lake, CAT["PlanoComercial"], CAT, fresh_db, "--action", "publish", "--tables", BATCH, "--run-id", "b1"))
    assert fetch(fresh_db, "SELECT count(*) FROM consorcio.plano_comercial")[0][0] == len(ROWS["PlanoComercial"])
    assert (
        fetch(
            fresh_db,
            "SELECT bool_and(convalidated) FROM pg_constraint WHERE contype = 'f' "
            "AND connamespace = 'consorcio'::regnamespace",
        )[0][0]
        is True
    )
    assert _leftovers(fresh_db, lake) == ([], [])


def test_a_parent_no_run_is_loading_fails_the_child_after_the_grace(fresh_db, tmp_path):
    lake = _lake(tmp_path)
    done = run_job(
        lake,
        CAT["PlanoComercial"],
        CAT,
        fresh_db,
        *_deferred("b2", "--parent-grace-seconds", "0.5"),
        expected_rows=len(ROWS["PlanoComercial"]),
    )
    assert done.returncode == 1
    assert error_of(done) == (
        "ERROR: plano_comercial: parent table(s) administradora, segmento were not staged by this "
        "batch and no run is loading them (waited 0.5s): the batch cannot publish"
    )
    assert _leftovers(fresh_db, lake) == ([], [])
    assert fetch(fresh_db, "SELECT to_regclass('consorcio.plano_comercial')")[0][0] is None  # nothing published


def test_a_stopped_job_removes_its_staging_table_and_transformed_parts(fresh_db, tmp_path):
    """What the orchestrator does to a waiting child whose parent failed (Glue's BatchStopJobRun: SIGTERM)."""
    lake, log = _lake(tmp_path), tmp_path / "child.log"
    with _parents_loading(fresh_db):
        child = _start_child(lake, fresh_db, log, *_deferred("b3"))
        _wait_for_text(child, log, "to be staged by this batch")
        assert _staged_rows(fresh_db, "plano_comercial") == len(ROWS["PlanoComercial"])
        assert [p.name for p in (lake / "transformed").iterdir() if p.name.startswith(".plano_comercial")]
        child.send_signal(signal.SIGTERM)
        child.communicate(timeout=60)
    assert child.returncode == 1
    assert "ERROR: stopped (SIGTERM): the run was asked to stop" in log.read_text()
    assert _leftovers(fresh_db, lake) == ([], [])
    assert fetch(fresh_db, "SELECT to_regclass('consorcio_staging._staged')")[0][0] is None  # nothing recorded
