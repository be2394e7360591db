"""The image's entrypoint: a container with a missing or unusable setting exits at start with one line naming it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from consorcio_assets.deployment.deploy_check import EXIT_MISCONFIGURED, EXIT_NOT_RUNNABLE, check, service_of
from consorcio_assets.settings import CODE_SERVER, DAEMON, SERVICES, WEBSERVER, required_in

COMMANDS = {
    CODE_SERVER: ["dagster", "code-server", "start", "--port", "4000"],
    WEBSERVER: ["dagster-webserver", "--port", "3000"],
    DAEMON: ["dagster-daemon", "run"],
}
SECRET_VALUE = "postgresql+psycopg2://dagster:hunter2-hunter2@db.internal:5432/dagster"
GOOD = {
    "CONSORCIO_ENV": "aws",
    "DAGSTER_HOME": "/opt/dagster/home",
    "DAGSTER_PG_URL": SECRET_VALUE,
    "DAGSTER_RUN_TASK_DEFINITION": "consorcio-prod-dagster-code-server",
    "DAGSTER_GRPC_HOST": "code-server.consorcio-prod-dagster.internal",
    "DAGSTER_GRPC_PORT": "4000",
    "CONSORCIO_SOURCE_URL": "mssql+pymssql://reader:s3cr3t-s3cr3t@sql.corp:1433/ConsorcioSimulacao",
    "CONSORCIO_TARGET_URL": "postgresql://checker:s3cr3t-s3cr3t@aurora.internal:5432/consorcio",
    "CONSORCIO_PII_HMAC_KEY": "k" * 48,
    "CONSORCIO_LAKE_URI": "s3://lake",
    "CONSORCIO_PIPES_URI": "s3://pipes",
    "CONSORCIO_DMS_TASK_ARN": "arn:aws:dms:sa-east-1:1:task:X",
    "CONSORCIO_GLUE_JOB_NAME": "consorcio-prod-load",
    "CONSORCIO_TARGET_SECRET_ID": "arn:aws:secretsmanager:sa-east-1:1:secret:loader",
}


def test_commands_map_to_their_container_and_runs_to_the_code_server():
    assert {service_of(c) for c in COMMANDS.values()} == set(SERVICES)
    assert service_of(["dagster", "api", "execute_run", "{}"]) == CODE_SERVER  # what EcsRunLauncher runs
    with pytest.raises(ValueError, match="unknown command"):
        service_of(["bash", "-c", "true"])


@pytest.mark.parametrize("service", SERVICES)
def test_a_complete_environment_starts(service):
    assert check(COMMANDS[service], GOOD) is None


@pytest.mark.parametrize("service,name", [(s, x.name) for s in SERVICES for x in required_in(s)])
def test_each_missing_setting_is_named_on_one_line(service, name):
    environ = {k: v for k, v in GOOD.items() if k != name}
    line = check(COMMANDS[service], environ)
    assert line is not None and "\n" not in line
    assert name in line and service in line
    assert not any(v in line for v in GOOD.values() if len(v) > 12), "a value leaked into the message"


def test_blank_unusable_and_local_values_are_refused():
    assert "DAGSTER_PG_URL is not set" in check(COMMANDS[DAEMON], {**GOOD, "DAGSTER_PG_URL": "  "})
    assert "DAGSTER_GRPC_PORT must be a whole number" in check(COMMANDS[WEBSERVER], {**GOOD, "DAGSTER_GRPC_PORT": "x"})
    assert "CONSORCIO_ENV must be aws" in check(COMMANDS[CODE_SERVER], {**GOOD, "CONSORCIO_ENV": "local"})
    line = check(COMMANDS[DAEMON], {**GOOD, "DAGSTER_PG_URL": "postgresql://dagster:hunter2-hunter2@db/dagster"})
    assert "DAGSTER_PG_URL must start with postgresql+psycopg2://" in line and "hunter2" not in line


def test_only_what_a_container_needs_is_required():
    """The webserver gets no source or target credentials; the code server no gRPC address."""
    web = {s.name for s in required_in(WEBSERVER)}
    assert not web & {"CONSORCIO_SOURCE_URL", "CONSORCIO_TARGET_URL", "CONSORCIO_PII_HMAC_KEY"}
    assert {"DAGSTER_GRPC_HOST", "DAGSTER_GRPC_PORT"}.isdisjoint({s.name for s in required_in(CODE_SERVER)})


def _entrypoint(command: list[str], environ: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONSORCIO_", "DAGSTER_"))} | {
        "CONSORCIO_WARM": "0"
    }
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])  # the image's venv
    return subprocess.run(
        [sys.executable, "-m", "consorcio_assets.deployment.deploy_check", *command],
        env={**env, **environ},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_entrypoint_exits_with_one_line_naming_the_missing_secret():
    proc = _entrypoint(COMMANDS[DAEMON], {k: v for k, v in GOOD.items() if k != "DAGSTER_PG_URL"})
    assert proc.returncode == EXIT_MISCONFIGURED
    assert proc.stderr.strip().splitlines() == ["deploy_check: daemon cannot start: DAGSTER_PG_URL is not set"]
    assert proc.stdout == ""


def test_the_entrypoint_execs_the_command_when_all_is_set():
    proc = _entrypoint([sys.executable, "-c", "import os; print(os.environ['DAGSTER_GRPC_PORT'])"], GOOD)
    assert proc.returncode == EXIT_MISCONFIGURED and "unknown command" in proc.stderr  # only known commands run
    proc = _entrypoint(["dagster-daemon", "--help"], GOOD)
    assert proc.returncode == 0, proc.stderr
    assert "liveness-check" in proc.stdout and proc.stderr == ""
    proc = _entrypoint(["dagster-daemon-missing"], GOOD)
    assert proc.returncode == EXIT_MISCONFIGURED and len(proc.stderr.splitlines()) == 1


def test_a_missing_executable_is_one_line_too(tmp_path):
    (tmp_path / "dagster-daemon").write_text("not executable")
    proc = _entrypoint(["dagster-daemon", "run"], {**GOOD, "PATH": str(tmp_path)})
    assert proc.returncode == EXIT_NOT_RUNNABLE
    assert proc.stderr.strip().splitlines() == ["deploy_check: cannot run 'dagster-daemon': Permission denied"]
