"""One measured task in its own process, so the parent can watch its memory: `python -m
consorcio_assets.tooling.bench.worker TASK [--out DIR] [--sample-rows N]`. Prints one JSON line of figures.

Tasks: `extract` (ours: the DMS local engine through `DmsResource.full_load`), `glue` (ours: the Glue job's
`load_table` per table with the arguments `GlueResource` gives Glue, then its foreign-key validation; one
process for all tables, so 12 interpreter start-ups do not swamp a small run), `extract-floor` (DuckDB COPY TO
parquet), `transform-floor` (pyarrow read + write of the raw files), `load-floors` (server-side COPY of a CSV,
ADBC, pandas `to_sql` twice, awswrangler). The environment (CONSORCIO_HOME...) selects the bench's data.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from consorcio_assets.catalog import TARGET_SCHEMA, Table, catalog
from consorcio_assets.settings import get_settings
from consorcio_assets.tooling.bench import floors

LOG = logging.getLogger("consorcio.bench")
#: the table the sampled comparisons (pandas, awswrangler) use: the largest one
SAMPLE_TABLE = "SimulacaoParcela"


def _figures(t: floors.Throughput) -> dict:
    return {**asdict(t), "rows_per_s": t.rows_per_s, "mb_per_s": t.mb_per_s}


def migrated_tables() -> list[Table]:
    """Every table and view the migration carries (views land in Aurora as tables), parents first."""
    return list(catalog().load_order())


def raw_files(table: Table) -> list[Path]:
    """The LOAD files the extract wrote for `table` (local lake)."""
    from consorcio_assets.common.lake_zones import get_lake
    from consorcio_assets.dms.layout import list_files, table_prefix
    from consorcio_assets.dms.settings_files import load_settings

    fs, root = get_lake().filesystem()
    prefix = table_prefix(load_settings().endpoint, table)
    return [Path(root, f.path) for f in list_files(fs, root, prefix)]


def extract() -> dict:
    from consorcio_assets.defs.resources import initialized

    tables = migrated_tables()
    dms = initialized("dms", mode="local")["dms"]
    started = time.perf_counter()
    report = dms.full_load(tables, log=LOG)
    seconds = time.perf_counter() - started
    rows = sum(r.full_load_rows for r in report.tables.values())
    size = sum(r.bytes for r in report.tables.values())
    return _figures(floors.Throughput(rows, seconds, size))


def glue(stages: list[str], copy_streams: int | None, spark: bool = False) -> dict:
    """Every table through the Glue job, parents first; the closing foreign-key validation when loading.
    `spark`: the job's Spark path in one local[2] session (started once, outside the timings, as Glue's is)."""
    from consorcio_assets.defs.resources import initialized
    from consorcio_assets.glue_runner.local_client import argv_of
    from consorcio_assets.glue_runner.spec import table_spec
    from consorcio_glue import load as job
    from consorcio_glue.args import parse_args
    from consorcio_glue.main import run

    session, startup = None, None
    if spark:
        from consorcio_glue.spark import spark_session

        started = time.perf_counter()
        session = spark_session()
        startup = time.perf_counter() - started
    resource = initialized("glue", mode="local")["glue"]
    cat = catalog()
    aurora = "aurora" in stages
    rows, seconds, streams = 0, 0.0, None
    for table in cat.load_order():
        arguments = resource.job_arguments(table_spec(table, cat), stages, run_id="bench", report_checks=False)
        if copy_streams:
            arguments["--copy-streams"] = str(copy_streams)
        streams = int(arguments["--copy-streams"])
        args = parse_args(argv_of({**arguments, "--spark": "on" if spark else "off"}))
        started = time.perf_counter()
        out = run(args, None)
        streams = out["aurora"]["copy_streams"] if aurora else streams
        seconds += time.perf_counter() - started
        rows += out["aurora"]["rows_written"] if aurora else out["transformed"]["rows"]
    if aurora:
        tables = ",".join(t.target_name for t in cat.load_order())
        args = parse_args(argv_of({"--action": "validate", "--tables": tables, **resource.target_arguments()}))
        started = time.perf_counter()
        job.validate_batch(args, None)
        seconds += time.perf_counter() - started
    if session is not None:
        session.stop()
    return {
        **_figures(floors.Throughput(rows, seconds)),
        "copy_streams": streams if aurora else None,
        "spark_startup_seconds": startup,
    }


def extract_floor(out: Path) -> dict:
    settings = get_settings()
    pairs = [(t.schema, t.name) for t in migrated_tables()]
    return _figures(floors.duckdb_copy_parquet(settings.source_path, pairs, out))


def transform_floor(out: Path) -> dict:
    return _figures(floors.pyarrow_read_write({t.target_name: raw_files(t) for t in migrated_tables()}, out))


def _raw_table(table: Table, limit: int | None = None) -> pa.Table:
    files = raw_files(table)
    data = pa.concat_tables(pq.read_table(f) for f in files) if files else table.dms_schema().empty_table()
    return data.slice(0, limit) if limit else data


def _verified(url: str, table: str, result: floors.Throughput, expected: int) -> floors.Throughput:
    found = floors.count_rows(url, table)
    if found != expected:
        raise RuntimeError(f"{table}: {found} rows in {floors.FLOOR_SCHEMA} after loading {expected}")
    return result


def load_floors(sample_rows: int) -> dict:
    """The COPY floor and ADBC on every migrated table (all rows), pandas and awswrangler on a sample."""
    from consorcio_assets.target.postgres import sqlalchemy_url, target_url

    url = target_url()
    floors.reset_floor_schema(url)
    csv_dir = floors.public_dir()
    try:
        pairs = [(TARGET_SCHEMA, t.target_name) for t in migrated_tables()]
        files = floors.export_csv(url, pairs, csv_dir)
        results = {"copy_floor": _figures(floors.server_copy_csv(url, files))}
        for path in files.values():
            path.unlink()
        adbc = floors.Throughput(0, 0.0)
        for t in migrated_tables():
            data = _raw_table(t)
            adbc += _verified(
                url, f"adbc_{t.target_name}", floors.adbc_ingest(url, {f"adbc_{t.target_name}": data}), data.num_rows
            )
        results["adbc"] = _figures(adbc)
        sample = _raw_table(catalog()[SAMPLE_TABLE], sample_rows)
        sa_url = sqlalchemy_url(url)
        for name, measure in (
            ("to_sql", lambda: floors.pandas_to_sql(sa_url, "to_sql", sample)),
            ("to_sql_multi", lambda: floors.pandas_to_sql(sa_url, "to_sql_multi", sample, "multi")),
            ("awswrangler", lambda: floors.awswrangler_to_sql(url, "awswrangler", sample)),
        ):
            results[name] = _figures(_verified(url, name, measure(), sample.num_rows))
        results["sample_rows"] = sample.num_rows
        return results
    finally:
        for path in csv_dir.iterdir():
            path.unlink()
        csv_dir.rmdir()
        floors.drop_floor_schema(url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="consorcio_assets.tooling.bench.worker")
    parser.add_argument("task", choices=["extract", "glue", "extract-floor", "transform-floor", "load-floors"])
    parser.add_argument("--stages", default="transformed,aurora", help="glue: the job's --stages")
    parser.add_argument("--copy-streams", type=int, help="glue: COPY connections per table (default the resource's)")
    parser.add_argument("--spark", action="store_true", help="glue: the job's Spark path in local[2]")
    parser.add_argument("--out", type=Path, help="scratch directory for the floors' output files")
    parser.add_argument("--sample-rows", type=int, default=100_000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.task == "extract":
        result = extract()
    elif args.task == "glue":
        result = glue(args.stages.split(","), args.copy_streams, args.spark)
    elif args.task == "extract-floor":
        result = extract_floor(args.out)
    elif args.task == "transform-floor":
        result = transform_floor(args.out)
    else:
        result = load_floors(args.sample_rows)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
