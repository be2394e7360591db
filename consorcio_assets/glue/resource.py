"""`GlueResource`: runs the Glue job (the `consorcio_glue` package) for one table through
`dagster_aws.pipes.PipesGlueClient`.

aws mode (CONSORCIO_ENV=aws): boto3's Glue client starts runs of an existing Glue job; Pipes context and
messages travel through S3. Settings, each overridable in config, else from the environment:
  CONSORCIO_GLUE_JOB_NAME              the Glue job (default consorcio-glue-job)
  CONSORCIO_PIPES_URI                  s3://bucket[/prefix] for the Pipes context (its messages go to the
                                       bucket's top level: Pipes' S3 reader takes no prefix); Terraform's
                                       pipes bucket, the only one both roles may use for them. Unset:
                                       <CONSORCIO_LAKE_URI>/_glue/pipes
  CONSORCIO_TARGET_SECRET_ID           Secrets Manager secret of the Aurora cluster (required)
  CONSORCIO_GLUE_WORKER_TYPE, CONSORCIO_GLUE_NUMBER_OF_WORKERS, CONSORCIO_GLUE_MAX_CAPACITY,
  CONSORCIO_GLUE_TIMEOUT_MINUTES       per-run capacity and timeout (unset: the job definition's)
  CONSORCIO_GLUE_MAX_CONCURRENT_RUNS   how many table runs at once (keep ≤ the job's MaxConcurrentRuns)
  CONSORCIO_GLUE_COPY_STREAMS          parallel binary COPY connections per table
  CONSORCIO_GLUE_ON_INVALID            fail (default) or reject (route bad rows to consorcio_rejects)
  CONSORCIO_GLUE_PYTHON_MODULES        --additional-python-modules for each run (e.g. "psycopg[binary]==3.3.*,
                                       dagster-pipes==1.13.*"), when the job
                                       definition does not set them
local mode: `LocalGlueClient` runs the same job as a subprocess (`python -m consorcio_glue`) with the same
arguments; Pipes uses temporary files, and the target URL reaches the job through an environment variable, never
its arguments.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
import dagster as dg
from dagster import PipesTempFileContextInjector, PipesTempFileMessageReader
from dagster_aws.pipes import PipesGlueClient, PipesS3ContextInjector, PipesS3MessageReader
from dagster_aws.utils import ResourceWithBoto3Configuration
from pydantic import Field, PrivateAttr

from consorcio_core.dms import DEFAULT_RAW, raw_arguments
from consorcio_core.resilience import boto_config

from ..lake import Lake
from ..settings import get_settings
from .ddl import STAGING_SCHEMA
from .local_client import LocalGlueClient
from .local_pipes import LocalPipesGlueClient
from .spec import spec_argument

DMS_ENDPOINT_SETTINGS = Path(__file__).resolve().parents[1] / "dms" / "s3_endpoint_settings.json"
TARGET_URL_ENV = "CONSORCIO_GLUE_TARGET_URL"
MAX_INLINE_SPEC = 200_000  # Glue caps all arguments of a run at 260 KB


def _env(name: str, default=None, cast=str):
    value = os.environ.get(name)
    return cast(value) if value not in (None, "") else default


def dms_endpoint_settings(path: Path = DMS_ENDPOINT_SETTINGS) -> dict:
    """The DMS S3 endpoint settings the raw zone was written with (defaults when the file is absent)."""
    settings = dict(DEFAULT_RAW)
    if path.exists():
        settings.update(json.loads(path.read_text()))
    return settings


class _RunIds:
    """Glue client wrapper that remembers the run it started (the Pipes client keeps it to itself), and
    registers it in `active` (run id → what it loads) until the run is over."""

    def __init__(self, client, active: dict[str, str], what: str):
        self._client, self._active, self._what = client, active, what
        self.run_id: str | None = None

    def start_job_run(self, **kwargs):
        response = self._client.start_job_run(**kwargs)
        self.run_id = response["JobRunId"]
        self._active[self.run_id] = self._what
        return response

    def __getattr__(self, name: str):
        return getattr(self._client, name)


class GlueResource(ResourceWithBoto3Configuration):
    """Runs the Glue job per table: on AWS Glue (aws mode) or as a local subprocess (local mode)."""

    mode: str | None = Field(default=None, description="local or aws (default: CONSORCIO_ENV)")
    job_name: str | None = Field(default=None, description="default: CONSORCIO_GLUE_JOB_NAME or consorcio-glue-job")
    max_concurrent_runs: int | None = Field(default=None, description="default: CONSORCIO_GLUE_MAX_CONCURRENT_RUNS or 3")
    copy_streams: int | None = Field(default=None, description="default: CONSORCIO_GLUE_COPY_STREAMS or 2")
    on_invalid: str | None = Field(default=None, description="fail or reject (default: CONSORCIO_GLUE_ON_INVALID or fail)")
    worker_type: str | None = Field(default=None, description="default: CONSORCIO_GLUE_WORKER_TYPE")
    number_of_workers: int | None = Field(default=None, description="default: CONSORCIO_GLUE_NUMBER_OF_WORKERS")
    max_capacity: float | None = Field(default=None, description="default: CONSORCIO_GLUE_MAX_CAPACITY")
    timeout_minutes: int | None = Field(default=None, description="default: CONSORCIO_GLUE_TIMEOUT_MINUTES")
    additional_python_modules: str | None = Field(default=None, description="default: CONSORCIO_GLUE_PYTHON_MODULES")
    target_secret_id: str | None = Field(default=None, description="default: CONSORCIO_TARGET_SECRET_ID")
    lake_uri: str | None = Field(default=None, description="default: CONSORCIO_LAKE_URI")
    pipes_uri: str | None = Field(default=None, description="aws mode: s3://bucket[/prefix] of the Pipes context and "
                                  "messages (default: CONSORCIO_PIPES_URI, else <lake>/_glue/pipes)")
    script_path: str | None = Field(default=None, description="local mode: a job script to run instead of the "
                                    "installed package (default: CONSORCIO_GLUE_SCRIPT, else python -m consorcio_glue)")
    message_poll_seconds: float = Field(default=2.0, description="aws mode: how often Pipes messages are read from S3")

    _local: LocalGlueClient | None = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)
    _active: dict[str, str] = PrivateAttr(default_factory=dict)  # Glue runs in flight: run id → what it loads

    @classmethod
    def from_env(cls) -> GlueResource:
        return cls()

    # -- configuration resolved at run time ------------------------------------------------------------------

    @property
    def is_aws(self) -> bool:
        return (self.mode or get_settings().env).lower() == "aws"

    @property
    def effective_job_name(self) -> str:
        return self.job_name or _env("CONSORCIO_GLUE_JOB_NAME", "consorcio-glue-job")

    @property
    def concurrency(self) -> int:
        return max(1, self.max_concurrent_runs or _env("CONSORCIO_GLUE_MAX_CONCURRENT_RUNS", 3, int))

    def lake(self) -> Lake:
        return Lake(self.lake_uri or get_settings().lake_uri)

    def _session(self) -> boto3.session.Session:
        return boto3.session.Session(
            aws_access_key_id=self.aws_access_key_id, aws_secret_access_key=self.aws_secret_access_key,
            aws_session_token=self.aws_session_token, profile_name=self.profile_name, region_name=self.region_name)

    def _boto(self, service: str):
        """A boto3 client retrying throttling and connection errors (botocore's standard mode, bounded)."""
        return self._session().client(service, endpoint_url=self.endpoint_url if service == "glue" else None,
                                      use_ssl=self.use_ssl, verify=self.verify, config=boto_config(self.max_attempts))

    def glue_client(self):
        """boto3's Glue client, or the process-wide local client (its concurrency limit is shared by runs)."""
        if self.is_aws:
            return self._boto("glue")
        with self._lock:
            if self._local is None:
                from ..target.postgres import target_url

                self._local = LocalGlueClient(
                    self.script_path or _env("CONSORCIO_GLUE_SCRIPT"),
                    max_concurrent_runs=self.concurrency, env={TARGET_URL_ENV: target_url()},
                    log_dir=get_settings().home / "glue" / "logs")
            return self._local

    def pipes_client(self, glue_client=None) -> PipesGlueClient:
        """A fresh Pipes client per run: message readers keep per-session state."""
        client = glue_client or self.glue_client()
        if not self.is_aws:
            return LocalPipesGlueClient(client=client, context_injector=PipesTempFileContextInjector(),
                                        message_reader=PipesTempFileMessageReader(), forward_termination=True)
        bucket, prefix = self._pipes_location()
        s3 = self._boto("s3")
        return PipesGlueClient(
            client=client, forward_termination=True,
            context_injector=PipesS3ContextInjector(bucket=bucket, client=s3,
                                                    key_prefix=f"{prefix}/context/".lstrip("/")),
            message_reader=PipesS3MessageReader(bucket=bucket, client=s3, interval=self.message_poll_seconds),
        )

    def _pipes_location(self) -> tuple[str, str]:
        """(bucket, key prefix of the run contexts); the job's messages go to the same bucket's top level."""
        uri = self.pipes_uri or _env("CONSORCIO_PIPES_URI", "")
        if not uri:
            lake = self.lake()
            if not lake.is_s3:
                raise dg.Failure("aws mode needs CONSORCIO_PIPES_URI or an s3:// lake (CONSORCIO_LAKE_URI) for the "
                                 "Pipes context and messages")
            uri = f"{lake.uri.rstrip('/')}/_glue/pipes"
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise dg.Failure(f"CONSORCIO_PIPES_URI must be s3://bucket[/prefix], not {uri!r}")
        return parsed.netloc, parsed.path.strip("/")

    # -- job arguments ---------------------------------------------------------------------------------------

    def spec_value(self, spec: dict) -> str:
        """The spec inline, or (when too big for Glue's argument limit) written to the lake and passed by URI."""
        text = spec_argument(spec)
        if len(text.encode()) <= MAX_INLINE_SPEC:
            return text
        lake = self.lake()
        fs, _ = lake.filesystem()
        rel = ("_glue", "specs", f"{spec['target']['name']}-{uuid.uuid4().hex[:12]}.json")
        fs.create_dir(lake.path(*rel[:-1]), recursive=True)
        with fs.open_output_stream(lake.path(*rel)) as f:
            f.write(text.encode())
        return lake.uri_of(*rel)

    def target_arguments(self) -> dict[str, str]:
        if not self.is_aws:
            return {"--target-url-env": TARGET_URL_ENV}
        secret = self.target_secret_id or _env("CONSORCIO_TARGET_SECRET_ID")
        if not secret:
            raise dg.Failure("aws mode needs the Aurora secret: set CONSORCIO_TARGET_SECRET_ID")
        return {"--target-secret-id": secret}

    def job_arguments(self, spec: dict, stages: list[str], *, run_id: str, report_checks: bool,
                      fk_validation: str = "deferred", batch_tables: list[str] | None = None) -> dict[str, str]:
        """A table's load. With `batch_tables` (the targets the batch stages) it only stages its table: the
        batch's closing `publish` run swaps them all at once."""
        deferred = {"--swap": "deferred", "--batch-tables": ",".join(batch_tables)} if batch_tables is not None else {}
        return {
            "--action": "load",
            **deferred,
            "--table-spec": self.spec_value(spec),
            "--stages": ",".join(stages),
            "--lake-uri": self.lake().uri,
            **raw_arguments(dms_endpoint_settings()),
            "--on-invalid": self.on_invalid or _env("CONSORCIO_GLUE_ON_INVALID", "fail"),
            "--copy-streams": str(self.copy_streams or _env("CONSORCIO_GLUE_COPY_STREAMS", 2, int)),
            "--fk-validation": fk_validation,
            "--report-checks": "true" if report_checks else "false",
            "--run-id": run_id,
            **self.target_arguments(),
        }

    def start_params(self, arguments: dict[str, str]) -> dict:
        params: dict[str, Any] = {"JobName": self.effective_job_name, "Arguments": dict(arguments)}
        modules = self.additional_python_modules or _env("CONSORCIO_GLUE_PYTHON_MODULES")
        if modules and self.is_aws:
            params["Arguments"]["--additional-python-modules"] = modules
        settings = {
            "WorkerType": self.worker_type or _env("CONSORCIO_GLUE_WORKER_TYPE"),
            "NumberOfWorkers": self.number_of_workers or _env("CONSORCIO_GLUE_NUMBER_OF_WORKERS", None, int),
            "MaxCapacity": self.max_capacity or _env("CONSORCIO_GLUE_MAX_CAPACITY", None, float),
            "Timeout": self.timeout_minutes or _env("CONSORCIO_GLUE_TIMEOUT_MINUTES", None, int),
        }
        params.update({k: v for k, v in settings.items() if v is not None})
        return params

    # -- running ---------------------------------------------------------------------------------------------

    def run(self, context: dg.AssetExecutionContext, arguments: dict[str, str], what: str):
        """One Glue job run through Pipes; returns the completed invocation (raises when the run fails)."""
        recorder = _RunIds(self.glue_client(), self._active, what)
        try:
            return self.pipes_client(recorder).run(context=context, start_job_run_params=self.start_params(arguments))
        except BaseException as err:
            if not isinstance(err, Exception):  # this thread was interrupted (run terminated): the run must not go on
                self.stop_runs(context.log)
            raise
        finally:
            if recorder.run_id:
                self._active.pop(recorder.run_id, None)
                self._warn_without_cloudwatch(context, recorder, what)

    def stop_runs(self, log) -> None:
        """Stop every Glue run still in flight (the Dagster run was terminated). Pipes forwards a termination only
        to a run waited on by the interrupted thread; the batch's runs are waited on by worker threads."""
        runs = dict(self._active)
        if not runs:
            return
        client = self.glue_client()
        response = client.batch_stop_job_run(JobName=self.effective_job_name, JobRunIds=list(runs))
        stopped = [s["JobRunId"] for s in response.get("SuccessfulSubmissions", [])]
        for error in response.get("Errors", []):
            run_id = error["JobRunId"]
            if self._run_state(client, run_id) in ("STOPPING", "STOPPED"):  # Pipes stopped the run it waited on
                stopped.append(run_id)
                continue
            log.warning(f"{runs.get(run_id, '?')}: Glue run {run_id} could not be stopped: "
                        f"{error.get('ErrorDetail', {}).get('ErrorMessage', '')}")
        for run_id in stopped:
            log.warning(f"{runs[run_id]}: Glue run {run_id} stopped: the Dagster run was terminated before it finished")

    def _run_state(self, client, run_id: str) -> str | None:
        try:
            return client.get_job_run(JobName=self.effective_job_name, RunId=run_id)["JobRun"]["JobRunState"]
        except Exception:  # noqa: BLE001 - only decides which warning to log
            return None

    def _warn_without_cloudwatch(self, context, recorder: _RunIds, what: str) -> None:
        if not self.is_aws:
            return
        try:
            run = recorder.get_job_run(JobName=self.effective_job_name, RunId=recorder.run_id)["JobRun"]
        except Exception as err:  # noqa: BLE001 - a warning must not mask the run's own outcome
            context.log.warning(f"cannot read Glue run {recorder.run_id} ({what}) to check its logging: {err}")
            return
        if not run.get("LogGroupName"):
            context.log.warning(
                f"Glue job {self.effective_job_name} run {recorder.run_id} ({what}) has no CloudWatch log group: "
                "its driver stdout/stderr are not kept anywhere. Pipes still forwarded the job's own logs, "
                "metadata and checks through S3; enable CloudWatch logs on the job (--enable-continuous-cloudwatch-log) "
                "to keep tracebacks of crashes."
            )

    def publish(self, context: dg.AssetExecutionContext, tables: list[str], *, run_id: str, discard: bool = False):
        """The batch's closing run: swap every table the batch staged (parents first) in one transaction, foreign
        keys validated before it commits; with `discard`, drop them and change nothing."""
        arguments = {"--action": "publish", "--tables": ",".join(tables), "--run-id": run_id,
                     "--staging-schema": STAGING_SCHEMA, "--discard": "true" if discard else "false",
                     "--lake-uri": self.lake().uri, **self.target_arguments()}
        return self.run(context, arguments, f"{'discard' if discard else 'publish'} {', '.join(tables)}")
