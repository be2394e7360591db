"""`consorcio run` interrupted or killed mid-load, for real: the CLI in its own process, the run's Dagster process,
its step processes and the Glue subprocesses. Ctrl-C cancels the run; a SIGKILL leaves no process behind to swap
a table, and the next `consorcio` start fails the dead runs (four of them, the run queue's limit) before a fifth
run completes. That full run also shows the home private: no group/other bit on anything under it.

Aimed, not timed: a reader holds `consorcio.segmento`, so the run's Glue job for it waits at its swap until the
test has interrupted or killed the run; the table (a placeholder the test created) shows whether a swap happened.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from dagster._core.instance.ref import InstanceRef
from dagster._core.launcher import WorkerStatus

from consorcio_assets.orchestration.runs import HOST_TAG, OWNER_ENV, hostname
from consorcio_assets.target.postgres import dagster_storage_url
from consorcio_assets_tests.faults.support import Monitor, wait_until

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDER = "consorcio.segmento"

#: a run whose process dies mid-step, as a SIGKILLed `dagster job execute` or run worker does
DIES_IN_RUN = """
import os, signal, sys
import dagster as dg

@dg.asset
def dies():
    os.kill(os.getpid(), signal.SIGKILL)

dg.materialize([dies], instance=dg.DagsterInstance.get(), tags={"consorcio/host": sys.argv[1]})
"""


@pytest.fixture
def home(tmp_path, small_source, pg_server_url, fresh_db, monkeypatch):
    """A home with the default stand-in (the small source), the target on a fresh database, Dagster's storage on
    another; the target holds a placeholder `segmento` (one column `x`, one row)."""
    (tmp_path / "source").mkdir()
    shutil.copy(small_source, tmp_path / "source" / "consorcio_simulacao.duckdb")
    storage = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{storage}"')
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA consorcio")
        conn.execute(f"CREATE TABLE {PLACEHOLDER} (x int)")
        conn.execute(f"INSERT INTO {PLACEHOLDER} VALUES (1)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONSORCIO_", "DAGSTER_"))} | {
        "CONSORCIO_WARM": "0"
    }
    env.update(
        CONSORCIO_ENV="local",
        CONSORCIO_HOME=str(tmp_path),
        CONSORCIO_TARGET_URL=fresh_db,
        DAGSTER_PG_URL=pg_server_url.replace("/postgres?", f"/{storage}?", 1),
        DAGSTER_DISABLE_TELEMETRY="1",
    )
    for name, value in env.items():
        if name.startswith(("CONSORCIO_", "DAGSTER_")):
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("DAGSTER_PG_URL", dagster_storage_url())  # the driver dagster-postgres needs
    yield tmp_path, env, fresh_db
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{storage}" WITH (FORCE)')


def owned_processes(owner_pid: int) -> list[int]:
    """Live processes started for the run owned by `owner_pid` (they carry its CONSORCIO_RUN_OWNER)."""
    marker = f"{OWNER_ENV}={owner_pid}:".encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            environ = (entry / "environ").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:
            continue
        if any(v.startswith(marker) for v in environ):
            found.append(int(entry.name))
    return found


def placeholder(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                (PLACEHOLDER,),
            )
        ]
        return [tuple(columns), *conn.execute(f"SELECT count(*) FROM {PLACEHOLDER}").fetchall()]


def tables(url: str) -> dict[str, int]:
    """Table → its relfilenode: a swap gives the name a new one."""
    with psycopg.connect(url) as conn:
        return dict(
            conn.execute(
                "SELECT relname, relfilenode FROM pg_class c JOIN pg_namespace n ON "
                "n.oid = relnamespace WHERE nspname = 'consorcio' AND relkind = 'r'"
            ).fetchall()
        )


def _as_in_a_terminal() -> None:
    """Ctrl-C reaches a command typed in a terminal (a test run in the background may have inherited SIGINT
    ignored, which a Python child keeps ignoring)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupted_mid_load(env: dict[str, str], url: str, log: Path, signum: int) -> tuple[subprocess.Popen, dict]:
    """Start `consorcio run`, wait until its Glue job waits to swap segmento (a reader holds it), send `signum`
    to the CLI process; returns the process and the target's tables at that moment. The reader lets go once the
    run's processes are all gone."""
    monitor = Monitor(url)
    try:
        with psycopg.connect(url) as reader:
            reader.execute(f"LOCK TABLE {PLACEHOLDER} IN ACCESS SHARE MODE")
            with log.open("w") as out:
                cli = subprocess.Popen(
                    [sys.executable, "-m", "consorcio_assets.tooling.cli", "run"],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=REPO,
                    preexec_fn=_as_in_a_terminal,
                )
            try:
                wait_until(
                    lambda: monitor.waiting_on_table(PLACEHOLDER),
                    "the Glue job never reached its swap",
                    cli,
                    timeout=900,
                    interval=0.1,
                )
            except AssertionError:
                raise AssertionError(log.read_text()[-3000:]) from None
            assert owned_processes(cli.pid)
            at_signal = tables(url)
            os.kill(cli.pid, signum)
            if signum == signal.SIGKILL:
                cli.wait()
            wait_until(
                lambda: not owned_processes(cli.pid) and cli.poll() is not None,
                "the run's processes outlived the signal",
                timeout=300,
                interval=0.1,
            )
        # the job's session, queued behind the reader, ends once it gets the lock and finds its client gone
        wait_until(lambda: monitor.job_backends("segmento") == 0, "the job's session did not end")
    finally:
        monitor.close()
    return cli, at_signal


def test_ctrl_c_cancels_and_sigkill_leaves_no_swap_then_dead_runs_fail(home, fault_case):
    fault_case.expect(
        "`consorcio run` Ctrl-C, then SIGKILL mid-load; 4 dead runs; then a 5th run",
        "Ctrl-C: run CANCELED; SIGKILL: every run process gone, no swap after the kill; the next "
        "start marks the 4 dead runs FAILED and the 5th run completes; home private (0700/0600)",
    )
    tmp_path, env, url = home
    cli, _ = interrupted_mid_load(env, url, tmp_path / "ctrl-c.log", signal.SIGINT)
    assert cli.returncode == 130, (tmp_path / "ctrl-c.log").read_text()[-3000:]
    assert placeholder(url) == [("x",), (1,)]  # the Glue run waiting to swap was stopped (others may have ended)
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path / "dagster_home"))) as instance:
        canceled = instance.get_runs(limit=1)[0]
        assert canceled.status == dg.DagsterRunStatus.CANCELED

    cli, before = interrupted_mid_load(env, url, tmp_path / "killed.log", signal.SIGKILL)
    assert placeholder(url) == [("x",), (1,)] and tables(url) == before  # nothing swapped after the kill
    dies_env = {**env, "DAGSTER_HOME": str(tmp_path / "dagster_home"), "DAGSTER_PG_URL": os.environ["DAGSTER_PG_URL"]}
    others = [
        subprocess.Popen(
            [sys.executable, "-c", DIES_IN_RUN, hostname()],
            env=dies_env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    assert [p.wait() for p in others] == [-signal.SIGKILL] * 3, [p.stderr.read()[-2000:] for p in others]
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path / "dagster_home"))) as instance:
        dead = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        assert len(dead) == 4 and all(r.tags.get(HOST_TAG) == hostname() for r in dead)
        # what the daemon's run monitoring asks the launcher: each of them is reported failed
        assert instance.run_monitoring_enabled
        assert {instance.run_launcher.check_run_worker_health(r).status for r in dead} == {WorkerStatus.FAILED}

    for path in (tmp_path, *tmp_path.rglob("*")):  # what an older version left: readable by all
        if not path.is_symlink() and (path.is_dir() or path.is_file()):
            path.chmod(stat.S_IMODE(path.stat().st_mode) | (0o755 if path.is_dir() else 0o644))
    done = subprocess.run(
        [sys.executable, "-m", "consorcio_assets.tooling.cli", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    marked = [line for line in done.stdout.splitlines() if "was left STARTED" in line]
    assert len(marked) == 4 and all(line.endswith("marked FAILED") for line in marked)
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path / "dagster_home"))) as instance:
        statuses = sorted(r.status.value for r in instance.get_runs())
        assert statuses == ["CANCELED", "FAILURE", "FAILURE", "FAILURE", "FAILURE", "SUCCESS"]
        assert not instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    assert placeholder(url)[0] != ("x",)  # the 5th run did swap the real table in

    shared = [
        str(p.relative_to(tmp_path))
        for p in (tmp_path, *tmp_path.rglob("*"))
        if not p.is_symlink() and (p.is_dir() or p.is_file()) and p.stat().st_mode & 0o077
    ]
    fault_case.saw(
        f"Ctrl-C: exit 130, run CANCELED; SIGKILL: all run processes gone, no table swapped; next start: "
        f'"{marked[0][:9]}… was left STARTED: its process … is gone; marked FAILED" ×4, 5th run '
        f"SUCCESS; {len(shared)} path(s) under the home readable by group/other",
        0,
    )
    assert shared == []
