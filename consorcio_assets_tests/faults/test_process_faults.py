"""Processes and resources failing half-way: the Glue job killed, the DMS engine killed, the COPY's connection
dropped, the lake's disk full, the Dagster run terminated. The previous good version stays in every zone and a
rerun completes.

The kills are aimed, not timed: the job runs in short slices between SIGSTOPs until PostgreSQL shows its COPY
half-way, so the kill or the dropped connection lands mid-COPY whatever the machine's speed.
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest

from consorcio_assets.catalog import catalog
from consorcio_assets.common.lake_zones import Lake
from consorcio_assets.dms import engine, layout
from consorcio_assets.dms.mappings import table_mappings
from consorcio_assets.dms.settings_files import load_settings
from consorcio_assets.glue_runner.local_client import LocalGlueClient
from consorcio_assets.glue_runner.spec import spec_argument, table_spec
from consorcio_assets_tests.faults.diskfull import filling_filesystem
from consorcio_assets_tests.faults.support import (
    Monitor,
    Snapshot,
    digest,
    error_line,
    hidden_leftovers,
    missing,
    signal_group,
    start_job,
    wait_until,
)
from consorcio_assets_tests.glue import data
from consorcio_assets_tests.glue.data import CAT
from consorcio_assets_tests.glue.helpers import URL_ENV, fetch, job_command, job_env, ok, run_job, write_raw

REPO = Path(__file__).resolve().parents[2]
PARCELA = CAT["SimulacaoParcela"]
STAGING = "consorcio_staging.simulacao_parcela"
BIG = 100_000
SLICE_S = 0.003  # how long the job runs between two looks at its COPY


@pytest.fixture
def parcelas_loaded(fresh_db, tmp_path):
    """SimulacaoParcela's good version (1,000 rows) in every zone, and the next version (100,000 rows) in raw."""
    lake = tmp_path / "lake"
    write_raw(lake, PARCELA, data.parcelas(1_000))
    ok(run_job(lake, PARCELA, CAT, fresh_db, expected_rows=1_000))
    before = Snapshot.take(fresh_db, lake, PARCELA)
    write_raw(lake, PARCELA, data.parcelas(BIG, seed=2))
    monitor = Monitor(fresh_db)
    yield lake, fresh_db, before, monitor
    monitor.close()


def _kept(before: Snapshot, url: str, lake: Path) -> int:
    return before.lost(Snapshot.take(url, lake, PARCELA), ("transformed", "aurora"))


def _rerun_completes(lake: Path, url: str, monitor: Monitor) -> None:
    ok(run_job(lake, PARCELA, CAT, url, expected_rows=BIG))
    assert fetch(url, "SELECT count(*) FROM consorcio.simulacao_parcela")[0][0] == BIG
    assert hidden_leftovers(lake) == [] and monitor.staging_tables() == 0


def _paused_mid_copy(monitor: Monitor, process_id: int, process=None, timeout: float = 60.0) -> list[int]:
    """Run the job in short slices (SIGCONT, a few ms, SIGSTOP) until PostgreSQL shows its COPY half-way, and
    leave it frozen there: its COPY stays open, half-sent. Stepping, not a race: a 100k-row COPY takes ~0.2 s
    on a fast machine, far longer than one slice, so no machine is too fast to catch it mid-way."""
    deadline = time.monotonic() + timeout
    while True:
        signal_group(process_id, signal.SIGSTOP)
        backends = monitor.copy_backends("simulacao_parcela")
        copied = monitor.copy_in_progress(STAGING)
        if backends and copied is not None and copied < BIG:
            return backends
        if (process is not None and process.poll() is not None) or time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                signal_group(process_id, signal.SIGKILL)  # never leave a stopped process behind
            raise AssertionError(f"the job's COPY was never seen half-way (last seen: {copied} rows)")
        signal_group(process_id, signal.SIGCONT)
        time.sleep(SLICE_S)


def _job_process(marker: str) -> int | None:
    """The pid of the Glue job whose command line holds `marker`, e.g. its run id (what an operator finds with
    ps before a kill -9)."""
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"consorcio_glue" in command and marker.encode() in command:
            return int(entry.name)
    return None


def test_glue_job_killed_mid_copy(parcelas_loaded, tmp_path, fault_case):
    fault_case.expect(
        "Glue job SIGKILLed mid-COPY",
        "run FAILED (killed); Aurora and transformed zone keep the previous version; the rerun cleans up and completes",
    )
    lake, url, before, monitor = parcelas_loaded
    glue = LocalGlueClient(env={URL_ENV: url}, log_dir=tmp_path / "glue-logs", poll_wait=1.0)
    arguments = {
        "--table-spec": spec_argument(table_spec(PARCELA, CAT, expected_rows=BIG)),
        "--lake-uri": lake.as_uri(),
        "--target-url-env": URL_ENV,
        "--batch-rows": "4096",
    }
    run_id = glue.start_job_run(JobName="consorcio-glue-job", Arguments=arguments)["JobRunId"]
    job = wait_until(lambda: _job_process(run_id), "the Glue job did not start")
    _paused_mid_copy(monitor, job)
    signal_group(job, signal.SIGKILL)
    run = wait_until(lambda: _finished(glue, run_id), "the killed run did not finish")
    assert run["JobRunState"] == "FAILED" and run["ErrorMessage"].startswith("killed by SIGKILL")
    wait_until(lambda: monitor.job_backends("simulacao_parcela") == 0, "the killed job's sessions did not end")
    lost = _kept(before, url, lake)
    debris = f"{monitor.staging_tables()} staging table, {len(hidden_leftovers(lake))} hidden temporary prefix"
    fault_case.saw(
        f"Glue run {run['JobRunState']}: {run['ErrorMessage'][:40]}; {debris} left, invisible to "
        "readers, removed by the rerun",
        lost,
    )
    assert lost == 0
    _rerun_completes(lake, url, monitor)


def _finished(glue: LocalGlueClient, run_id: str) -> dict | None:
    run = glue.get_job_run(JobName="consorcio-glue-job", RunId=run_id)["JobRun"]
    return run if run["JobRunState"] in ("FAILED", "STOPPED", "SUCCEEDED") else None


def test_postgres_connection_dropped_mid_copy(parcelas_loaded, fault_case):
    fault_case.expect(
        "PostgreSQL connection dropped mid-COPY (pg_terminate_backend)",
        "job fails naming the table and the COPY; nothing swapped; rerun completes",
    )
    lake, url, before, monitor = parcelas_loaded
    job = start_job(lake, PARCELA, CAT, url, "--batch-rows", "4096", expected_rows=BIG)
    backends = _paused_mid_copy(monitor, job.pid, job)
    for pid in backends:
        assert monitor.conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
    signal_group(job.pid, signal.SIGCONT)
    _, stderr = job.communicate(timeout=60)
    message = error_line(stderr)
    assert job.returncode == 1 and "simulacao_parcela" in message and "COPY" in message
    lost = _kept(before, url, lake)
    fault_case.saw(message[:200], lost)
    assert lost == 0
    _rerun_completes(lake, url, monitor)


KILLED_ENGINE = textwrap.dedent("""
    import sys, time
    import pyarrow.parquet as pq
    from consorcio_assets.catalog import catalog
    from consorcio_assets.dms import engine
    from consorcio_assets.dms.mappings import table_mappings
    from consorcio_assets.dms.settings_files import load_settings
    from consorcio_assets.common.lake_zones import Lake

    class Stalling(pq.ParquetWriter):
        written = 0
        def write_batch(self, *args, **kwargs):
            super().write_batch(*args, **kwargs)
            Stalling.written += 1
            if Stalling.written == 3:  # the file is open, three row groups into it
                print("MID-FILE", flush=True)
                time.sleep(60)

    engine.pq.ParquetWriter = Stalling
    settings = load_settings().with_endpoint(RowGroupLength=100)
    engine.run_full_load(table_mappings([catalog()["SimulacaoParcela"]]), source_url="duckdb:///" + sys.argv[1],
                         lake=Lake(sys.argv[2]), settings=settings)
""")


def kill_engine_mid_file(source: Path, lake: Lake) -> int:
    """Run KILLED_ENGINE on `source` into `lake` and SIGKILL it inside its first LOAD file; its return code."""
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_ENGINE, str(source), lake.uri], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        assert child.stdout.readline().strip() == "MID-FILE"
    finally:
        child.kill()
        child.wait()
    return child.returncode


def test_dms_engine_killed_mid_file(small_source, tmp_path, fault_case):
    fault_case.expect(
        "local DMS engine SIGKILLed mid-file",
        "raw zone keeps the previous load; the partial file stays under _dms/staging; the next load clears it",
    )
    lake = Lake((tmp_path / "lake").as_uri())
    settings = load_settings().with_endpoint(RowGroupLength=100)
    table = catalog()["SimulacaoParcela"]
    first = engine.run_full_load(
        table_mappings([table]), source_url=f"duckdb:///{small_source}", lake=lake, settings=settings
    ).tables[table.name]
    before = digest(tmp_path / "lake" / "raw")
    returncode = kill_engine_mid_file(small_source, lake)
    partial = list((tmp_path / "lake" / "_dms" / "staging").rglob("LOAD*.parquet"))
    assert partial and not any(_complete_parquet(p) for p in partial)  # killed inside its file
    lost = missing(before.items(), digest(tmp_path / "lake" / "raw").items())
    fault_case.saw(
        f"engine {signal.Signals(-returncode).name}; raw/dbo/SimulacaoParcela unchanged "
        f"({len(before)} file(s)); {len(partial)} partial file(s) only under _dms/staging",
        lost,
    )
    assert lost == 0 and digest(tmp_path / "lake" / "raw") == before
    again = engine.run_full_load(
        table_mappings([table]), source_url=f"duckdb:///{small_source}", lake=lake, settings=settings
    ).tables[table.name]
    assert again.state == layout.COMPLETED and again.full_load_rows == first.full_load_rows
    assert not list((tmp_path / "lake" / "_dms").rglob("LOAD*"))


def _complete_parquet(path: Path) -> bool:
    try:
        pq.read_metadata(path)
        return True
    except Exception:  # noqa: BLE001 - anything unreadable is not a complete file
        return False


@dataclass(frozen=True)
class _FullLake(Lake):
    """The lake at `uri` seen through another filesystem (one whose disk fills up)."""

    fs: object = None

    def filesystem(self):
        return self.fs, Lake(self.uri).filesystem()[1]


def test_lake_disk_full_while_dms_writes(small_source, tmp_path, fault_case):
    fault_case.expect(
        "lake disk full (ENOSPC) while DMS writes raw/",
        "table errored, naming table and lake; raw zone keeps the previous load; rerun completes",
    )
    uri = (tmp_path / "lake").as_uri()
    settings = load_settings().with_endpoint(RowGroupLength=100, MaxFileSize=4)
    table = catalog()["SimulacaoParcela"]
    mappings = table_mappings([table])
    source = engine.open_source(f"duckdb:///{small_source}")
    try:
        first = engine.LocalFullLoad(source, Lake(uri), settings).run(mappings).tables[table.name]
        before = digest(tmp_path / "lake" / "raw")
        full, budget = filling_filesystem(8_000)
        failed = engine.LocalFullLoad(source, _FullLake(uri, full), settings).run(mappings).tables[table.name]
        assert failed.state == layout.ERRORED and budget.refused
        assert failed.error.startswith("dbo.SimulacaoParcela: cannot write to the lake")
        assert "No space left on device" in failed.error
        assert not list((tmp_path / "lake" / "_dms").rglob("LOAD*"))  # the failed load's files are gone
        lost = missing(before.items(), digest(tmp_path / "lake" / "raw").items())
        fault_case.saw(failed.error.replace(str(tmp_path), "…"), lost)
        assert lost == 0
        again = engine.LocalFullLoad(source, Lake(uri), settings).run(mappings).tables[table.name]
    finally:
        source.close()
    assert again.state == layout.COMPLETED and again.full_load_rows == first.full_load_rows


def test_lake_disk_full_while_glue_writes(parcelas_loaded, fault_case):
    fault_case.expect(
        "lake disk full (ENOSPC) while Glue writes transformed/",
        "job fails naming table and file; transformed zone and Aurora keep the previous version; rerun completes",
    )
    lake, url, before, monitor = parcelas_loaded
    command = job_command(lake, PARCELA, CAT, "--part-rows", "20000", "--batch-rows", "5000", expected_rows=BIG)
    done = subprocess.run(
        [sys.executable, "-m", "consorcio_assets_tests.faults.glue_disk_full", "200000", *command[2:]],
        env=job_env(url),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    message = error_line(done.stderr)
    assert done.returncode == 1 and "simulacao_parcela" in message and "transformed/" in message
    assert "No space left on device" in message
    lost = _kept(before, url, lake)
    fault_case.saw(message[:200], lost)
    assert lost == 0 and monitor.staging_tables() == 0
    _rerun_completes(lake, url, monitor)


# -- a Dagster run terminated ----------------------------------------------------------------------------------


def test_dagster_run_terminated(segmento, tmp_path, monkeypatch, fault_case):
    """Terminate is what the UI's button does (GraphQL terminateRun → run_coordinator.cancel_run); the run
    worker is a separate process that receives the interrupt its code server would send (see run_worker.py)."""
    import dagster as dg

    from consorcio_assets.common.stages import AURORA, TRANSFORMED, asset_key
    from consorcio_assets.defs.glue_aurora import glue_transform_and_load
    from consorcio_assets.defs.resources import resources_for

    fault_case.expect(
        "Dagster run terminated (run_coordinator.cancel_run) mid-load",
        "run CANCELED, the Glue "
        "run stopped before its swap; Aurora and transformed zone keep the previous version; rerun "
        "completes",
    )
    for name, value in {
        "CONSORCIO_ENV": "local",
        "CONSORCIO_HOME": str(tmp_path),
        "CONSORCIO_TARGET_URL": segmento.url,
        "CONSORCIO_LAKE_URI": segmento.lake.as_uri(),
    }.items():
        monkeypatch.setenv(name, value)
    write_raw(segmento.lake, segmento.table, data.table("Segmento", data.segmentos(6)))
    home = tmp_path / "dagster"
    home.mkdir()
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        _run, status, messages = _terminate_mid_load(instance, home, segmento)
        assert status == dg.DagsterRunStatus.CANCELED
        assert "stopped: the Dagster run was terminated" in messages
        lost = segmento.lost()
        fault_case.saw(f"run {status.value}; {messages[:160]}", lost)
        assert lost == 0
        keys = [asset_key(stage, segmento.table) for stage in (TRANSFORMED, AURORA)]
        again = dg.materialize(
            [glue_transform_and_load], selection=keys, resources=resources_for("local"), instance=instance
        )
    assert again.success and len(segmento.now().aurora) == 6


def _terminate_mid_load(instance, home: Path, segmento):
    """Start the run, wait until its Glue job waits to swap (a reader holds the table), terminate the run, and
    check the job process is gone while the reader still holds the table: (run, final status, what the run
    logged about stopping the Glue run). Its session, queued behind the reader's lock, ends once the reader lets go."""
    monitor = Monitor(segmento.url)
    try:
        with psycopg.connect(segmento.url) as reader:
            reader.execute("LOCK TABLE consorcio.segmento IN ACCESS SHARE MODE")
            worker = subprocess.Popen(
                [sys.executable, "-m", "consorcio_assets_tests.faults.run_worker", str(home), "Segmento"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=REPO,
            )
            try:
                wait_until(
                    lambda: monitor.waiting_on_table("consorcio.segmento"),
                    "the Glue job never reached its swap",
                    worker,
                    timeout=120,
                    interval=0.05,
                )
                run = instance.get_runs(limit=1)[0]
                instance.run_coordinator.cancel_run(run.run_id)
                _, err = worker.communicate(timeout=90)
            finally:
                if worker.poll() is None:
                    worker.kill()
            assert _job_process(segmento.lake.as_uri()) is None, err[-3000:]  # stopped before it could swap
        wait_until(lambda: monitor.job_backends("segmento") == 0, "the stopped job's session did not end")
    finally:
        monitor.close()
    stopped = [
        e.message for e in instance.all_logs(run.run_id) if re.match(r"(publish )?segmento: Glue run", e.message or "")
    ]  # the load's run, or the publish's
    return run, instance.get_run_by_id(run.run_id).status, " | ".join(stopped)
