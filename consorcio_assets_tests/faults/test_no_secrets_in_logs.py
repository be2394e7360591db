"""A run's logs hold no secret and no PII. A small migration runs through Dagster (`migrate_all`, every stage and
check) against a target reached as a role with a password; then everything the run left for operators is
searched for the password and for the seeded customers' PII values: every event record with its metadata,
the run record, all files of the Dagster instance (event and run storage, compute logs), the Glue jobs' own
stdout/stderr, and what the run printed to the console.

The embedded server trusts local socket connections, so the password is not what lets the run in; the test
checks it is in the URL the run was given, which is what could leak.
"""

from __future__ import annotations

import re
import socket
import uuid
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import dagster as dg
import duckdb
import psycopg
from dagster._serdes import serialize_value
from psycopg import sql

from consorcio_assets.catalog import catalog
from consorcio_assets.source.stand_in import seed
from consorcio_assets.target.analytics import KEY_ENV


def _password_url(server_url: str, tmp_name: str) -> tuple[str, str, str]:
    """(url, role, password) of a new role owning a new database on the test server."""
    role, password = f"mig_{uuid.uuid4().hex[:8]}", f"S3cr3t-{uuid.uuid4().hex}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(tmp_name), sql.Identifier(role)))
    socket = parse_qs(urlparse(server_url).query)["host"][0]
    return f"postgresql://{role}:{password}@/{tmp_name}?host={socket}", role, password


def _drop(server_url: str, database: str, role: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def pii_values(source: Path) -> dict[str, set[str]]:
    """Column → the customers' values of every PII column, as text (CHAR padding trimmed)."""
    columns = [c.name for c in catalog()["Cliente"].columns if c.pii]
    found: dict[str, set[str]] = {c: set() for c in columns}
    with duckdb.connect(str(source), read_only=True) as conn:
        for row in conn.execute(f"SELECT {', '.join(columns)} FROM dbo.Cliente").fetchall():
            for column, value in zip(columns, row):
                if value is not None:
                    found[column].add(format(value, "f") if isinstance(value, Decimal) else str(value).strip())
    return found


def _pattern(value: str) -> re.Pattern:
    """The value as a whole token: a CPF inside a longer run of digits is not that CPF."""
    return re.compile(rf"(?<![\w.]){re.escape(value)}(?![\w])")


def _haystack(
    instance_dir: Path, home: Path, instance: dg.DagsterInstance, run_id: str, console: str
) -> dict[str, str]:
    """Name → text of everything the run left: events, run record, instance files, Glue logs, console."""
    texts = {
        "event log": "\n".join(serialize_value(e) for e in instance.all_logs(run_id)),
        "run record": serialize_value(instance.get_run_by_id(run_id)),
        "console": console,
    }
    for root in (instance_dir, home / "glue" / "logs"):
        for path in sorted(root.rglob("*")):
            if path.is_file():
                texts[str(path.relative_to(home))] = path.read_bytes().decode("utf-8", errors="replace")
    return texts


def test_no_password_or_pii_in_a_run(pg_server_url, tmp_path, monkeypatch, capfd, fault_case):
    fault_case.expect(
        "secrets and PII in a full run's logs",
        "neither the target password, the pseudonymisation "
        "key nor any customer's CPF, name, e-mail, phone, birth date or income appears anywhere",
    )
    database = f"t_{uuid.uuid4().hex[:12]}"
    url, role, password = _password_url(pg_server_url, database)
    assert password in url
    hmac_key = f"k-{uuid.uuid4().hex}"
    source = tmp_path / "source" / "consorcio_simulacao.duckdb"
    seed(source, simulacoes=30, seed=11)
    for name, value in {
        "CONSORCIO_ENV": "local",
        "CONSORCIO_HOME": str(tmp_path),
        "CONSORCIO_TARGET_URL": url,
        KEY_ENV: hmac_key,
        "CONSORCIO_LAKE_URI": (tmp_path / "lake").as_uri(),
        "CONSORCIO_SOURCE_URL": f"duckdb:///{source}",
    }.items():
        monkeypatch.setenv(name, value)
    from consorcio_assets.definitions import defs

    instance_dir = tmp_path / "dagster"
    instance_dir.mkdir()
    try:
        with dg.DagsterInstance.local_temp(str(instance_dir)) as instance:
            result = defs().resolve_job_def("migrate_all").execute_in_process(instance=instance, raise_on_error=False)
            console = "".join(capfd.readouterr())
            texts = _haystack(instance_dir, tmp_path, instance, result.run_id, console)
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        assert "analytics schema rebuilt" in texts["event log"]  # the search covers the whole run
        with psycopg.connect(url) as conn:  # the run really loaded the target it was given
            assert conn.execute("SELECT count(*) FROM consorcio.cliente").fetchone()[0] > 0
    finally:
        _drop(pg_server_url, database, role)
    needles = {"password": {password}, "HMAC key": {hmac_key}, **pii_values(source)}
    leaks = sorted(
        {
            (what, column)
            for column, values in needles.items()
            for value in values
            for what, text in texts.items()
            if _pattern(value).search(text)
        }
    )
    searched = sum(len(t) for t in texts.values())
    fault_case.saw(
        f"{sum(len(v) for v in needles.values())} secret/PII values searched in {len(texts)} logs "
        f"({searched / 1e6:.1f} MB): {len(leaks)} found",
        0,
    )
    assert not leaks, leaks


def test_connection_errors_never_show_the_password(tmp_path, monkeypatch, capfd, fault_case):
    """The failing side: every step that reaches the target fails to connect, and no error shows the URL's
    password (the Glue job's own message, Dagster's failure events with their stack traces, the console)."""
    from consorcio_assets.common.stages import AURORA, TRANSFORMED, asset_key
    from consorcio_assets.defs.glue_aurora import glue_transform_and_load
    from consorcio_assets.defs.lgpd import ANALYTICS_KEYS, analytics_views
    from consorcio_assets.defs.resources import resources_for

    fault_case.expect(
        "target unreachable: connection errors",
        "every step fails naming the server; no error, event or log shows the password",
    )
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    password = f"S3cr3t-{uuid.uuid4().hex}"
    url = f"postgresql://migrador:{password}@127.0.0.1:{closed.getsockname()[1]}/consorcio"
    for name, value in {
        "CONSORCIO_ENV": "local",
        "CONSORCIO_HOME": str(tmp_path),
        "CONSORCIO_TARGET_URL": url,
        "CONSORCIO_LAKE_URI": (tmp_path / "lake").as_uri(),
    }.items():
        monkeypatch.setenv(name, value)
    segmento = catalog()["Segmento"]
    selection = [*ANALYTICS_KEYS, asset_key(TRANSFORMED, segmento), asset_key(AURORA, segmento)]
    (tmp_path / "dagster").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "dagster")) as instance:
        result = dg.materialize(
            [analytics_views, glue_transform_and_load],
            selection=selection,
            instance=instance,
            resources=resources_for("local"),
            raise_on_error=False,
        )
        texts = _haystack(tmp_path / "dagster", tmp_path, instance, result.run_id, "".join(capfd.readouterr()))
    closed.close()
    failures = [e for e in result.all_events if e.is_step_failure]
    assert not result.success and len(failures) == 2
    assert "Connection refused" in texts["event log"] and "127.0.0.1" in texts["event log"]
    leaks = sorted(what for what, text in texts.items() if password in text)
    fault_case.saw(
        f"{len(failures)} steps failed with the server's refusal; password found in {len(leaks)} of {len(texts)} logs",
        0,
    )
    assert not leaks, leaks
