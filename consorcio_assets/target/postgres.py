"""The target PostgreSQL: Aurora in aws mode, an embedded `pgserver` locally.

The embedded server is started on demand and left running (cleanup_mode=None) so that the Dagster
run, the Glue subprocesses and the tests all reuse one server over its Unix socket.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import subprocess
import sys
import threading
import time
import warnings
from functools import lru_cache
from pathlib import Path

import psycopg

from consorcio_assets.common.private_home import TRAVERSE
from consorcio_assets.settings import Settings, get_settings
from consorcio_assets.target.connect import connect_postgres

TARGET_DB = "consorcio"
DAGSTER_DB = "dagster"
#: the embedded server as a bulk-load target: initdb's 1 GB of WAL makes PostgreSQL checkpoint every ~20 s during
#: a 1M-simulação load ("checkpoints are occurring too frequently"), so a load may use up to 4 GB of WAL; between
#: loads the WAL shrinks back to min_wal_size: `release_wal` checkpoints after each batch and, without recycling,
#: the checkpoint deletes the segments it no longer needs. Aurora has no checkpoints to tune at all.
#: wal_buffers: a COPY writes through a ring of 16 MB of shared buffers and must flush the WAL behind a dirty one
#: before reusing it; with the default 4 MB of WAL buffers the backend writes that WAL itself, in small pieces (a
#: 7.2M-row CREATE TABLE AS: 4.4-5.3 s of server CPU, 3.2 s with 64 MB, 1.5-1.8 s unlogged). It is read at start.
#: wal_level minimal: an index built, or a table filled, in the transaction that created its file is fsynced at
#: commit instead of written to the WAL (simulacao_parcela's primary key: 2.9-3.2 s and 198 MB of WAL, 2.5 s and
#: none); it needs max_wal_senders 0 (listed first: the server refuses minimal with senders) and is read at start.
#: The embedded server has no replica to ship WAL to, as Aurora replicates in its storage, not by WAL shipping.
EMBEDDED_SETTINGS = {
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
    "min_wal_size": "32MB",
    "wal_recycle": "off",
    "wal_buffers": "64MB",
    "max_wal_senders": "0",
    "wal_level": "minimal",
}
#: how long a start may take replaying the WAL of a server stopped uncleanly (12 s for 3 GB here)
RECOVERY_SECONDS = 600
#: how long the recovering server may take to write its postmaster.pid before "it stopped" is the answer
APPEAR_SECONDS = 10


_server_lock = threading.Lock()
_database_lock = threading.Lock()


def _embedded_server(pgdata: str):
    """The server, started once per process even when several threads ask first (check steps run on threads):
    pgserver's own lock is a file lock, which every thread of one process holds at once."""
    with _server_lock:
        return _started_server(pgdata)


@lru_cache(maxsize=4)
def _started_server(pgdata: str):
    """The server on `pgdata`, started if needed and tuned (EMBEDDED_SETTINGS). A setting read only at start is
    applied by restarting the server when this process is the one that started it (nobody uses it yet: other
    processes wait on the start lock); a server already running gets it at its next start."""
    from consorcio_assets.tooling.processes import postmaster_pid, stop_embedded_postgres

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="platformdirs")
    parent = Path(pgdata).parent
    parent.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:  # pgserver runs PostgreSQL as its own user, who must reach pgdata through the home
        parent.chmod(parent.stat().st_mode & 0o7777 | TRAVERSE)
    with _start_lock(parent / "pg.start.lock"):
        running = postmaster_pid(Path(pgdata)) is not None
        server = _attach(pgdata)
        if _tune(server.get_uri()) and not running:
            stop_embedded_postgres(Path(pgdata))
            _forget(pgdata)
            server = _attach(pgdata)
    return server


@contextlib.contextmanager
def _start_lock(path: Path):
    """Across processes: one starts (and may restart) the server while the others wait to attach."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _forget(pgdata: str) -> None:
    """Drop pgserver's handle of the server on `pgdata` (one that gave up, or a server stopped), so the next
    `get_server` looks again."""
    import pgserver

    pgserver.PostgresServer._instances.pop(Path(pgdata).resolve(), None)


def _attach(pgdata: str):
    """pgserver's handle of the server on `pgdata`, starting it if needed."""
    import pgserver

    keep_private(Path(pgdata))
    try:
        return pgserver.get_server(pgdata, cleanup_mode=None)
    except subprocess.TimeoutExpired:
        # pgserver gives pg_ctl 10 s. A server stopped uncleanly (killed, the machine went down) first replays its
        # WAL, up to max_wal_size (4 GB here), and goes on starting after pg_ctl gives up: wait, then attach.
        _forget(pgdata)
        wait_until_ready(Path(pgdata), RECOVERY_SECONDS)
        return pgserver.get_server(pgdata, cleanup_mode=None)


def wait_until_ready(pgdata: Path, seconds: float) -> None:
    """Until the server on `pgdata` accepts connections (its postmaster.pid says `ready`); a clear error, naming
    its log, if no server runs there (a few seconds allowed for it to appear) or it is not ready after `seconds`."""
    from consorcio_assets.tooling.processes import postmaster_pid, postmaster_status

    print(
        f"the embedded PostgreSQL ({pgdata}) is recovering from an unclean shutdown: waiting (log: {pgdata / 'log'})",
        file=sys.stderr,
    )
    started = time.monotonic()
    while (waited := time.monotonic() - started) < seconds:
        if postmaster_pid(pgdata) is None:
            if waited > APPEAR_SECONDS:
                raise RuntimeError(f"the embedded PostgreSQL ({pgdata}) stopped while starting: see {pgdata / 'log'}")
        elif postmaster_status(pgdata) == "ready":
            return
        time.sleep(0.2)
    raise RuntimeError(f"the embedded PostgreSQL ({pgdata}) was not ready after {seconds:.0f} s: see {pgdata / 'log'}")


def keep_private(pgdata: Path) -> None:
    """PostgreSQL refuses a data directory others can enter (0700 or 0750 only); a copy or restore of the home that
    widened it (e.g. to 0711) would stop every command at start-up, so narrow it back: nothing in it is anyone else's."""
    if pgdata.is_dir() and pgdata.stat().st_mode & 0o027:
        pgdata.chmod(0o700)


def _tune(url: str) -> bool:
    """Apply EMBEDDED_SETTINGS (ALTER SYSTEM, then a reload); True when one of them waits for a restart."""
    with connect(url, autocommit=True) as conn:
        stale = {
            name: context
            for name, context, value in conn.execute(
                "SELECT name, context, current_setting(name) FROM pg_settings WHERE name = ANY(%s)",
                (list(EMBEDDED_SETTINGS),),
            )
            if value != EMBEDDED_SETTINGS[name]
        }
        for name in (n for n in EMBEDDED_SETTINGS if n in stale):  # in their listed order (max_wal_senders first)
            conn.execute(f"ALTER SYSTEM SET {name} = '{EMBEDDED_SETTINGS[name]}'")
        if stale:
            conn.execute("SELECT pg_reload_conf()")
        return "postmaster" in stale.values()


def server_url(settings: Settings | None = None, database: str = "postgres") -> str:
    """A libpq URL of the server, on `database`."""
    settings = settings or get_settings()
    if settings.target_url:
        return _with_database(settings.target_url, database) if database != "postgres" else settings.target_url
    return _embedded_server(str(settings.home / "pg")).get_uri(database)


def _with_database(url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=database).render_as_string(hide_password=False)


def ensure_database(name: str, settings: Settings | None = None) -> str:
    """Create database `name` if missing (the embedded server only has `postgres`); return its URL."""
    settings = settings or get_settings()
    if settings.target_url:
        return settings.target_url if name == TARGET_DB else _with_database(settings.target_url, name)
    with _database_lock:  # two check threads asking first must not both create it
        with connect(server_url(settings), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
        if not exists and name == TARGET_DB:  # the cutover's roles, as the DBA creates them on Aurora
            from consorcio_assets.target.roles import apply_roles

            apply_roles(server_url(settings, name))
    return server_url(settings, name)


def connect(url: str, **kwargs) -> psycopg.Connection:
    """psycopg.connect, retrying transient failures (refused, server starting up) with backoff and jitter."""
    return connect_postgres(url, **kwargs)


def target_url(settings: Settings | None = None) -> str:
    """libpq URL of the migration target (database `consorcio`)."""
    return ensure_database(TARGET_DB, settings)


def sqlalchemy_url(libpq_url: str) -> str:
    return libpq_url.replace("postgresql://", "postgresql+psycopg://", 1)


def redact(url: str) -> str:
    """The URL with its password masked (in the user info or a `password` parameter), for logs and errors."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
        if "password" in parsed.query:
            parsed = parsed.update_query_dict({"password": "***"})
        return parsed.render_as_string(hide_password=True)
    except Exception:
        return "<unparsable url>"


def dagster_storage_url() -> str:
    """dagster-postgres interpolates parameters client-side as psycopg2 does, so pin that driver
    (SQLAlchemy 2.1 otherwise picks psycopg 3 for plain postgresql:// URLs)."""
    url = os.environ.get("DAGSTER_PG_URL") or ensure_database(DAGSTER_DB)
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


def release_wal(settings: Settings | None = None) -> int | None:
    """After a batch of loads into the embedded server: CHECKPOINT, so the batch's WAL (up to max_wal_size) is
    deleted now rather than kept until the next timed checkpoint. Returns the WAL bytes left, or None when the
    target is not the embedded server (Aurora, or a PostgreSQL the user runs: not ours to checkpoint)."""
    settings = settings or get_settings()
    if settings.target_url:
        return None
    with connect(server_url(settings), autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        return conn.execute("SELECT coalesce(sum(size), 0) FROM pg_ls_waldir()").fetchone()[0]  # type: ignore[index]


def request_checkpoint(settings: Settings | None = None) -> bool:
    """`release_wal` without waiting: send CHECKPOINT to the embedded server and hang up. The checkpointer flushes
    the batch's pages (seconds to tens of seconds of disk writes at 1M simulações) while the checks that follow
    read them from memory; closing the connection does not cancel a running command. False when the target is
    not the embedded server (not ours to checkpoint)."""
    settings = settings or get_settings()
    if settings.target_url:
        return False
    conn = connect(server_url(settings), autocommit=True)
    try:
        conn.pgconn.send_query(b"CHECKPOINT")
        while conn.pgconn.flush():  # the command has left this process before the connection closes
            pass
    finally:
        conn.close()
    return True
