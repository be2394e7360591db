"""`GlueResource`: runs the Glue job (the `consorcio_glue` package) for one table through Pipes, behind one
interface with two implementations chosen by the definitions (`defs/resources.py`):

`AwsGlue` (aws mode): boto3's Glue client starts runs of an existing Glue job (`dagster_aws.pipes.PipesGlueClient`);
Pipes context and messages travel through S3 (`pipes_uri`: Terraform's pipes bucket, the only one both roles may
use for them; unset: <lake>/_glue/pipes). The job logs in to Aurora with the cluster's Secrets Manager secret.
Per-run capacity, timeout and --additional-python-modules default to the job definition's.

`LocalGlue` (local mode): `LocalGlueClient` runs the same job as a subprocess (`python -m consorcio_glue`) with the
same arguments; Pipes uses temporary files, and the target URL reaches the job through an environment variable,
never its arguments.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import dagster as dg
from pydantic import Field, PrivateAttr

from consorcio_assets.common.aws_clients import AwsClients
from consorcio_assets.common.lake_zones import Lake
from consorcio_assets.dms.settings_files import endpoint_settings
from consorcio_assets.glue_runner.local_client import LocalGlueClient
from consorcio_assets.glue_runner.spec import spec_argument
from consorcio_assets.target.ddl import STAGING_SCHEMA
from consorcio_core.dms_endpoint import raw_arguments

TARGET_URL_ENV = "CONSORCIO_GLUE_TARGET_URL"
MAX_INLINE_SPEC = 200_000  # Glue caps all arguments of a run at 260 KB


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


class GlueResource(dg.ConfigurableResource):
    """Runs the Glue job per table; what differs between AWS Glue and the local subprocess is in the subclasses."""

    lake_uri: str = Field(description="root of the lake the job reads and writes (CONSORCIO_LAKE_URI)")
    job_name: str = Field(default="consorcio-glue-job", description="the Glue job (CONSORCIO_GLUE_JOB_NAME)")
    max_concurrent_runs: int = Field(
        default=3,
        description="table loads at once, keep ≤ the job's MaxConcurrentRuns (CONSORCIO_GLUE_MAX_CONCURRENT_RUNS)",
    )
    copy_streams: int = Field(
        default=2, description="parallel binary COPY connections per table (CONSORCIO_GLUE_COPY_STREAMS)"
    )
    on_invalid: str = Field(
        default="fail",
        description="fail, or reject rows violating their target type to consorcio_rejects (CONSORCIO_GLUE_ON_INVALID)",
    )

    _lock: Any = PrivateAttr(default_factory=threading.Lock)
    _active: dict[str, str] = PrivateAttr(default_factory=dict)  # Glue runs in flight: run id → what it loads
    _stopping: set[str] = PrivateAttr(default_factory=set)  # runs `stop_runs` was asked to stop for a table

    @property
    def effective_job_name(self) -> str:
        return self.job_name

    @property
    def concurrency(self) -> int:
        return max(1, self.max_concurrent_runs)

    def lake(self) -> Lake:
        return Lake(self.lake_uri)

    # -- what each implementation provides -------------------------------------------------------------------

    def glue_client(self):
        """A client with boto3's Glue interface (start_job_run, get_job_run, batch_stop_job_run)."""
        raise NotImplementedError(type(self).__name__)

    def pipes_client(self, glue_client=None) -> dg.PipesClient:
        """A fresh Pipes client per run: message readers keep per-session state."""
        raise NotImplementedError(type(self).__name__)

    def target_arguments(self) -> dict[str, str]:
        """How the job reaches Aurora."""
        raise NotImplementedError(type(self).__name__)

    def run_settings(self) -> dict[str, Any]:
        """Per-run overrides of the job definition (start_job_run parameters and arguments)."""
        return {}

    def _warn_without_cloudwatch(self, context, recorder: _RunIds, what: str) -> None:
        """After a run: warn when its driver output is kept nowhere (where that can happen)."""

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

    def job_arguments(
        self,
        spec: dict,
        stages: list[str],
        *,
        run_id: str,
        report_checks: bool,
        fk_validation: str = "deferred",
        batch_tables: list[str] | None = None,
    ) -> dict[str, str]:
        """A table's load. With `batch_tables` (the targets the batch stages) it only stages its table: the
        batch's closing `publish` run swaps them all at once."""
        deferred = {"--swap": "deferred", "--batch-tables": ",".join(batch_tables)} if batch_tables is not None else {}
        return {
            "--action": "load",
            **deferred,
            "--table-spec": self.spec_value(spec),
            "--stages": ",".join(stages),
            "--lake-uri": self.lake().uri,
            **raw_arguments(endpoint_settings()),
            "--on-invalid": self.on_invalid,
            "--copy-streams": str(self.copy_streams),
            "--fk-validation": fk_validation,
            "--report-checks": "true" if report_checks else "false",
            "--run-id": run_id,
            **self.target_arguments(),
        }

    def start_params(self, arguments: dict[str, str]) -> dict:
        overrides = self.run_settings()
        return {
            "JobName": self.effective_job_name,
            **overrides,
            "Arguments": {**arguments, **overrides.get("Arguments", {})},
        }

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

    def stop_runs(self, log, only: set[str] | None = None) -> None:
        """Stop every Glue run still in flight (the Dagster run was terminated). Pipes forwards a termination only
        to a run waited on by the interrupted thread; the batch's runs are waited on by worker threads. With
        `only`, just the runs loading those tables (their parent failed), each asked once."""
        runs = dict(self._active)
        if only is not None:
            runs = {run_id: what for run_id, what in runs.items() if what in only and run_id not in self._stopping}
            self._stopping.update(runs)
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
            log.warning(
                f"{runs.get(run_id, '?')}: Glue run {run_id} could not be stopped: "
                f"{error.get('ErrorDetail', {}).get('ErrorMessage', '')}"
            )
        why = (
            "a parent table failed to load" if only is not None else "the Dagster run was terminated before it finished"
        )
        for run_id in stopped:
            log.warning(f"{runs[run_id]}: Glue run {run_id} stopped: {why}")

    def _run_state(self, client, run_id: str) -> str | None:
        try:
            return client.get_job_run(JobName=self.effective_job_name, RunId=run_id)["JobRun"]["JobRunState"]
        except Exception:  # noqa: BLE001 - only decides which warning to log
            return None

    def publish(self, context: dg.AssetExecutionContext, tables: list[str], *, run_id: str, discard: bool = False):
        """The batch's closing run: swap every table the batch staged (parents first) in one transaction, foreign
        keys validated before it commits; with `discard`, drop them and change nothing."""
        arguments = {
            "--action": "publish",
            "--tables": ",".join(tables),
            "--run-id": run_id,
            "--staging-schema": STAGING_SCHEMA,
            "--discard": "true" if discard else "false",
            "--lake-uri": self.lake().uri,
            **self.target_arguments(),
        }
        return self.run(context, arguments, f"{'discard' if discard else 'publish'} {', '.join(tables)}")


class LocalGlue(GlueResource):
    """The job as a local subprocess per run (`python -m consorcio_glue`, or `script_path`)."""

    target_url: str | None = Field(
        default=None,
        description="PostgreSQL URL of the target, handed to the job "
        "through an environment variable (CONSORCIO_TARGET_URL; unset: the embedded server)",
    )
    script_path: str | None = Field(
        default=None, description="a job script to run instead of the installed package (CONSORCIO_GLUE_SCRIPT)"
    )
    log_dir: str | None = Field(
        default=None, description="where each run's stdout/stderr are kept (<CONSORCIO_HOME>/glue/logs)"
    )

    _local: LocalGlueClient | None = PrivateAttr(default=None)

    def glue_client(self):
        """The process-wide local client (its concurrency limit is shared by runs)."""
        with self._lock:
            if self._local is None:
                from consorcio_assets.target.postgres import target_url

                self._local = LocalGlueClient(
                    self.script_path,
                    max_concurrent_runs=self.concurrency,
                    env={TARGET_URL_ENV: self.target_url or target_url()},
                    log_dir=Path(self.log_dir) if self.log_dir else None,
                )
            return self._local

    def pipes_client(self, glue_client=None) -> dg.PipesClient:
        from consorcio_assets.glue_runner.local_pipes import LocalPipesGlueClient

        return LocalPipesGlueClient(
            client=glue_client or self.glue_client(),
            context_injector=dg.PipesTempFileContextInjector(),
            message_reader=dg.PipesTempFileMessageReader(),
            forward_termination=True,
        )

    def target_arguments(self) -> dict[str, str]:
        return {"--target-url-env": TARGET_URL_ENV}


class AwsGlue(GlueResource, AwsClients):
    """Runs of the Glue job on AWS Glue, with Pipes through S3."""

    target_secret_id: str = Field(
        description="Secrets Manager secret of the Aurora cluster, the job's login (CONSORCIO_TARGET_SECRET_ID)"
    )
    pipes_uri: str | None = Field(
        default=None,
        description="s3://bucket[/prefix] of the Pipes context and messages "
        "(CONSORCIO_PIPES_URI; unset: <lake>/_glue/pipes)",
    )
    worker_type: str | None = Field(default=None, description="per run (CONSORCIO_GLUE_WORKER_TYPE)")
    number_of_workers: int | None = Field(default=None, description="per run (CONSORCIO_GLUE_NUMBER_OF_WORKERS)")
    max_capacity: float | None = Field(default=None, description="DPUs per run (CONSORCIO_GLUE_MAX_CAPACITY)")
    timeout_minutes: int | None = Field(default=None, description="per run (CONSORCIO_GLUE_TIMEOUT_MINUTES)")
    additional_python_modules: str | None = Field(
        default=None, description="--additional-python-modules of each run (CONSORCIO_GLUE_PYTHON_MODULES)"
    )
    message_poll_seconds: float = Field(default=2.0, description="how often Pipes messages are read from S3")

    def glue_client(self):
        return self.client("glue")

    def pipes_client(self, glue_client=None) -> dg.PipesClient:
        # imported here: any dagster_aws module imports the whole package (~0.6 s), needed in aws mode only
        from dagster_aws.pipes import PipesGlueClient, PipesS3ContextInjector, PipesS3MessageReader

        bucket, prefix = self._pipes_location()
        s3 = self.client("s3", own_endpoint=False)
        return PipesGlueClient(
            client=glue_client or self.glue_client(),
            forward_termination=True,
            context_injector=PipesS3ContextInjector(
                bucket=bucket, client=s3, key_prefix=f"{prefix}/context/".lstrip("/")
            ),
            message_reader=PipesS3MessageReader(bucket=bucket, client=s3, interval=self.message_poll_seconds),
        )

    def _pipes_location(self) -> tuple[str, str]:
        """(bucket, key prefix of the run contexts); the job's messages go to the same bucket's top level."""
        uri = self.pipes_uri or ""
        if not uri:
            lake = self.lake()
            if not lake.is_s3:
                raise dg.Failure(
                    "aws mode needs CONSORCIO_PIPES_URI or an s3:// lake (CONSORCIO_LAKE_URI) for the "
                    "Pipes context and messages"
                )
            uri = f"{lake.uri.rstrip('/')}/_glue/pipes"
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise dg.Failure(f"CONSORCIO_PIPES_URI must be s3://bucket[/prefix], not {uri!r}")
        return parsed.netloc, parsed.path.strip("/")

    def target_arguments(self) -> dict[str, str]:
        if not self.target_secret_id:
            raise dg.Failure("aws mode needs the Aurora secret: set CONSORCIO_TARGET_SECRET_ID")
        return {"--target-secret-id": self.target_secret_id}

    def run_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "WorkerType": self.worker_type,
            "NumberOfWorkers": self.number_of_workers,
            "MaxCapacity": self.max_capacity,
            "Timeout": self.timeout_minutes,
        }
        settings = {k: v for k, v in settings.items() if v is not None}
        if self.additional_python_modules:
            settings["Arguments"] = {"--additional-python-modules": self.additional_python_modules}
        return settings

    def _warn_without_cloudwatch(self, context, recorder: _RunIds, what: str) -> None:
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
