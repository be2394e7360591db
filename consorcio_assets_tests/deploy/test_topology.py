"""What the ECS services run, on this machine: `dagster code-server start`, `dagster-webserver` and
`dagster-daemon` with deploy/workspace.yaml and deploy/dagster.yaml (rendered for local use: the default run
launcher instead of ECS, PostgreSQL storage on the embedded server). A run of `migrate_all` for one small table,
launched through the webserver's GraphQL API, is dequeued by the daemon, executed through the code server and
succeeds under its job and code location."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest
import yaml

from consorcio_assets_tests.infra.hcl import load_config

pytestmark = pytest.mark.deploy

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
LOCATION = "consorcio_migration"
TABLE = "segmento"
STAGES = ("sqlserver", "s3_raw", "transformed", "aurora")
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


def render_local_instance(text: str) -> str:
    """deploy/dagster.yaml as the local topology runs it: everything but the ECS run launcher."""
    config = yaml.safe_load(text)
    assert config.pop("run_launcher")["class"] == "EcsRunLauncher"
    return yaml.safe_dump(config, sort_keys=False)


def service_commands(grpc_port: int, web_port: int) -> dict[str, list[str]]:
    """The three containers' commands from infra/dagster.tf, bound to loopback and this machine's paths."""
    replace = {
        "0.0.0.0": "127.0.0.1",
        "${tostring(local.grpc_port)}": str(grpc_port),
        "${tostring(local.webserver_port)}": str(web_port),
        "/opt/dagster/deploy/workspace.yaml": str(DEPLOY / "workspace.yaml"),
    }
    bin_dir = Path(sys.executable).parent
    commands = {}
    for service, spec in load_config().locals["dagster_services"].items():
        command = [replace.get(arg, arg) for arg in spec["command"]]
        commands[service] = [str(bin_dir / command[0]), *command[1:]]
    return commands


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(url: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"{url}/graphql", body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = json.load(response)
    except urllib.error.HTTPError as err:
        raise AssertionError(f"GraphQL answered {err.code}: {err.read().decode()[:2000]}") from None
    assert "errors" not in payload, payload["errors"]
    return payload["data"]


def _wait(what: str, ready, processes: dict, limit_s: float):
    """Poll `ready` until it returns a truthy value; fail naming `what` if a process died or the limit passed."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        for name, proc in processes.items():
            assert proc.poll() is None, f"{name} exited with {proc.returncode} while waiting for {what}"
        try:
            if value := ready():
                return value
        except OSError:
            pass
        time.sleep(2)
    raise AssertionError(f"{what}: not within {limit_s:.0f} s")


@pytest.fixture
def topology(seeded_env, pg_server_url, monkeypatch):
    storage_db = f"dagster_deploy_{os.getpid()}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{storage_db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{storage_db}"')
    home = seeded_env / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(render_local_instance((DEPLOY / "dagster.yaml").read_text()))
    grpc_port, web_port = _free_port(), _free_port()
    env = dict(
        os.environ,
        DAGSTER_HOME=str(home),
        DAGSTER_GRPC_HOST="127.0.0.1",
        DAGSTER_GRPC_PORT=str(grpc_port),
        DAGSTER_PG_URL=pg_server_url.replace("/postgres?", f"/{storage_db}?", 1).replace(
            "postgresql://", "postgresql+psycopg2://", 1
        ),  # as deploy_check demands
        DAGSTER_RUN_TASK_DEFINITION="unused-locally",
    )
    commands = service_commands(grpc_port, web_port)
    processes: dict[str, subprocess.Popen] = {}
    logs = {}
    try:
        for service in ("code-server", "webserver", "daemon"):
            logs[service] = open(seeded_env / f"{service}.log", "w")  # noqa: SIM115 - closed at teardown
            processes[service] = subprocess.Popen(
                commands[service],
                env=env,
                cwd=seeded_env,
                stdout=logs[service],
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            if service == "code-server":  # the webserver and the daemon need it, as on ECS
                health = [
                    str(Path(sys.executable).parent / "dagster"),
                    "api",
                    "grpc-health-check",
                    "--port",
                    str(grpc_port),
                ]
                _wait(
                    "the code server's gRPC health check",
                    lambda health=health: (
                        subprocess.run(health, env=env, capture_output=True, timeout=30).returncode == 0
                    ),
                    processes,
                    300,
                )
        url = f"http://127.0.0.1:{web_port}"
        _wait(
            "the webserver",
            lambda: urllib.request.urlopen(f"{url}/server_info", timeout=5).status == 200,
            processes,
            300,
        )
        yield url, processes, seeded_env
    finally:
        for proc in processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in processes.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for log in logs.values():
            log.close()
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{storage_db}" WITH (FORCE)')


LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
RUN = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status jobName repositoryOrigin { repositoryLocationName repositoryName }
                 assetSelection { path } }
  }
}"""
MATERIALIZED = """
query Materialized($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) {
    ... on Asset { assetMaterializations(limit: 1) { runId } }
  }
}"""


def test_migrate_all_for_one_table_succeeds_through_the_webserver_daemon_and_code_server(topology):
    url, processes, home = topology
    keys = [{"path": [stage, TABLE]} for stage in STAGES]
    params = {
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": "__repository__",
            "jobName": "migrate_all",
            "assetSelection": keys,
        },
        "runConfigData": {},
    }
    launched = _graphql(url, LAUNCH, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    assert launched["run"]["status"] == "QUEUED"  # the daemon, not the webserver, starts it

    def finished():
        run = _graphql(url, RUN, {"runId": run_id})["runOrError"]
        return run if run["status"] in FINISHED else None

    run = _wait(f"run {run_id} to finish (logs in {home})", finished, processes, 900)
    assert run["status"] == "SUCCESS", f"run {run_id} ended {run['status']}: see {home}/*.log"
    assert run["jobName"] == "migrate_all"
    assert run["repositoryOrigin"]["repositoryLocationName"] == LOCATION
    assert sorted(k["path"] for k in run["assetSelection"]) == sorted(k["path"] for k in keys)
    for stage in ("s3_raw", "transformed", "aurora"):
        asset = _graphql(url, MATERIALIZED, {"key": {"path": [stage, TABLE]}})["assetOrError"]
        assert asset["assetMaterializations"] == [{"runId": run_id}], stage
    with psycopg.connect(os.environ["CONSORCIO_TARGET_URL"]) as conn:
        rows = conn.execute(f"SELECT count(*) FROM consorcio.{TABLE}").fetchone()[0]
    assert rows > 0


def test_the_local_rendering_changes_only_the_run_launcher():
    original = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    rendered = yaml.safe_load(render_local_instance((DEPLOY / "dagster.yaml").read_text()))
    original.pop("run_launcher")
    assert rendered == original
