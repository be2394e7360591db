"""The embedded server keeps the WAL a bulk load needs (up to max_wal_size, so it checkpoints rarely) only while
loading: after a batch, `release_wal` checkpoints and the segments are deleted, not kept for reuse, so a run
leaves about min_wal_size of WAL on disk instead of up to 4 GB."""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

import psycopg

from consorcio_assets.settings import get_settings
from consorcio_assets.target import postgres

REPO = Path(__file__).resolve().parents[2]
LOAD_ROWS = 400_000  # ~110 MB of WAL: several times min_wal_size


def _load(conn: psycopg.Connection, table: str) -> None:
    """Rows into a table created by an earlier transaction, as the Glue job's COPY streams fill its staging table:
    written to the WAL (with wal_level minimal, rows in the table their own transaction created are not)."""
    conn.execute(f"CREATE TABLE {table} (g integer, pad text)")
    conn.execute(f"INSERT INTO {table} SELECT g, repeat('x', 200) FROM generate_series(1, {LOAD_ROWS}) AS g")


def _wal_bytes(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT coalesce(sum(size), 0) FROM pg_ls_waldir()").fetchone()[0]


def test_wal_is_released_after_a_batch(monkeypatch, fault_case):
    fault_case.expect(
        "embedded server: WAL after a bulk load",
        "the load may use up to max_wal_size (4 GB); after "
        "the batch the WAL is back near min_wal_size (32 MB); the loaded rows stay",
    )
    home = REPO / ".data" / f"wal-{uuid.uuid4().hex[:8]}"  # as root, pgserver's user must reach it: not in /tmp
    monkeypatch.setenv("CONSORCIO_HOME", str(home))
    monkeypatch.delenv("CONSORCIO_TARGET_URL", raising=False)
    pgdata = home / "pg"
    postgres._started_server.cache_clear()
    try:
        url = postgres.ensure_database(postgres.TARGET_DB)
        with psycopg.connect(url, autocommit=True) as conn:
            settings = {
                n: conn.execute("SELECT current_setting(%s)", (n,)).fetchone()[0] for n in postgres.EMBEDDED_SETTINGS
            }
            assert settings == postgres.EMBEDDED_SETTINGS
            _load(conn, "carga")
            loaded = _wal_bytes(conn)
            left = postgres.release_wal(get_settings())
            assert left == _wal_bytes(conn)
            assert conn.execute("SELECT count(*) FROM carga").fetchone()[0] == LOAD_ROWS
            # the Glue step's variant: the checkpoint is requested and nobody waits; the server still releases it
            _load(conn, "carga2")
            again = _wal_bytes(conn)
            assert postgres.request_checkpoint(get_settings()) is True
            deadline = time.monotonic() + 120
            while _wal_bytes(conn) > 48 * 2**20:
                assert time.monotonic() < deadline, "the requested checkpoint never released the WAL"
                time.sleep(0.2)
            assert conn.execute("SELECT count(*) FROM carga2").fetchone()[0] == LOAD_ROWS
        fault_case.saw(
            f"WAL {loaded / 2**20:.0f} MiB after the load, {left / 2**20:.0f} MiB after release_wal; "
            f"{again / 2**20:.0f} MiB after a second load, released after request_checkpoint",
            0,
        )
        assert loaded > 3 * 32 * 2**20 and left <= 48 * 2**20 and again > 3 * 32 * 2**20
    finally:
        _stop(pgdata)
        shutil.rmtree(home, ignore_errors=True)


def test_release_wal_leaves_other_servers_alone(local_env):
    """A target the user runs (CONSORCIO_TARGET_URL, Aurora) is never checkpointed by the migration."""
    assert postgres.release_wal(get_settings()) is None
    assert postgres.request_checkpoint(get_settings()) is False


def _stop(pgdata: Path) -> None:
    """Stop the test's own server (as the user pgserver runs it as, when the tests run as root)."""
    from pgserver._commands import pg_ctl

    server = postgres._embedded_server(str(pgdata)) if (pgdata / "postmaster.pid").exists() else None
    postgres._started_server.cache_clear()
    if server is not None:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=server.system_user)
