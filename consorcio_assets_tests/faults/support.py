"""What the fault cases share: a snapshot of a table's good version in every zone (to count what a fault lost),
the Glue job started as a process it can kill or pause, and waits on what PostgreSQL shows of a running job."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from consorcio_assets.catalog import Catalog, Table
from consorcio_assets_tests.glue.helpers import job_command, job_env


def digest(folder: Path) -> dict[str, str]:
    """relative path → sha256 of every file under `folder` (hidden work folders included)."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def visible(folder: Path) -> dict[str, str]:
    """The files readers see: no path part starting with '.' or '_' (temporary prefixes, work folders)."""
    return {k: v for k, v in digest(folder).items() if not any(part[:1] in "._" for part in Path(k).parts)}


def aurora_rows(url: str, table: Table) -> list[tuple]:
    """Every row of the table in Aurora ([] when it does not exist), identifiers quoted."""
    name = sql.Identifier(table.target_schema, table.target_name)
    with psycopg.connect(url) as conn:
        if not conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name.as_string(conn),)).fetchone()[0]:
            return []
        return conn.execute(sql.SQL("SELECT * FROM {}").format(name)).fetchall()


def missing(before, after) -> int:
    """How many items of `before` (a multiset) are not in `after`."""
    return sum((Counter(before) - Counter(after)).values())


@dataclass(frozen=True)
class Snapshot:
    """A table's state in the raw zone, the transformed zone and Aurora."""

    raw: dict[str, str]
    transformed: dict[str, str]
    aurora: list[tuple]

    @staticmethod
    def take(url: str | None, lake: Path, table: Table) -> Snapshot:
        return Snapshot(
            visible(lake / "raw" / table.schema / table.name),
            visible(lake / "transformed" / table.target_name),
            aurora_rows(url, table) if url else [],
        )

    def lost(self, now: Snapshot, zones: tuple[str, ...] = ("raw", "transformed", "aurora")) -> int:
        """Files of this version changed or gone from `zones`, plus rows gone from Aurora."""
        return sum(missing(_items(getattr(self, zone)), _items(getattr(now, zone))) for zone in zones)


def _items(state):
    return state.items() if isinstance(state, dict) else state


# -- the Glue job as a process ---------------------------------------------------------------------------------


def start_job(
    lake: Path, table: Table, cat: Catalog, url: str, *args: str, expected_rows: int | None = None
) -> subprocess.Popen:
    """The Glue script in its own process group (so a signal reaches it and nothing else)."""
    return subprocess.Popen(
        job_command(lake, table, cat, *args, expected_rows=expected_rows),
        env=job_env(url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_until(
    condition: Callable[[], object],
    what: str,
    process: subprocess.Popen | None = None,
    timeout: float = 60.0,
    interval: float = 0.005,
):
    """Poll `condition` until it is truthy; fail early if `process` exits first."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            _out, err = process.communicate()
            raise AssertionError(f"{what}: the process exited ({process.returncode}) first:\n{err[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(interval)


def signal_group(process_id: int, signum: int) -> None:
    os.killpg(process_id, signum)


class Monitor:
    """One autocommit connection watching the job from the side, as an operator would with psql."""

    def __init__(self, url: str):
        self.conn = psycopg.connect(url, autocommit=True)

    def close(self) -> None:
        self.conn.close()

    def copy_backends(self, target: str) -> list[int]:
        """Backends of the job's COPY streams into `target` that are running their COPY."""
        return [
            pid
            for (pid,) in self.conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name LIKE %s AND state = 'active' "
                "AND query LIKE 'COPY %%'",
                (f"consorcio-glue:{target}#%",),
            ).fetchall()
        ]

    def copy_in_progress(self, relation: str) -> int | None:
        """Rows a running COPY into `relation` has processed so far (None when no COPY is running)."""
        row = self.conn.execute(
            "SELECT max(tuples_processed) FROM pg_stat_progress_copy WHERE relid = to_regclass(%s)", (relation,)
        ).fetchone()
        return row[0]

    def waiting_on_table(self, relation: str) -> int:
        """Lock requests on `relation` that are waiting."""
        return self.conn.execute(
            "SELECT count(*) FROM pg_locks WHERE relation = to_regclass(%s) AND NOT granted", (relation,)
        ).fetchone()[0]

    def waiting_on_advisory_lock(self) -> int:
        return self.conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()[0]

    def job_backends(self, target: str) -> int:
        return self.conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s", (f"consorcio-glue:{target}%",)
        ).fetchone()[0]

    def staging_tables(self) -> int:
        return self.conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'consorcio_staging'").fetchone()[0]


def error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("ERROR: ")]
    assert lines, f"no ERROR line:\n{stderr[-3000:]}"
    return lines[-1][len("ERROR: ") :]


def hidden_leftovers(lake: Path) -> list[str]:
    """Temporary prefixes a killed job left in the transformed zone (removed by the table's next run)."""
    folder = lake / "transformed"
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) if folder.exists() else []
