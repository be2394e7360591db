"""The embedded server: its data directory narrowed back to 0700 when a copy of the home widened it; started once per process."""

import os
import stat

import pytest

from consorcio_assets.target.postgres import keep_private


@pytest.mark.parametrize("mode", [0o711, 0o755, 0o777, 0o701])
def test_widened_pgdata_is_narrowed(tmp_path, mode):
    pgdata = tmp_path / "pg"
    pgdata.mkdir()
    pgdata.chmod(mode)
    keep_private(pgdata)
    assert stat.S_IMODE(pgdata.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o700, 0o750])
def test_accepted_modes_are_left_alone(tmp_path, mode):
    pgdata = tmp_path / "pg"
    pgdata.mkdir()
    pgdata.chmod(mode)
    keep_private(pgdata)
    assert stat.S_IMODE(pgdata.stat().st_mode) == mode


def test_missing_pgdata_is_left_to_initdb(tmp_path):
    keep_private(tmp_path / "pg")
    assert not (tmp_path / "pg").exists()


def test_threads_asking_first_share_one_started_server(tmp_path):
    """Check steps run on threads: the first of them to need the target must not start pgserver twice (its lock
    is a file lock, which every thread of a process holds at once: a second start races the first)."""
    import subprocess
    import sys

    from consorcio_assets_tests.conftest import TEST_PG

    code = f"""
import threading
from consorcio_assets.target import postgres
barrier = threading.Barrier(6)
servers = []
def ask():
    barrier.wait()
    servers.append(postgres._embedded_server({str(TEST_PG)!r}))
threads = [threading.Thread(target=ask) for _ in range(6)]
[t.start() for t in threads]
[t.join() for t in threads]
assert len(servers) == 6 and len({{id(s) for s in servers}}) == 1, servers
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_setting_read_at_start_restarts_only_a_server_this_process_started():
    """wal_buffers and wal_level take effect only when the server starts: a server this process started is
    restarted before anyone uses it; one already running (an older version's, serving a UI) is left alone and
    gets them at its next start."""
    import shutil
    import uuid

    import psycopg

    from consorcio_assets.target import postgres
    from consorcio_assets.tooling.processes import postmaster_pid, stop_embedded_postgres
    from consorcio_assets_tests.conftest import REPO

    pgdata = REPO / ".data" / f"restart-{uuid.uuid4().hex[:8]}" / "pg"  # as root, pgserver's user must reach it

    def started() -> tuple[int | None, str]:
        postgres._started_server.cache_clear()
        postgres._forget(str(pgdata))
        with psycopg.connect(postgres._embedded_server(str(pgdata)).get_uri(), autocommit=True) as conn:
            shown = [conn.execute(f"SHOW {name}").fetchone()[0] for name in ("wal_buffers", "wal_level")]
            return postmaster_pid(pgdata), "/".join(shown)

    try:
        _, fresh = started()  # initdb and start here: restarted once with the settings
        with psycopg.connect(postgres._embedded_server(str(pgdata)).get_uri(), autocommit=True) as conn:
            for name in ("wal_buffers", "wal_level", "max_wal_senders"):  # as a server of an older version was
                conn.execute(f"ALTER SYSTEM RESET {name}")
        stop_embedded_postgres(pgdata)
        import pgserver

        postgres._forget(str(pgdata))
        postgres.keep_private(pgdata)
        pgserver.get_server(str(pgdata), cleanup_mode=None)  # someone else's start, without the setting
        before = postmaster_pid(pgdata)
        pid, running = started()  # attached to the running server: not restarted under its users
        stop_embedded_postgres(pgdata)
        _, next_start = started()
        assert (fresh, running, next_start) == ("64MB/minimal", "4MB/replica", "64MB/minimal") and pid == before
    finally:
        postgres._started_server.cache_clear()
        postgres._forget(str(pgdata))
        stop_embedded_postgres(pgdata)
        shutil.rmtree(pgdata.parent, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user (pgserver)")
def test_making_the_home_private_keeps_the_data_directory_startable(tmp_path):
    """As root the home keeps search permission for pgserver's user, but the data directory itself (pgserver's,
    holding its own directories) stays 0700: widened to 0711, PostgreSQL refuses to start (a restart failed so)."""
    import pwd

    from consorcio_assets.common.private_home import make_private

    user = pwd.getpwnam("nobody")
    pgdata = tmp_path / "pg"
    (pgdata / "base").mkdir(parents=True)
    for path in (pgdata, pgdata / "base"):
        os.chown(path, user.pw_uid, user.pw_gid)
    pgdata.chmod(0o700)
    make_private(tmp_path)
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o711 and stat.S_IMODE(pgdata.stat().st_mode) == 0o700
