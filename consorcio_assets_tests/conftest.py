"""Shared fixtures: one embedded PostgreSQL for the whole session, a fresh database per test that needs
one, and a small seeded source stand-in. Tests never touch the developer's .data."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings as _hypothesis_settings

REPO = Path(__file__).resolve().parent.parent
TEST_PG = REPO / ".data" / "test-pg"

# the fault suite's summary table: loaded here so that pytest-xdist's controller, which sees every worker's
# reports, has its hooks (a conftest below this folder is only loaded by the workers)
pytest_plugins = ["consorcio_assets_tests.faults.report"]


#: marker of each folder, file or test of the suite (path relative to this folder, `::test` prefix for a test; the
#: longest match wins), so that `make test-fast` (`-m "not browser and not ..."`) leaves the slow kinds out;
#: `slow` holds what runs whole Dagster jobs, the Glue job in subprocesses or large seeds (tens of seconds each).
#: The markers are registered in pyproject.toml.
MARKERS: dict[str, str] = {
    "ui/": "browser",
    "infra/": "infra",
    "faults/": "faults",
    "test_bench.py": "bench",
    "test_bench_row_diff.py": "bench",
    "glue/test_spark.py": "spark",
    "deploy/test_topology.py": "deploy",
    "test_cli_runs.py": "slow",
    "test_reload.py": "slow",
    "glue/test_parent_wait.py": "slow",
    "test_sqlserver_path.py": "slow",
    "checks/test_defs_verify.py": "slow",
    "glue/test_live_views.py": "slow",
    "glue/test_semantics.py": "slow",
    "glue/test_aws_moto.py": "slow",
    "glue/test_job.py": "slow",
    "glue/test_packaging.py": "slow",
    "glue/test_dagster_local.py": "slow",
    "glue/test_roundtrip.py": "slow",
    "sensors/test_automation.py": "slow",
    "dms/test_s3_raw_assets.py": "slow",
    "deploy/test_image.py::test_the_project_works_installed_as_a_wheel": "slow",
    "test_rules_formulas.py::test_vectorised_instalments_equal_the_reference": "slow",
    "test_cli.py::test_summary_of_an_unknown_job_says_it_does_not_exist": "slow",
    "test_cli.py::test_an_unknown_job_is_refused_before_seeding": "slow",
}
FAST_EXCLUDES = sorted(set(MARKERS.values()))


def marker_of(relative: str) -> str | None:
    """The marker of a test given its node id under the suite's folder (`dir/test_x.py::test_y[param]`)."""
    path = relative.split("::", 1)[0]

    def matches(key: str) -> bool:
        if key.endswith("/"):
            return path.startswith(key)
        if "::" in key:
            return relative == key or relative.startswith((key + "[", key + "::"))
        return path == key

    found = [key for key in MARKERS if matches(key)]
    return MARKERS[max(found, key=len)] if found else None


def pytest_collection_modifyitems(config, items) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        relative = item.path.resolve().relative_to(here).as_posix()
        name = marker_of("::".join([relative, *item.nodeid.split("::")[1:]]))
        if name is not None:
            item.add_marker(getattr(pytest.mark, name))


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--snapshot-update",
        action="store_true",
        default=False,
        help="rewrite consorcio_assets_tests/snapshots/graph.txt from the loaded Definitions",
    )


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """libpq URL (database `postgres`) of the embedded server shared by all tests and xdist workers."""
    import logging

    import pgserver

    from consorcio_assets.target.postgres import keep_private

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    TEST_PG.parent.mkdir(parents=True, exist_ok=True)
    keep_private(TEST_PG)
    return pgserver.get_server(str(TEST_PG), cleanup_mode=None).get_uri("postgres")


def _new_database(pg_server_url: str, prefix: str):
    """A new empty database on the shared server (its libpq URL); dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_server_url.replace("/postgres?", f"/{name}?", 1)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def fresh_db(pg_server_url) -> str:
    """A new empty database on the shared server; dropped afterwards."""
    yield from _new_database(pg_server_url, "t")


@pytest.fixture
def storage_db(pg_server_url) -> str:
    """Another new empty database, for Dagster's run storage next to a target in `fresh_db`."""
    yield from _new_database(pg_server_url, "d")


@pytest.fixture
def local_env(tmp_path, monkeypatch, fresh_db) -> Path:
    """A local-mode environment in tmp_path: lake and source under it, target on a fresh database."""
    monkeypatch.setenv("CONSORCIO_ENV", "local")
    monkeypatch.setenv("CONSORCIO_HOME", str(tmp_path))
    monkeypatch.setenv("CONSORCIO_TARGET_URL", fresh_db)
    monkeypatch.setenv("CONSORCIO_LAKE_URI", (tmp_path / "lake").as_uri())
    monkeypatch.delenv("CONSORCIO_SOURCE_URL", raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto's server (S3, Glue, ...) on a free loopback port, shared by the session's AWS-path tests."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def small_source(tmp_path_factory) -> Path:
    """A stand-in seeded with 300 simulações (read-only: copy it before changing it)."""
    from consorcio_assets.source.stand_in import seed

    path = tmp_path_factory.mktemp("source") / "consorcio_simulacao.duckdb"
    seed(path, simulacoes=300, seed=7)
    return path


@pytest.fixture
def seeded_env(local_env, small_source, monkeypatch) -> Path:
    """local_env whose source is a private copy of the small seeded stand-in."""
    import shutil

    target = local_env / "source" / "consorcio_simulacao.duckdb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(small_source, target)
    monkeypatch.setenv("CONSORCIO_SOURCE_URL", f"duckdb:///{target}")
    return local_env


os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ.setdefault("CONSORCIO_WARM", "0")  # commands the tests start run cold: test_warm.py starts its servers

# Property tests run on a shared 2-core machine: wall-clock deadlines there only measure the neighbours.
_hypothesis_settings.register_profile("consorcio", deadline=None)
_hypothesis_settings.load_profile("consorcio")
