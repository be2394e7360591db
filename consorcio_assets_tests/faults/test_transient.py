"""Transient failures are retried with exponential backoff and full jitter, a bounded number of times, and only
when a later attempt can succeed: a refused or dropped PostgreSQL connection, AWS throttling and connection
errors. Final errors (a missing database) fail at once."""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import re
import socket
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, EndpointConnectionError

from consorcio_assets.dms.resource import AwsDms
from consorcio_assets.glue_runner.resource import AwsGlue
from consorcio_assets.target.connect import connect_postgres
from consorcio_assets_tests.faults.proxy import FlakyFront
from consorcio_assets_tests.faults.support import aurora_rows
from consorcio_assets_tests.glue import data
from consorcio_assets_tests.glue.data import CAT
from consorcio_assets_tests.glue.helpers import URL_ENV, job_command, ok, write_raw
from consorcio_core.resilience import backoff, retry, transient_postgres

PASSWORD = "n0t-in-any-log"


def _database(url: str) -> str:
    return url.split("?")[0].rsplit("/", 1)[1]


def test_backoff_is_exponential_with_full_jitter():
    rng = random.Random(7)
    delays = [backoff(attempt, base=0.5, cap=4.0, rng=rng.random) for attempt in range(6)]
    assert all(0 <= d < min(4.0, 0.5 * 2**i) for i, d in enumerate(delays))
    assert len(set(delays)) == len(delays)  # jittered, not a fixed ladder
    assert backoff(10, base=0.5, cap=4.0, rng=lambda: 0.999) < 4.0  # capped


def test_refused_connection_is_retried_until_the_server_is_up(fresh_db, fault_case, caplog):
    fault_case.expect(
        "PostgreSQL connection refused, then the server comes up",
        "retried with jittered backoff; connects; the log names the server, never the password",
    )
    front = FlakyFront(fresh_db)
    delays: list[float] = []

    def sleep(seconds: float) -> None:  # the server comes up during the second wait
        delays.append(seconds)
        if len(delays) == 2:
            front.open()
        time.sleep(seconds)

    url = front.url(_database(fresh_db), PASSWORD)
    caplog.set_level(logging.WARNING, "consorcio_assets.target.connect")
    try:
        with retry(
            lambda: psycopg.connect(url),
            transient=transient_postgres,
            what="connecting to the target",
            base=0.05,
            sleep=sleep,
        ) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        front.close()
    assert len(delays) == 2 and all(0 <= d < 0.05 * 2**i for i, d in enumerate(delays))
    assert "Connection refused" in caplog.text and PASSWORD not in caplog.text
    fault_case.saw(f"{len(delays)} refused attempts, waits {', '.join(f'{d:.3f}s' for d in delays)}, then connected", 0)


def test_retries_are_bounded(fresh_db, fault_case, caplog):
    fault_case.expect(
        "PostgreSQL never comes up",
        "gives up after the attempt limit with the server's refusal and the redacted URL; no password anywhere",
    )
    front = FlakyFront(fresh_db)  # never opened
    waits: list[float] = []
    caplog.set_level(logging.WARNING, "consorcio_assets.target.connect")
    try:
        with pytest.raises(psycopg.OperationalError) as failure:
            connect_postgres(front.url(_database(fresh_db), PASSWORD), attempts=3, base=0.01, sleep=waits.append)
    finally:
        front.close()
    text = "\n".join([str(failure.value), *failure.value.__notes__, caplog.text])
    assert len(waits) == 2 and "gave up after 3 attempts" in text and "Connection refused" in text
    assert f"127.0.0.1:{front.port}" in text and "***" in text and PASSWORD not in text
    fault_case.saw(failure.value.__notes__[0].replace(PASSWORD, "?"), 0)


def test_final_errors_are_not_retried(pg_server_url, fault_case):
    fault_case.expect("PostgreSQL answers FATAL (database does not exist)", "no retry: fails at once")
    waits: list[float] = []
    with pytest.raises(psycopg.OperationalError, match='database "no_such_database" does not exist'):
        connect_postgres(pg_server_url.replace("/postgres?", "/no_such_database?"), sleep=waits.append)
    assert waits == []
    fault_case.saw("raised on the first attempt, no wait", 0)


def test_glue_job_retries_dropped_connections(fresh_db, tmp_path, fault_case):
    fault_case.expect(
        "Glue job: PostgreSQL drops its first connections",
        "the job's connect retries with backoff and the load completes",
    )
    lake = tmp_path / "lake"
    write_raw(lake, CAT["Segmento"], data.table("Segmento", data.segmentos()))
    front = FlakyFront(fresh_db, drop=2)
    front.open()
    try:
        done = subprocess.run(
            job_command(lake, CAT["Segmento"], CAT, expected_rows=4),
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, URL_ENV: front.url(_database(fresh_db), PASSWORD)},
        )
    finally:
        front.close()
    ok(done)
    retried = [line for line in done.stderr.splitlines() if "retrying in" in line]
    assert len(retried) == 2 and PASSWORD not in done.stderr and len(aurora_rows(fresh_db, CAT["Segmento"])) == 4
    fault_case.saw(
        f"{len(retried)} dropped connections retried ({retried[0].split(' WARNING ')[-1][:90]}…), 4 rows loaded", 0
    )


# -- AWS APIs: botocore's standard retry mode, set on every client the project makes -------------------------


AWS = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class _Body:
    def __init__(self, payload: bytes):
        self.payload = payload

    def stream(self, **_):
        yield self.payload


def _throttle_first(client, times: int) -> list[float]:
    """Answer the client's first `times` attempts with DMS's throttling error; return every attempt's time."""
    attempts: list[float] = []

    def before_send(request, **_):
        attempts.append(time.monotonic())
        if len(attempts) <= times:
            body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
            return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.1"}, _Body(body))
        return None

    client.meta.events.register("before-send", before_send)
    return attempts


DMS = {
    "replication_task_arn": "arn:aws:dms:us-east-1:123456789012:task:T",
    "lake_uri": "s3://lake/zone",
    "source_url": "mssql+pyodbc://",
}
GLUE = {"lake_uri": "s3://lake/zone", "target_secret_id": "aurora"}


def test_aws_throttling_is_retried_with_backoff(moto_endpoint, fault_case):
    fault_case.expect(
        "AWS API throttling (DMS ThrottlingException)",
        "retried with jittered exponential backoff; succeeds; bounded when throttling persists",
    )
    resource = AwsDms(**DMS, endpoint_url=moto_endpoint, max_attempts=2, **AWS)  # 2 retries
    client = resource.dms_client()
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
    attempts = _throttle_first(client, 2)
    assert client.describe_replication_tasks()["ReplicationTasks"] == []
    waits = [b - a for a, b in itertools.pairwise(attempts)]
    assert len(attempts) == 3 and waits[0] < 1.5 and waits[1] < 2.5  # rand × 1 s, then rand × 2 s
    always = resource.dms_client()
    persistent = _throttle_first(always, 99)
    with pytest.raises(ClientError, match="ThrottlingException"):
        always.describe_replication_tasks()
    assert len(persistent) == 3  # bounded
    fault_case.saw(
        f"2 throttled attempts then success (waits {waits[0]:.2f}s, {waits[1]:.2f}s); persistent "
        f"throttling: ThrottlingException after {len(persistent)} attempts",
        0,
    )


def test_aws_connection_errors_are_retried_and_bounded(fault_case):
    fault_case.expect(
        "AWS endpoint unreachable",
        "retried a bounded number of times, then a clear EndpointConnectionError naming the endpoint",
    )
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: refused
    endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
    client = AwsDms(**DMS, endpoint_url=endpoint, max_attempts=2, **AWS).dms_client()
    attempts: list[float] = []
    client.meta.events.register("before-send", lambda **_: attempts.append(time.monotonic()))
    with pytest.raises(EndpointConnectionError) as failure:
        client.describe_replication_tasks()
    closed.close()
    assert len(attempts) == 3 and endpoint in str(failure.value)
    fault_case.saw(f"{failure.value!s} after {len(attempts)} attempts", 0)


def test_every_aws_client_uses_the_standard_retry_mode():
    clients = {
        "dms": AwsDms(**DMS, **AWS).dms_client(),
        "s3 (dms resource)": AwsDms(**DMS, **AWS).s3_client(),
        "glue": AwsGlue(**GLUE, **AWS).glue_client(),
    }
    for name, client in clients.items():
        retries = client.meta.config.retries
        assert retries.get("mode") == "standard" and 3 <= retries.get("total_max_attempts", 0) <= 10, name


def test_one_retry_configuration_builds_every_client():
    """No module builds a botocore Config or a client of its own: they all go through `boto_config`."""
    root = Path(__file__).resolve().parents[2]
    own = re.compile(r"botocore\.config|Config\(retries|construct_boto_client_retry_config|boto3\.client\(")
    allowed = {"consorcio_core/resilience.py", "consorcio_glue/aurora.py"}  # the builder, and the job's one client
    found = [
        str(p.relative_to(root))
        for d in ("consorcio_assets", "consorcio_core", "consorcio_glue")
        for p in (root / d).rglob("*.py")
        if own.search(p.read_text())
    ]
    assert sorted(set(found) - allowed) == []
    assert "boto_config()" in (root / "consorcio_glue" / "aurora.py").read_text()
