"""The job's Spark path (Glue 5's Spark 3.5) in `local[2]`: the raw files' row groups spread over two executors
give Aurora tables and a transformed zone identical to the in-process path's, and a failing executor fails the run
leaving the previous table, the transformed zone and no staging table behind.

One Spark session for the module (the job reuses an active session, as it reuses Glue's), on the small seeded
source's `simulacao` and `simulacao_parcela`, their parents loaded by the in-process path first."""

from __future__ import annotations

import os
import shutil
import uuid

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from consorcio_assets.catalog import Table
from consorcio_assets.dms.resource import LocalDms
from consorcio_assets.glue_runner.spec import spec_argument, table_spec
from consorcio_assets_tests.glue.data import CAT
from consorcio_assets_tests.glue.helpers import fetch, ok, run_job
from consorcio_glue.args import parse_args
from consorcio_glue.errors import JobError
from consorcio_glue.main import run

pytestmark = pytest.mark.spark
URL_ENV = "CONSORCIO_TEST_SPARK_TARGET_URL"  # set before the session starts: its Python workers inherit it
TABLES = ("Simulacao", "SimulacaoParcela")


def _ancestors(table: Table) -> list[str]:
    names: list[str] = []
    for fk in table.foreign_keys:
        if fk.ref_table != table.name and fk.ref_table not in names:
            names += [n for n in _ancestors(CAT[fk.ref_table]) if n not in names] + [fk.ref_table]
    return names


def digest(url: str, table: str) -> tuple[int, str]:
    """(rows, md5 of every row's text in a fixed order): equal digests, equal tables."""
    return fetch(
        url, f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM consorcio.{table} t"
    )[0]


def transformed(lake, table: Table) -> pa.Table:
    key = [c.target_name for k in table.primary_key for c in table.columns if c.name == k]
    return pq.read_table(lake / "transformed" / table.target_name).sort_by([(c, "ascending") for c in key])


@pytest.fixture(scope="module")
def migrated(small_source, pg_server_url, tmp_path_factory):
    """(url, lake, expected rows) with the tables and their parents loaded by the in-process path, and the
    module's Spark session (started after the target URL is in the environment its Python workers inherit)."""
    from consorcio_glue.spark import spark_session

    name = f"spark_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_server_url.replace("/postgres?", f"/{name}?", 1)
    lake = tmp_path_factory.mktemp("spark") / "lake"
    names = list(dict.fromkeys(n for t in TABLES for n in [*_ancestors(CAT[t]), t]))
    report = LocalDms(lake_uri=lake.as_uri(), source_url=f"duckdb:///{small_source}").full_load([CAT[n] for n in names])
    rows = {n: report.tables[n].full_load_rows for n in names}
    for n in names:
        ok(run_job(lake, CAT[n], CAT, url, expected_rows=rows[n]))
    os.environ[URL_ENV] = url
    session = spark_session()
    yield url, lake, rows
    session.stop()
    os.environ.pop(URL_ENV, None)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def spark_run(lake, table: Table, expected_rows: int, *args: str) -> dict:
    argv = [
        "--table-spec",
        spec_argument(table_spec(table, CAT, expected_rows=expected_rows)),
        "--lake-uri",
        lake.as_uri(),
        "--target-url-env",
        URL_ENV,
        "--spark",
        "on",
        "--fk-validation",
        "immediate",
        *args,
    ]
    return run(parse_args(argv), None)


@pytest.mark.parametrize("name", TABLES)
def test_spark_path_loads_what_the_in_process_path_loads(migrated, name):
    url, lake, rows = migrated
    table = CAT[name]
    before, zone = digest(url, table.target_name), transformed(lake, table)
    assert before[0] == rows[name] > 0
    # small work items: the rows of each raw file cut into several items over both executors
    out = spark_run(lake, table, rows[name], "--part-rows", str(rows[name] // 5 + 1))
    assert out["aurora"]["rows_written"] == rows[name] and out["aurora"]["copy_streams"] == 2
    assert digest(url, table.target_name) == before
    assert transformed(lake, table).equals(zone)
    assert out["transformed"]["files"] > 1
    assert fetch(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'consorcio_staging'")[0][0] == 0


def test_a_failing_executor_leaves_the_previous_table(migrated, tmp_path):
    url, good_lake, rows = migrated
    table = CAT["Simulacao"]
    lake = tmp_path / "lake"
    shutil.copytree(good_lake / "raw", lake / "raw")
    shutil.copytree(good_lake / "transformed" / table.target_name, lake / "transformed" / table.target_name)
    files = sorted(p for p in (lake / "raw").rglob("LOAD*.parquet") if table.name in p.parts)
    assert files, sorted(str(p.relative_to(lake)) for p in (lake / "raw").rglob("*"))
    first, folder = files[0], files[0].parent
    column = next(c for c in table.columns if c.family in ("char", "text") and c.length)
    bad = pq.read_table(first).slice(0, 1)
    bad = bad.set_column(
        bad.column_names.index(column.name),
        bad.schema.field(column.name),
        pa.array(["x" * (column.length + 1)], bad.schema.field(column.name).type),
    )
    pq.write_table(bad, folder / "LOAD000000FF.parquet")  # the last item: an executor's share fails
    before, zone = digest(url, table.target_name), transformed(lake, table)
    with pytest.raises(JobError) as failure:
        spark_run(lake, table, rows[table.name] + 1, "--part-rows", "100")
    message = str(failure.value)
    assert f"{table.name}.{column.name}: longer than" in message and "LOAD000000FF.parquet row 1" in message
    assert digest(url, table.target_name) == before
    assert transformed(lake, table).equals(zone)
    assert sorted(p.name for p in (lake / "transformed").iterdir()) == [table.target_name]  # no temporary prefix
    assert fetch(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'consorcio_staging'")[0][0] == 0


def _relation_id(url: str, table: str) -> int:
    return fetch(url, f"SELECT 'consorcio.{table}'::regclass::oid")[0][0]


def test_a_deferred_swap_stages_the_table_until_the_batch_publishes(migrated):
    """`--swap deferred` on Spark: the driver records the staging table and the executors' parts for the batch's
    publish run instead of swapping; the table and the transformed zone change when that run swaps them."""
    url, lake, rows = migrated
    table = CAT["Simulacao"]
    name, batch = table.target_name, f"spark-{uuid.uuid4().hex[:8]}"
    before, zone, live = digest(url, name), transformed(lake, table), _relation_id(url, name)
    out = spark_run(
        lake,
        table,
        rows[table.name],
        "--part-rows",
        str(rows[table.name] // 3 + 1),
        "--swap",
        "deferred",
        "--batch-tables",
        name,
        "--run-id",
        batch,
    )
    assert out["aurora"]["rows_written"] == rows[table.name] and out["transformed"]["files"] > 1
    [(staged, prefix)] = fetch(
        url, "SELECT table_name, transformed FROM consorcio_staging._staged WHERE batch_id = %s", (batch,)
    )
    assert staged == name and (lake / prefix / "part-00000.parquet").is_file()  # the parts wait, not swapped
    assert _relation_id(url, name) == live  # the previous table is still the one readers see

    published = run(
        parse_args(
            [
                "--action",
                "publish",
                "--tables",
                name,
                "--run-id",
                batch,
                "--lake-uri",
                lake.as_uri(),
                "--target-url-env",
                URL_ENV,
            ]
        ),
        None,
    )
    assert published["published"] == [name]
    assert _relation_id(url, name) != live and digest(url, name) == before
    assert transformed(lake, table).equals(zone) and not (lake / prefix).exists()
    assert fetch(url, "SELECT count(*) FROM consorcio_staging._staged")[0][0] == 0
    assert (
        fetch(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'consorcio_staging' AND tablename <> '_staged'")[
            0
        ][0]
        == 0
    )
