"""The embedded server killed uncleanly: its next start replays the WAL first, which can outlast the 10 s pgserver
gives `pg_ctl` (12 s for 3 GB on the 1M bench home). The command must wait for the recovery, not fail."""

from __future__ import annotations

import shutil
import signal
import subprocess
import uuid

import pgserver.postgres_server
import psutil
import psycopg

from consorcio_assets.target import postgres
from consorcio_assets.tooling.processes import postmaster_pid, stop_embedded_postgres
from consorcio_assets_tests.conftest import REPO

ROWS = 50_000


def test_a_start_outlasting_pgservers_wait_attaches_once_the_server_is_ready(monkeypatch, capsys, fault_case):
    fault_case.expect(
        "embedded server killed (SIGKILL), restarted with a recovery longer than pgserver's wait",
        "the command waits for the recovery and says so; the committed rows are there",
    )
    pgdata = REPO / ".data" / f"recovery-{uuid.uuid4().hex[:8]}" / "pg"  # as root, pgserver's user must reach it
    postgres._started_server.cache_clear()
    try:
        with psycopg.connect(postgres._embedded_server(str(pgdata)).get_uri(), autocommit=True) as conn:
            conn.execute(f"CREATE TABLE kept AS SELECT g FROM generate_series(1, {ROWS}) AS g")
        pid = postmaster_pid(pgdata)
        assert pid is not None
        postmaster = psutil.Process(pid)
        postmaster.send_signal(signal.SIGKILL)  # no shutdown checkpoint: the next start replays the WAL
        postmaster.wait(30)
        postgres._started_server.cache_clear()
        pgserver.postgres_server.PostgresServer._instances.pop(pgdata.resolve(), None)  # this process's handle
        real, starts = pgserver.postgres_server.pg_ctl, []

        def impatient(args, **kwargs):
            """pg_ctl given up on while the server still starts, as after a replay longer than its 10 s: the server
            is launched without waiting, and pgserver sees the timeout it would see."""
            if args[-1] != "start":
                return real(args, **kwargs)
            starts.append(kwargs.get("timeout"))
            real(["-W" if a == "-w" else a for a in args], **kwargs)
            raise subprocess.TimeoutExpired("pg_ctl", kwargs["timeout"])

        monkeypatch.setattr(pgserver.postgres_server, "pg_ctl", impatient)
        with psycopg.connect(postgres._embedded_server(str(pgdata)).get_uri()) as conn:
            rows = conn.execute("SELECT count(*) FROM kept").fetchone()[0]
        said = capsys.readouterr().err
        fault_case.saw(f"pg_ctl given up on; waited: {'recovering' in said}; {rows:,} of {ROWS:,} rows", ROWS - rows)
        assert starts == [10] and "is recovering from an unclean shutdown: waiting" in said and rows == ROWS
    finally:
        postgres._started_server.cache_clear()
        pgserver.postgres_server.PostgresServer._instances.pop(pgdata.resolve(), None)
        stop_embedded_postgres(pgdata)
        shutil.rmtree(pgdata.parent, ignore_errors=True)
