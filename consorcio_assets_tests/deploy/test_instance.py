"""deploy/dagster.yaml and deploy/workspace.yaml against Dagster's own schemas, and the pools they cap."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import yaml
from dagster._config import validate_config
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.workspace.config_schema import ensure_workspace_config
from dagster_aws.ecs import EcsRunLauncher

from consorcio_assets.orchestration.event_storage import PooledPostgresEventLogStorage
from consorcio_assets.orchestration.pools import GLUE_POOL, SQLSERVER_POOL
from consorcio_assets.settings import SERVICES, SETTINGS_BY_NAME, WEBSERVER, required_in

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ENV_REF = re.compile(r"env:\s*([A-Z][A-Z0-9_]*)")


def load_instance(directory: Path, text: str) -> dict:
    (directory / "dagster.yaml").write_text(text)
    config, _ = dagster_instance_config(str(directory))
    return config


@pytest.fixture
def instance_config(tmp_path) -> dict:
    return load_instance(tmp_path, (DEPLOY / "dagster.yaml").read_text())


def test_instance_passes_dagsters_schema_with_the_ecs_run_launcher(instance_config):
    launcher = instance_config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_aws.ecs", "EcsRunLauncher")
    result = validate_config(EcsRunLauncher.config_type(), launcher["config"])
    assert result.success, result.errors
    assert result.value["task_definition"] == {"env": "DAGSTER_RUN_TASK_DEFINITION"}
    assert result.value["container_name"] == "code-server"  # the code server's container in infra/dagster.tf
    assert result.value["secrets_tag"] is None  # secrets come from the task definition, not a ListSecrets scan
    coordinator = instance_config["run_coordinator"]
    assert coordinator["class"] == "QueuedRunCoordinator"
    assert validate_config(QueuedRunCoordinator.config_type(), coordinator["config"]).success


def test_storage_monitoring_retries_and_limits(instance_config):
    url = {"postgres_url": {"env": "DAGSTER_PG_URL"}}
    assert instance_config["run_storage"] == {
        "module": "dagster_postgres.run_storage",
        "class": "PostgresRunStorage",
        "config": url,
    }
    assert instance_config["schedule_storage"]["config"] == url
    events = instance_config["event_log_storage"]
    assert (events["module"], events["class"]) == (
        PooledPostgresEventLogStorage.__module__,
        "PooledPostgresEventLogStorage",
    )
    assert validate_config(PooledPostgresEventLogStorage.config_type(), events["config"]).success
    assert instance_config["run_monitoring"]["enabled"] is True
    assert instance_config["run_monitoring"]["max_resume_run_attempts"] == 0
    assert instance_config["run_retries"]["enabled"] is True
    assert instance_config["run_retries"]["max_retries"] >= 1
    assert instance_config["run_retries"]["retry_on_asset_or_op_failure"] is False
    pools = instance_config["concurrency"]["pools"]
    assert pools["granularity"] == "op" and pools["default_limit"] == 1
    runs = instance_config["concurrency"]["runs"]
    assert 1 <= runs["max_concurrent_runs"] <= 10
    assert {"key": "dagster/job_name", "value": "migrate_all", "limit": 1} in runs["tag_concurrency_limits"]


def test_a_broken_instance_is_rejected(tmp_path):
    """The validation above can fail: an unknown launcher key, or a run_queue that fights `concurrency`."""
    text = (DEPLOY / "dagster.yaml").read_text()
    bad_launcher = yaml.safe_load(text)
    bad_launcher["run_launcher"]["config"]["cluster_name"] = "x"
    assert not validate_config(EcsRunLauncher.config_type(), bad_launcher["run_launcher"]["config"]).success
    with pytest.raises(DagsterInvalidConfigError, match="max_concurrent_runs"):
        load_instance(
            tmp_path,
            text.replace(
                "    max_user_code_failure_retries: 3",
                "    max_concurrent_runs: 9\n    max_user_code_failure_retries: 3",
            ),
        )


def test_no_credential_is_written_in_the_files():
    for path in DEPLOY.glob("*.yaml"):
        text = path.read_text()
        assert not re.search(r"\w+://[^\s:/]+:[^\s@]+@", text), f"{path.name} holds a URL with a password"
        assert not re.search(r"(?i)(password|secret_access_key|token)\s*:", text), path.name


def test_every_variable_the_files_read_is_a_required_setting():
    """The instance is read by every container (and run); the workspace only by webserver and daemon."""
    instance_vars = set(ENV_REF.findall((DEPLOY / "dagster.yaml").read_text()))
    workspace_vars = set(ENV_REF.findall((DEPLOY / "workspace.yaml").read_text()))
    assert instance_vars == {"DAGSTER_PG_URL", "DAGSTER_RUN_TASK_DEFINITION"}
    assert workspace_vars == {"DAGSTER_GRPC_HOST", "DAGSTER_GRPC_PORT"}
    for service in SERVICES:
        assert instance_vars <= {s.name for s in required_in(service)}, service
    assert workspace_vars <= {s.name for s in required_in(WEBSERVER)}
    assert all(name in SETTINGS_BY_NAME for name in instance_vars | workspace_vars)


def test_workspace_points_at_the_code_location_grpc_server(monkeypatch):
    monkeypatch.setenv("DAGSTER_GRPC_HOST", "code-server.consorcio-prod-dagster.internal")
    monkeypatch.setenv("DAGSTER_GRPC_PORT", "4000")
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    resolved = ensure_workspace_config(workspace, str(DEPLOY / "workspace.yaml"))
    [entry] = resolved["load_from"]
    server = entry["grpc_server"]
    assert (server["host"], server["port"]) == ("code-server.consorcio-prod-dagster.internal", 4000)
    pyproject = (DEPLOY.parent / "pyproject.toml").read_text()
    assert f'code_location_name = "{server["location_name"]}"' in pyproject


def test_the_ecs_run_launcher_starts_with_the_code_server_task_definition(monkeypatch):
    """The launcher as the daemon builds it: it describes DAGSTER_RUN_TASK_DEFINITION and finds its container."""
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "sa-east-1")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())["run_launcher"]["config"]
    with mock_aws():
        import boto3

        boto3.client("ecs").register_task_definition(
            family="consorcio-prod-dagster-code-server",
            containerDefinitions=[{"name": "code-server", "image": "repo/dagster:1", "memory": 4096}],
        )
        monkeypatch.setenv("DAGSTER_RUN_TASK_DEFINITION", "consorcio-prod-dagster-code-server")
        launcher = EcsRunLauncher(**validate_config(EcsRunLauncher.config_type(), config).value)
        assert launcher.task_definition.endswith(":task-definition/consorcio-prod-dagster-code-server:1")
        boto3.client("ecs").register_task_definition(
            family="other", containerDefinitions=[{"name": "run", "image": "repo/dagster:1", "memory": 512}]
        )
        monkeypatch.setenv("DAGSTER_RUN_TASK_DEFINITION", "other")
        with pytest.raises(Exception, match="code-server"):
            EcsRunLauncher(**validate_config(EcsRunLauncher.config_type(), config).value)


def _pools() -> dict[str, str | None]:
    from consorcio_assets.definitions import defs

    definitions = defs() if callable(defs) else defs
    graph = definitions.resolve_asset_graph()
    pools = {}
    for assets_def in graph.assets_defs:
        if assets_def.is_executable and assets_def.node_def is not None:
            pools[assets_def.node_def.name] = getattr(assets_def.node_def, "pool", None)
    return pools


def test_steps_that_load_sqlserver_or_glue_are_in_their_pools():
    pools = _pools()
    assert pools["dms_full_load"] == SQLSERVER_POOL
    assert pools["glue_transform_and_load"] == GLUE_POOL
    from consorcio_assets.defs.checks import GROUPS, READS_SOURCE

    reads_source = {
        name for name, kinds in GROUPS.items() if any("c.source" in inspect.getsource(kind.run) for kind in kinds)
    }
    assert reads_source == READS_SOURCE, "a check group's reads of the source changed: update READS_SOURCE"
    assert {name: pools[name] for name in GROUPS} == {
        name: SQLSERVER_POOL if name in READS_SOURCE else None for name in GROUPS
    }
    pooled = {"dms_full_load", "glue_transform_and_load", *GROUPS}
    assert {pools[n] for n in pools if n not in pooled} <= {None}, "only SQL Server and Glue steps are pooled"
