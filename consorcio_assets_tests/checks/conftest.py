"""Fixtures of the checks' tests: the small seeded source, migrated once per session by the reference
loader into a template database; each test gets its own copy of it (CREATE DATABASE ... TEMPLATE) to
corrupt, and its own copy of the transformed zone."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from consorcio_assets.catalog import catalog
from consorcio_assets.checks.sides import SOURCE, TARGET, Side
from consorcio_assets.target.postgres import sqlalchemy_url
from consorcio_assets_tests.checks.reference import load


def _url(server_url: str, name: str) -> str:
    return server_url.replace("/postgres?", f"/{name}?", 1)


@pytest.fixture(scope="session")
def reference_migration(pg_server_url, small_source, tmp_path_factory):
    """(template database name, lake root, rows per table) of the small source, migrated once."""
    name = f"tpl_{uuid.uuid4().hex[:12]}"
    lake = tmp_path_factory.mktemp("lake")
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    counts = load(small_source, _url(pg_server_url, name), lake)
    yield name, lake, counts
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def migrated(pg_server_url, reference_migration) -> str:
    """libpq URL of a private copy of the migrated database (safe to corrupt)."""
    template = reference_migration[0]
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield _url(pg_server_url, name)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def lake_copy(reference_migration, tmp_path) -> Path:
    """A private copy of the migrated transformed zone."""
    target = tmp_path / "lake"
    shutil.copytree(reference_migration[1], target)
    return target


@pytest.fixture
def source_side(small_source) -> Side:
    engine = sa.create_engine(f"duckdb:///{small_source}", connect_args={"read_only": True}, poolclass=sa.NullPool)
    yield Side(SOURCE, engine)
    engine.dispose()


@pytest.fixture
def target_side(migrated) -> Side:
    engine = sa.create_engine(sqlalchemy_url(migrated), poolclass=sa.NullPool)
    yield Side(TARGET, engine)
    engine.dispose()


@pytest.fixture
def corrupt(migrated):
    """Run SQL on the private target copy (the corruption under test)."""

    def run(*statements: str) -> None:
        with psycopg.connect(migrated, autocommit=True) as conn:
            # a corruption is a faulty load, not an application write: no ROWVERSION trigger stamps it
            conn.execute("SET session_replication_role = replica")
            for statement in statements:
                conn.execute(statement)

    return run


@pytest.fixture(scope="session")
def cat():
    return catalog()


@pytest.fixture
def fetch(migrated):
    """First row of a query on the private target copy (to pick the row a test corrupts)."""

    def run(statement: str):
        with psycopg.connect(migrated) as conn:
            return conn.execute(statement).fetchone()

    return run
