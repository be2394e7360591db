"""Seed a source at a scale, run the migration, measure every stage and its comparisons, K times.

Everything runs in a bench CONSORCIO_HOME (`.data/bench/<simulacoes>` by default) with its own source, lake,
embedded PostgreSQL and Dagster instance, so a benchmark never touches the developer's data. Each stage is
measured in its own process(es) through the stage's public entry point, with the process tree's peak RSS:

- end to end: `python -m consorcio_assets.tooling.launch --job migrate_all`, as `consorcio run` does; per-step figures
  from the run's event log;
- extract: `DmsResource.full_load` (the DMS local engine), in a worker process;
- transform and Aurora load: the Glue job's `load_table` per table with the arguments `GlueResource` gives
  Glue, `--stages transformed` (transform alone) and `--stages transformed,aurora` (load, transform included),
  in one worker process (each Glue subprocess's own peak is measured in the end-to-end run);
- checks: the check-only steps of the same `migrate_all` run (their share of its load step), and the
  `verify_migration` job on its own;
- row-level diff: our `rows_match_source` hashdiff of every table beside reladiff's, with three planted
  differences both must find (`row_diff`);
- the floors and the other tools (`worker.py`) right after ours, on the same data.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from consorcio_assets import PROJECT_ROOT
from consorcio_assets.catalog import catalog
from consorcio_assets.tooling import warm
from consorcio_assets.tooling.bench import row_diff
from consorcio_assets.tooling.bench.peak_rss import Measured, run_measured

if TYPE_CHECKING:
    from consorcio_assets.tooling.bench.events import RunFigures

LOG = logging.getLogger("consorcio.bench")
REPO = PROJECT_ROOT
#: the run config `consorcio run` passes (console logs at INFO)
RUN_CONFIG = Path(__file__).resolve().parents[1] / "run_config.yaml"
#: variables of the caller's environment that would point the bench at someone else's data
INHERITED = ("CONSORCIO_SOURCE_URL", "CONSORCIO_TARGET_URL", "CONSORCIO_LAKE_URI", "DAGSTER_HOME", "DAGSTER_PG_URL")


class BenchError(RuntimeError):
    pass


@dataclass
class BenchConfig:
    simulacoes: int = 1_000_000
    runs: int = 3
    quick: bool = False
    home: Path | None = None
    seed: int = 42
    #: extra environment (a test points CONSORCIO_TARGET_URL and DAGSTER_PG_URL at its own databases)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def bench_home(self) -> Path:
        return (self.home or Path(".data") / "bench" / str(self.simulacoes)).resolve()

    @property
    def sample_rows(self) -> int:
        """Rows for the slow comparisons (pandas, awswrangler): 100k, or 5k in --quick."""
        return 5_000 if self.quick else 100_000


# ---------------------------------------------------------------------------------------------- environment


def bench_env(config: BenchConfig) -> dict[str, str]:
    home = config.bench_home
    env = {k: v for k, v in os.environ.items() if k not in INHERITED}
    env.update(
        CONSORCIO_ENV="local",
        CONSORCIO_HOME=str(home),
        CONSORCIO_LAKE_URI=(home / "lake").as_uri(),
        DAGSTER_DISABLE_TELEMETRY="1",
        PYTHONUNBUFFERED="1",
        PYTHONFAULTHANDLER="1",
        # the bench times its own processes; a `consorcio` command it runs (the seed) would otherwise leave the
        # home a warm server. The latency figures switch it on for the commands they time through one.
        **{warm.SWITCH_ENV: "0"},
    )
    env.update(config.env)
    return env


@contextlib.contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """Run in-process code (settings, Dagster instance) against the bench's environment, then restore."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def prepare(config: BenchConfig) -> dict[str, str]:
    """The full environment of the bench's processes: Dagster instance and target URL resolved once."""
    from consorcio_assets.glue_runner.resource import TARGET_URL_ENV
    from consorcio_assets.orchestration.instance import prepare_instance_env
    from consorcio_assets.target.postgres import target_url

    env = bench_env(config)
    with environment(env):
        env = prepare_instance_env()
        env[TARGET_URL_ENV] = target_url()
    return env


def _check(measured: Measured, what: str) -> Measured:
    if measured.returncode != 0:
        tail = (measured.stderr or measured.stdout)[-3000:]
        raise BenchError(f"{what} failed (exit {measured.returncode}):\n{tail}")
    return measured


def _last_json(stdout: str) -> dict:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise BenchError("no JSON result on the process's output")


# ---------------------------------------------------------------------------------------------- source


def ensure_source(config: BenchConfig, env: Mapping[str, str]) -> dict:
    """Seed the stand-in with `consorcio seed` unless this bench home already has it at this scale."""
    home = config.bench_home
    source = home / "source" / "consorcio_simulacao.duckdb"
    marker = home / "source" / "bench-seed.json"
    wanted = {"simulacoes": config.simulacoes, "seed": config.seed}
    if not source.exists() or not marker.exists() or json.loads(marker.read_text()).get("scale") != wanted:
        LOG.warning("seeding %s with %s simulações", source, f"{config.simulacoes:,}")
        started = time.perf_counter()
        argv = [
            sys.executable,
            "-m",
            "consorcio_assets.tooling.cli",
            "seed",
            "--simulacoes",
            str(config.simulacoes),
            "--seed",
            str(config.seed),
            "--force",
        ]
        _check(run_measured(argv, env=dict(env)), "seeding the source")
        seconds = time.perf_counter() - started
        marker.write_text(json.dumps({"scale": wanted, "seconds": seconds}))
    else:
        seconds = json.loads(marker.read_text()).get("seconds")
    tables = source_counts(source)
    return {
        "simulacoes": config.simulacoes,
        "seed": config.seed,
        "rows_total": sum(tables.values()),
        "tables": tables,
        "seed_seconds": seconds,
    }


def source_counts(path: Path) -> dict[str, int]:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        return {
            t.name: con.execute(f'SELECT count(*) FROM "{t.schema}"."{t.name}"').fetchone()[0]  # type: ignore[index]  # one row, always
            for t in catalog().base_tables
        }


def reset_lake(config: BenchConfig) -> None:
    for name in ("lake", "scratch"):
        shutil.rmtree(config.bench_home / name, ignore_errors=True)
    (config.bench_home / "lake").mkdir(parents=True, exist_ok=True)


def reset_target(env: Mapping[str, str]) -> None:
    """Drop what would stop a reload of the bench's target: the `analytics` views (the Glue job's swap cannot
    drop `consorcio.cliente` or `consorcio.simulacao` under them) and the comparisons' scratch schemas. The
    migrated tables stay: every measured load swaps them, as a reload in production does."""
    import psycopg

    from consorcio_assets.glue_runner.resource import TARGET_URL_ENV
    from consorcio_assets.target.analytics import ANALYTICS_SCHEMA
    from consorcio_assets.tooling.bench.floors import FLOOR_SCHEMA
    from consorcio_assets.tooling.bench.reladiff_compare import VIEW_SCHEMA

    with psycopg.connect(env[TARGET_URL_ENV], autocommit=True) as conn:
        for schema in (ANALYTICS_SCHEMA, FLOOR_SCHEMA, VIEW_SCHEMA):
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def reset(config: BenchConfig, env: Mapping[str, str]) -> None:
    reset_lake(config)
    reset_target(env)


# ---------------------------------------------------------------------------------------------- stages


def local_server_dir(env: Mapping[str, str]) -> Path | None:
    """The data directory of the PostgreSQL on this machine that the run writes to, whose CPU time the run's
    figures include: the home's embedded server, or a target URL's socket directory when it is a server's data
    directory (pgserver puts its socket there). None for a remote target."""
    url = env.get("CONSORCIO_TARGET_URL")
    if not url:
        return Path(env["CONSORCIO_HOME"]) / "pg" if env.get("CONSORCIO_HOME") else None
    from urllib.parse import parse_qs, urlsplit

    host = parse_qs(urlsplit(url).query).get("host", [""])[0]
    return Path(host) if host.startswith("/") and (Path(host) / "PG_VERSION").exists() else None


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_figures(measured: Measured) -> dict:
    """What the run cost in CPU: the run's processes, the database server, and the wall time the machine's cores
    could not go below (`cpu_floor_seconds`): a run near its floor is CPU-bound, and only less work speeds it."""
    total = measured.cpu_seconds + measured.server_cpu_seconds
    cores = usable_cores()
    return {
        "cpu_seconds": round(total, 1),
        "cpu_seconds_processes": round(measured.cpu_seconds, 1),
        "cpu_seconds_postgres": round(measured.server_cpu_seconds, 1),
        "cores": cores,
        "cpu_floor_seconds": round(total / cores, 1),
        "cpu_busy": round(total / (measured.wall_seconds * cores), 3) if measured.wall_seconds else None,
    }


def dagster_job(env: Mapping[str, str], job: str) -> tuple[Measured, RunFigures]:
    """Run a job as a user does; wall time and peaks of every process, plus the run's own event log figures."""
    import dagster as dg

    from consorcio_assets.tooling.bench.events import latest_run, run_figures

    started = time.time()
    # created with the code location's origin, like `consorcio run`: the UI lists the bench's runs under their job
    argv = [sys.executable, "-m", "consorcio_assets.tooling.launch", "--job", job]
    if RUN_CONFIG.exists():
        argv += ["-c", str(RUN_CONFIG)]
    measured = run_measured(argv, env=dict(env), server=local_server_dir(env))
    with environment(env), dg.DagsterInstance.get() as instance:
        run = latest_run(instance, job, after=started - 1)
        if run is None:
            _check(measured, f"the Dagster job {job}")
            raise BenchError(f"no run of {job} in the instance after the job ran")
        figures = run_figures(instance, run.run_id)
    if measured.returncode != 0:
        LOG.warning(
            "run %s of %s ended %s: figures kept, the failed steps are in the result (%s)",
            figures.run_id,
            job,
            figures.status,
            ", ".join(figures.failed_steps) or "no step failed",
        )
    return measured, figures


def end_to_end(config: BenchConfig, env: Mapping[str, str], rows_total: int) -> dict:
    """`migrate_all` from an empty lake (the target's tables are reloaded); the reconciliation's share comes
    from the same run's check steps."""
    reset(config, env)
    measured, figures = dagster_job(env, "migrate_all")
    processes = [{"pid": p.pid, "label": p.label, "peak_rss_mb": round(p.peak_rss_mb, 1)} for p in measured.processes]
    stages = {
        stage: {"step_seconds": round(figures.stage_seconds(stage), 3), "rows": figures.stage_rows(stage)}
        for stage in figures.stage_steps
    }
    return {
        "seconds": measured.wall_seconds,
        "rows": rows_total,
        "peak_rss_mb": measured.peak_rss_mb,
        **cpu_figures(measured),
        "processes": processes,
        "run_id": figures.run_id,
        "status": figures.status,
        "run_seconds": figures.seconds,
        "steps": {k: round(v, 3) for k, v in figures.steps.items()},
        "stages": stages,
        "check_steps": sorted(figures.check_steps),
        "check_seconds": figures.check_seconds,
        "checks_total": figures.checks_total,
        "checks_passed": figures.checks_passed,
        "failed_steps": figures.failed_steps,
        "failed_checks": figures.failed_checks,
        "slowest_checks": dict(sorted(figures.check_seconds_each.items(), key=lambda kv: -kv[1])[:10]),
        "load_step_seconds": figures.stage_seconds("aurora"),
    }


def worker(env: Mapping[str, str], task: str, *args: str) -> dict:
    argv = [sys.executable, "-m", "consorcio_assets.tooling.bench.worker", task, *args]
    measured = _check(run_measured(argv, env=dict(env)), f"bench worker {task}")
    return {**_last_json(measured.stdout), "peak_rss_mb": measured.peak_rss_mb, "wall_seconds": measured.wall_seconds}


def glue_stage(env: Mapping[str, str], stages: str, copy_streams: int | None = None, spark: bool = False) -> dict:
    extra = (["--copy-streams", str(copy_streams)] if copy_streams else []) + (["--spark"] if spark else [])
    return worker(env, "glue", "--stages", stages, *extra)


def spark_available() -> bool:
    """pyspark (the `spark` extra) and a Java runtime: the Spark path's row is measured only then."""
    import importlib.util

    return importlib.util.find_spec("pyspark") is not None and shutil.which("java") is not None


def verify_migration(env: Mapping[str, str]) -> dict:
    """Every standalone check on its own (`verify_migration`, in process): its run's span in the event log."""
    measured, figures = dagster_job(env, "verify_migration")
    return {
        "seconds": figures.seconds,
        "wall_seconds": measured.wall_seconds,
        "peak_rss_mb": measured.peak_rss_mb,
        "total": figures.checks_total,
        "passed": figures.checks_passed,
        "status": figures.status,
        "failed_checks": figures.failed_checks,
    }


def one_run(config: BenchConfig, env: Mapping[str, str], rows_total: int, verify: bool) -> dict:
    """One measurement of everything; ours first, then the comparisons on the very same data."""
    scratch = config.bench_home / "scratch"
    run: dict = {"end_to_end": end_to_end(config, env, rows_total)}
    if verify:
        run["verify_migration"] = verify_migration(env)
    run["row_diff"] = row_diff.measure(env)  # ours beside reladiff, planted differences found by both
    reset(config, env)
    run["extract"] = worker(env, "extract")
    run["extract_floor"] = worker(env, "extract-floor", "--out", str(scratch / "extract"))
    run["transform"] = glue_stage(env, "transformed")
    run["transform_floor"] = worker(env, "transform-floor", "--out", str(scratch / "transform"))
    shutil.rmtree(scratch, ignore_errors=True)
    if not config.quick:
        run["aurora_load_single_stream"] = glue_stage(env, "transformed,aurora", copy_streams=1)
    run["aurora_load"] = glue_stage(env, "transformed,aurora")
    if spark_available():  # the same data through the job's Spark path, local[2] (Glue runs it on workers)
        run["aurora_load_spark"] = glue_stage(env, "transformed,aurora", spark=True)
    run["load_floors"] = worker(env, "load-floors", "--sample-rows", str(config.sample_rows))
    from consorcio_assets.tooling.bench.latency import (
        measure,  # the user's commands at the default scale (`latency.py`)
    )

    run["latency"] = measure(config)
    return run


def machine() -> dict:
    import psutil

    versions = {}
    for name in (
        "dagster",
        "duckdb",
        "pyarrow",
        "psycopg",
        "pandas",
        "sqlalchemy",
        "adbc_driver_postgresql",
        "awswrangler",
    ):
        with contextlib.suppress(Exception):
            versions[name] = __import__(name).__version__
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit,
        "versions": versions,
    }


def run_bench(config: BenchConfig, progress=print, after_run=None) -> tuple[list[dict], dict, dict]:
    """(runs, scale, meta) for `report.build`; `after_run(runs, scale, meta)` after each run, so a long
    benchmark stopped midway keeps the runs it finished."""
    env = prepare(config)
    scale = ensure_source(config, env)
    progress(
        f"source: {scale['rows_total']:,} rows in {len(scale['tables'])} tables ({config.simulacoes:,} simulações)"
    )
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": config.quick,
        "home": str(config.bench_home),
        "machine": machine(),
    }
    runs: list[dict] = []
    for i in range(config.runs):
        started = time.perf_counter()
        runs.append(one_run(config, env, scale["rows_total"], verify=True))  # beside reladiff in every run
        progress(f"run {i + 1}/{config.runs} done in {time.perf_counter() - started:,.0f} s")
        if after_run:
            after_run(runs, scale, meta)
    return runs, scale, meta
