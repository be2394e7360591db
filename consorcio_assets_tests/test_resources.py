"""The resources are configuration: one set per mode, built when the definitions load (never at import), secrets
as `dg.EnvVar` (the UI shows the variable's name, not its value), every name declared in the settings registry."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import dagster as dg
import pytest

from consorcio_assets.common.lake_resource import LakeResource
from consorcio_assets.defs.lgpd import PiiKey
from consorcio_assets.defs.resources import configured, resources_for
from consorcio_assets.dms.resource import AwsDms, LocalDms
from consorcio_assets.glue_runner.resource import AwsGlue, LocalGlue
from consorcio_assets.settings import SETTINGS_BY_NAME
from consorcio_assets.source.resource import SourceDb
from consorcio_assets.target.resource import TargetDb

AWS_ENV = {
    "CONSORCIO_ENV": "aws",
    "CONSORCIO_LAKE_URI": "s3://consorcio-lake/zone",
    "CONSORCIO_SOURCE_URL": "mssql+pyodbc://migrador:source-pw@sql.internal/ConsorcioSimulacao",
    "CONSORCIO_TARGET_URL": "postgresql://migrador:target-pw@aurora.internal/consorcio",
    "CONSORCIO_TARGET_SECRET_ID": "arn:aws:secretsmanager:sa-east-1:123456789012:secret:aurora",
    "CONSORCIO_DMS_TASK_ARN": "arn:aws:dms:sa-east-1:123456789012:task:FULL",
    "CONSORCIO_PII_HMAC_KEY": "k" * 40,
    "CONSORCIO_GLUE_COPY_STREAMS": "4",
    "CONSORCIO_GLUE_MAX_CAPACITY": "0.0625",
}
COMMON = {"source_db": SourceDb, "target_db": TargetDb, "pii_key": PiiKey, "lake": LakeResource}
TYPES = {"local": {**COMMON, "dms": LocalDms, "glue": LocalGlue}, "aws": {**COMMON, "dms": AwsDms, "glue": AwsGlue}}


def project_defs() -> dg.Definitions:
    from consorcio_assets.definitions import defs

    return defs()


def env_vars(resource) -> dict[str, str]:
    """field → variable name of every field configured by `dg.EnvVar` (or `dg.EnvVar.int`)."""
    return {
        name: getattr(resource, name).env_var_name
        for name in type(resource).model_fields
        if hasattr(getattr(resource, name), "env_var_name")
    }


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    monkeypatch.setenv("CONSORCIO_HOME", str(tmp_path))
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    return AWS_ENV


def test_local_definitions_load_the_local_resource_set(local_env):
    defs = project_defs()
    assert {k: type(v) for k, v in defs.resources.items()} == TYPES["local"]
    dg.Definitions.validate_loadable(defs)  # every asset, check and sensor finds its resources
    assert defs.resources["glue"].log_dir == str(local_env / "glue" / "logs")
    assert env_vars(defs.resources["target_db"]) == {"url": "CONSORCIO_TARGET_URL"}  # the fixture sets it


def test_aws_definitions_load_the_aws_resource_set_from_the_environment(aws_env):
    defs = project_defs()
    assert {k: type(v) for k, v in defs.resources.items()} == TYPES["aws"]
    dg.Definitions.validate_loadable(defs)
    dms, glue = defs.resources["dms"], defs.resources["glue"]
    assert env_vars(dms) == {
        "lake_uri": "CONSORCIO_LAKE_URI",
        "source_url": "CONSORCIO_SOURCE_URL",
        "replication_task_arn": "CONSORCIO_DMS_TASK_ARN",
    }
    assert env_vars(glue) == {
        "lake_uri": "CONSORCIO_LAKE_URI",
        "copy_streams": "CONSORCIO_GLUE_COPY_STREAMS",
        "target_secret_id": "CONSORCIO_TARGET_SECRET_ID",
    }
    assert glue.max_capacity == 0.0625 and glue.job_name == "consorcio-glue-job"  # a float, and a default
    with dg.build_resources({"dms": dms, "glue": glue}) as built:  # what a run gets: the values, resolved
        assert built.dms.replication_task_arn == aws_env["CONSORCIO_DMS_TASK_ARN"]
        assert built.glue.copy_streams == 4 and built.glue.target_arguments() == {
            "--target-secret-id": aws_env["CONSORCIO_TARGET_SECRET_ID"]
        }


@pytest.mark.parametrize("mode", ["local", "aws"])
def test_secrets_are_env_vars_and_every_name_is_declared(aws_env, monkeypatch, mode):
    monkeypatch.setenv("CONSORCIO_ENV", mode)
    if mode == "local":
        monkeypatch.setenv("CONSORCIO_LAKE_URI", "file:///tmp/lake")
    resources = resources_for(mode)
    configured_by = {n: v for r in resources.values() for n, v in env_vars(r).items()}
    assert configured_by, "no resource field comes from the environment"
    for resource in resources.values():
        for field, name in env_vars(resource).items():
            assert name in SETTINGS_BY_NAME, f"{type(resource).__name__}.{field}: {name} is not in the registry"
        for field in type(resource).model_fields:
            value = getattr(resource, field)
            assert not (
                isinstance(value, str)
                and not isinstance(value, dg.EnvVar)
                and any(value == aws_env[n] for n, s in SETTINGS_BY_NAME.items() if s.secret and n in aws_env)
            ), f"{type(resource).__name__}.{field} holds a secret's value: it would show in the UI"
    secrets = {v for r in resources.values() for v in env_vars(r).values() if SETTINGS_BY_NAME[v].secret}
    assert {"CONSORCIO_SOURCE_URL", "CONSORCIO_TARGET_URL", "CONSORCIO_PII_HMAC_KEY"} <= secrets


def test_a_required_aws_setting_is_an_env_var_even_when_unset(monkeypatch):
    monkeypatch.delenv("CONSORCIO_DMS_TASK_ARN", raising=False)
    assert isinstance(configured("CONSORCIO_DMS_TASK_ARN", environ={}), dg.EnvVar)
    assert configured("CONSORCIO_DMS_S3_ROLE_ARN", None, environ={}) is None
    with pytest.raises(KeyError, match="not declared"):
        configured("CONSORCIO_NOT_A_SETTING", None, environ={})


def test_a_run_without_a_required_variable_fails_naming_it(aws_env, monkeypatch):
    monkeypatch.delenv("CONSORCIO_DMS_TASK_ARN")
    dms = resources_for("aws")["dms"]
    with pytest.raises(dg.DagsterInvalidConfigError, match="CONSORCIO_DMS_TASK_ARN"), dg.build_resources({"dms": dms}):
        pass


def test_nothing_reads_the_environment_at_import():
    """Importing the definitions' modules reads no CONSORCIO_* variable: the mode and its settings are read
    when the definitions load (`defs()`), so a code server's environment is what a run gets."""
    probe = textwrap.dedent("""
        import importlib, os, pkgutil

        class Recording(dict):
            reads = set()
            def get(self, key, default=None):
                self.reads.add(key)
                return super().get(key, default)
            def __getitem__(self, key):
                self.reads.add(key)
                return super().__getitem__(key)
            def __contains__(self, key):
                self.reads.add(key)
                return super().__contains__(key)

        os.environ = Recording(os.environ)
        import consorcio_assets.defs as package
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"consorcio_assets.defs.{module.name}")
        import consorcio_assets.definitions
        print(sorted(name for name in Recording.reads if name.startswith("CONSORCIO_")))
    """)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    # the one exception: the watchdog that ends a run's processes with the `consorcio run` that owns them
    assert result.stdout.strip().splitlines()[-1] == "['CONSORCIO_RUN_OWNER']"


def test_local_definitions_import_no_aws_library(tmp_path):
    """Building the local definitions imports neither dagster_aws (the whole package with any of its modules,
    ~0.6 s) nor boto3/botocore: every CLI command and every run builds them, and only aws mode talks to AWS."""
    probe = textwrap.dedent("""
        import sys
        from consorcio_assets.definitions import defs
        loaded = defs()
        assert type(loaded.resources["glue"]).__name__ == "LocalGlue", loaded.resources
        print(sorted(m for m in ("dagster_aws", "boto3", "botocore", "pandas") if m in sys.modules))
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSORCIO_")} | {"CONSORCIO_WARM": "0"}
    env["CONSORCIO_HOME"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_a_number_read_at_load_is_checked_naming_its_variable():
    assert configured("CONSORCIO_GLUE_MAX_CAPACITY", None, environ={"CONSORCIO_GLUE_MAX_CAPACITY": "0.5"}) == 0.5
    with pytest.raises(ValueError, match="CONSORCIO_GLUE_MAX_CAPACITY must be a number, not 'x'"):
        configured("CONSORCIO_GLUE_MAX_CAPACITY", None, environ={"CONSORCIO_GLUE_MAX_CAPACITY": "x"})


@pytest.mark.parametrize("workers", [None, "3"])
def test_check_sessions_get_the_configured_parallel_workers(local_env, monkeypatch, workers):
    """The checks run several queries at once, so their sessions plan no parallel workers unless told to."""
    if workers:
        monkeypatch.setenv("CONSORCIO_CHECK_PARALLEL_WORKERS", workers)
    with dg.build_resources({"target_db": project_defs().resources["target_db"]}) as built:
        side = built.target_db.side()
        with side.engine.connect() as conn:
            shown = conn.exec_driver_sql("SHOW max_parallel_workers_per_gather").scalar()
            work_mem = conn.exec_driver_sql("SHOW work_mem").scalar()
        side.engine.dispose()
    assert shown == (workers or "0") and work_mem == "64MB"


def test_a_target_without_the_setting_keeps_the_servers_parallel_workers(fresh_db):
    """What the bench's standalone row diff uses, as reladiff does (the test server keeps PostgreSQL's 2)."""
    side = TargetDb(url=fresh_db).side()
    with side.engine.connect() as conn:
        shown = conn.exec_driver_sql("SHOW max_parallel_workers_per_gather").scalar()
    side.engine.dispose()
    assert shown == "2"
