"""The resources of every asset, check and sensor: one set per mode (`CONSORCIO_ENV`), built when the
definitions load, as dagster's `project_fully_featured` chooses its resources by deployment.

A variable that is set is passed as `dg.EnvVar` (the UI shows its name, never its value; Dagster resolves it
when a run starts); an unset one takes the registry's default; a variable the mode requires is always an
`EnvVar`, so a run without it fails naming it. Every name is declared in `settings.REGISTRY`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

from consorcio_assets.common.lake_resource import LakeResource
from consorcio_assets.defs.lgpd import PiiKey
from consorcio_assets.dms.resource import AwsDms, LocalDms
from consorcio_assets.glue_runner.resource import AwsGlue, LocalGlue
from consorcio_assets.settings import declared, get_settings
from consorcio_assets.source.resource import SourceDb
from consorcio_assets.target.analytics import KEY_ENV, key_path
from consorcio_assets.target.resource import TargetDb

REQUIRED = object()


def configured(name: str, default=REQUIRED, environ: Mapping[str, str] | None = None):
    """`dg.EnvVar(name)` when the variable is set (or required), else `default`."""
    setting = declared(name)
    environ = os.environ if environ is None else environ
    if default is not REQUIRED and environ.get(name) in (None, ""):
        return default
    if setting.kind is int:
        return dg.EnvVar.int(name)
    if setting.kind is float:  # EnvVar resolves to text or whole numbers only: read now (never a secret)
        if problem := setting.problem(environ.get(name, "")):
            raise ValueError(f"{name} {problem}")
        return float(environ[name])
    return dg.EnvVar(name)


def _glue_common() -> dict:
    return {
        "job_name": configured("CONSORCIO_GLUE_JOB_NAME", "consorcio-glue-job"),
        "max_concurrent_runs": configured("CONSORCIO_GLUE_MAX_CONCURRENT_RUNS", 3),
        "copy_streams": configured("CONSORCIO_GLUE_COPY_STREAMS", 2),
        "on_invalid": configured("CONSORCIO_GLUE_ON_INVALID", "fail"),
    }


def _check_parallel_workers():
    return configured("CONSORCIO_CHECK_PARALLEL_WORKERS", 0)


def local_resources() -> dict[str, dg.ConfigurableResource]:
    """Embedded stand-ins: the DuckDB source, the local DMS engine, Glue as a subprocess, pgserver."""
    settings = get_settings()  # the defaults under CONSORCIO_HOME
    source_url = configured("CONSORCIO_SOURCE_URL", settings.source_url)
    target_url = configured("CONSORCIO_TARGET_URL", None)
    lake_uri = configured("CONSORCIO_LAKE_URI", settings.lake_uri)
    return {
        "source_db": SourceDb(url=source_url),
        "target_db": TargetDb(url=target_url, check_parallel_workers=_check_parallel_workers()),
        "pii_key": PiiKey(key=configured(KEY_ENV, None), key_file=str(key_path(settings.home))),
        "lake": LakeResource(uri=lake_uri),
        "dms": LocalDms(lake_uri=lake_uri, source_url=source_url),
        "glue": LocalGlue(
            lake_uri=lake_uri,
            target_url=target_url,
            **_glue_common(),
            script_path=configured("CONSORCIO_GLUE_SCRIPT", None),
            log_dir=str(settings.home / "glue" / "logs"),
        ),
    }


def aws_resources() -> dict[str, dg.ConfigurableResource]:
    """AWS DMS, AWS Glue, S3 and Aurora; AWS credentials and region come from boto3's own chain (the task role)."""
    source_url = configured("CONSORCIO_SOURCE_URL", REQUIRED)
    lake_uri = configured("CONSORCIO_LAKE_URI", REQUIRED)
    return {
        "source_db": SourceDb(url=source_url),
        "target_db": TargetDb(
            url=configured("CONSORCIO_TARGET_URL", REQUIRED), check_parallel_workers=_check_parallel_workers()
        ),
        "pii_key": PiiKey(key=configured(KEY_ENV, REQUIRED)),
        "lake": LakeResource(uri=lake_uri),
        "dms": AwsDms(
            lake_uri=lake_uri,
            source_url=source_url,
            replication_task_arn=configured("CONSORCIO_DMS_TASK_ARN", REQUIRED),
            target_endpoint_arn=configured("CONSORCIO_DMS_TARGET_ENDPOINT_ARN", None),
            service_access_role_arn=configured("CONSORCIO_DMS_S3_ROLE_ARN", None),
        ),
        "glue": AwsGlue(
            lake_uri=lake_uri,
            **_glue_common(),
            target_secret_id=configured("CONSORCIO_TARGET_SECRET_ID", REQUIRED),
            pipes_uri=configured("CONSORCIO_PIPES_URI", None),
            worker_type=configured("CONSORCIO_GLUE_WORKER_TYPE", None),
            number_of_workers=configured("CONSORCIO_GLUE_NUMBER_OF_WORKERS", None),
            max_capacity=configured("CONSORCIO_GLUE_MAX_CAPACITY", None),
            timeout_minutes=configured("CONSORCIO_GLUE_TIMEOUT_MINUTES", None),
            additional_python_modules=configured("CONSORCIO_GLUE_PYTHON_MODULES", None),
        ),
    }


RESOURCES_BY_MODE = {"local": local_resources, "aws": aws_resources}


def resources_for(mode: str | None = None) -> dict:
    """The resource set of `mode` (default: CONSORCIO_ENV)."""
    return RESOURCES_BY_MODE[mode or get_settings().env]()


def initialized(*names: str, mode: str | None = None) -> dict:
    """Resources for use outside a run (the CLI, the benchmark), their `EnvVar`s resolved now. None of them
    holds anything to tear down."""
    resources = resources_for(mode)
    with dg.build_resources({name: resources[name] for name in names}) as built:
        return {name: getattr(built, name) for name in names}


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(resources=resources_for())
