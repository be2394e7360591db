"""Fixtures of the fault suite: a good version of a table already loaded (raw zone, transformed zone, Aurora),
cloned per test from a template so each case breaks its own copy; and a private copy of the small source.
The summary table's fixture and hooks are in `report.py` (see there why)."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from consorcio_assets.catalog import Table
from consorcio_assets_tests.faults.support import Snapshot
from consorcio_assets_tests.glue import data
from consorcio_assets_tests.glue.data import CAT
from consorcio_assets_tests.glue.helpers import ok, run_job, write_raw


def _url(server_url: str, name: str) -> str:
    return server_url.replace("/postgres?", f"/{name}?", 1)


@dataclass
class Loaded:
    """A table whose good version is in every zone; `before` is that version."""

    url: str
    lake: Path
    table: Table
    before: Snapshot

    def now(self) -> Snapshot:
        return Snapshot.take(self.url, self.lake, self.table)

    def lost(self, zones: tuple[str, ...] = ("transformed", "aurora")) -> int:
        """What the good version lost in the zones the Glue job writes (or in `zones`)."""
        return self.before.lost(self.now(), zones)


@pytest.fixture(scope="module")
def segmento_template(pg_server_url, tmp_path_factory):
    """(template database, lake) with dbo.Segmento's good version (4 rows) loaded by the Glue job."""
    name = f"tpl_{uuid.uuid4().hex[:12]}"
    lake = tmp_path_factory.mktemp("segmento") / "lake"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    write_raw(lake, CAT["Segmento"], data.table("Segmento", data.segmentos()))
    ok(run_job(lake, CAT["Segmento"], CAT, _url(pg_server_url, name), expected_rows=4))
    yield name, lake
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def segmento(pg_server_url, segmento_template, tmp_path) -> Loaded:
    """A private copy of the template: its own database and lake, Segmento's good version in both."""
    template, template_lake = segmento_template
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    lake = tmp_path / "lake"
    shutil.copytree(template_lake, lake)
    url = _url(pg_server_url, name)
    yield Loaded(url, lake, CAT["Segmento"], Snapshot.take(url, lake, CAT["Segmento"]))
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def source_copy(small_source, tmp_path) -> Path:
    """A private copy of the small seeded source (300 simulações), safe to alter."""
    path = tmp_path / "source" / "consorcio_simulacao.duckdb"
    path.parent.mkdir(parents=True)
    shutil.copy(small_source, path)
    return path
