"""Two runs of the same table at once: the second waits (a PostgreSQL advisory lock for the Glue job, a lock on
the table's folder for the DMS engine) and the table ends up as one complete version, never a mix."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import psycopg
import pyarrow.parquet as pq

from consorcio_assets_tests.faults.support import Monitor, aurora_rows, missing, start_job, wait_until
from consorcio_assets_tests.glue import data
from consorcio_assets_tests.glue.data import CAT
from consorcio_assets_tests.glue.helpers import write_raw

REPO = Path(__file__).resolve().parents[2]


def _version(n: int, label: str) -> list[dict]:
    rows = data.segmentos(n)
    for row in rows:
        row["Descricao"] = f"{row['Descricao']} ({label})"
    return rows


def test_two_glue_runs_of_one_table_at_once(segmento, tmp_path, fault_case):
    fault_case.expect(
        "two Glue runs of one table at once",
        "the second waits for the first's advisory lock; the table ends as the last run's complete version",
    )
    table = segmento.table
    lake_b = tmp_path / "lake-b"
    shutil.copytree(segmento.lake, lake_b)
    write_raw(segmento.lake, table, data.table("Segmento", _version(6, "A")))
    write_raw(lake_b, table, data.table("Segmento", _version(5, "B")))
    monitor = Monitor(segmento.url)
    with psycopg.connect(segmento.url) as reader:  # holds the table: run A waits at its swap, holding its lock
        reader.execute("LOCK TABLE consorcio.segmento IN ACCESS SHARE MODE")
        first = start_job(segmento.lake, table, CAT, segmento.url, expected_rows=6)
        wait_until(lambda: monitor.waiting_on_table("consorcio.segmento"), "run A never reached its swap", first)
        second = start_job(lake_b, table, CAT, segmento.url, expected_rows=5)
        wait_until(monitor.waiting_on_advisory_lock, "run B did not wait for run A's lock", second)
        assert first.poll() is None and second.poll() is None
    outcomes = [job.communicate(timeout=120) for job in (first, second)]
    monitor.close()
    for job, (_, err) in zip((first, second), outcomes):
        assert job.returncode == 0, err[-3000:]
    assert "another run is loading segmento: waiting for its lock" in outcomes[1][1]
    final = aurora_rows(segmento.url, table)
    expected = [tuple(r.values()) for r in _version(5, "B")]
    lost = missing(expected, final)
    fault_case.saw(f"run B waited for run A's lock; Aurora holds run B's {len(final)} rows, no mix", lost)
    assert lost == 0 and len(final) == 5
    assert pq.read_table(lake_b / "transformed" / "segmento").num_rows == 5


TWO_LOADS = textwrap.dedent("""
    import logging, sys, time
    from consorcio_assets.catalog import catalog
    from consorcio_assets.dms import engine
    from consorcio_assets.dms.mappings import table_mappings
    from consorcio_assets.dms.settings_files import load_settings
    from consorcio_assets.common.lake_zones import Lake

    real_close = engine.LoadFolder._close_file
    def slow_close(self):  # a slow writer: the other load starts while this one is mid-table
        real_close(self)
        print("FILE", flush=True)
        time.sleep(float(sys.argv[3]))
    engine.LoadFolder._close_file = slow_close
    logging.basicConfig(level=logging.INFO)
    settings = load_settings().with_endpoint(MaxFileSize=1, RowGroupLength=200)
    report = engine.run_full_load(table_mappings([catalog()["SimulacaoParcela"]]),
                                  source_url="duckdb:///" + sys.argv[1], lake=Lake(sys.argv[2]), settings=settings)
    result = report.tables["SimulacaoParcela"]
    print("DONE", result.state, result.full_load_rows, len(result.files), flush=True)
""")


def test_two_dms_loads_of_one_table_at_once(small_source, tmp_path, fault_case):
    fault_case.expect(
        "two DMS engine loads of one table at once",
        "the second waits for the first; both complete; the raw zone holds one whole load",
    )
    lake = (tmp_path / "lake").as_uri()

    def load(pause: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", TWO_LOADS, str(small_source), lake, pause],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )

    slow = load("0.3")
    assert slow.stdout.readline().strip() == "FILE"  # mid-table: one file written, more to come
    fast = load("0")
    results = [job.communicate(timeout=120) for job in (slow, fast)]
    for job, (out, err) in zip((slow, fast), results):
        assert job.returncode == 0 and "DONE Table completed" in out, err[-3000:]
    assert "dbo.SimulacaoParcela: another load of the table is running: waiting for it" in results[1][1]
    folder = tmp_path / "lake" / "raw" / "dbo" / "SimulacaoParcela"
    rows = sum(pq.read_metadata(p).num_rows for p in folder.rglob("*.parquet"))
    with duckdb.connect(str(small_source), read_only=True) as conn:
        source_rows = conn.execute("SELECT count(*) FROM dbo.SimulacaoParcela").fetchone()[0]
    lost = source_rows - rows
    fault_case.saw(
        f"the second load waited for the first; both completed; raw zone: {rows} rows (source {source_rows})", lost
    )
    assert lost == 0
