"""The Pipes client for the local Glue stand-in: `PipesGlueClient`'s protocol, with local wording.

dagster_aws's client logs "Started AWS Glue job" and attaches an AWS console link (a dead
`https://local.console.aws.amazon.com/...` locally); here the run is named as what it is, a subprocess, and
its metadata points at the run's log directory instead. It does not derive from dagster_aws's client: importing
`dagster_aws` costs every local Glue step ~0.6 s (the package imports all its components), and the protocol is
these few lines: start the run with the Pipes bootstrap arguments, wait for an end state, stop it if interrupted.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from consorcio_assets.glue_runner.local_client import TERMINAL


class LocalPipesGlueClient(dg.PipesClient):
    """Runs the Glue job through `LocalGlueClient` (whose `get_job_run` waits for the run to move on)."""

    def __init__(self, client, context_injector, message_reader, forward_termination: bool = True):
        self._client = client
        self._context_injector = context_injector
        self._message_reader = message_reader
        self.forward_termination = forward_termination

    def run(  # type: ignore[override]
        self,
        *,
        context,
        start_job_run_params: dict,
        extras: dict[str, Any] | None = None,
    ):
        params = dict(start_job_run_params)
        params["Arguments"] = dict(params.get("Arguments") or {})
        job_name = params["JobName"]
        with dg.open_pipes_session(
            context=context, message_reader=self._message_reader, context_injector=self._context_injector, extras=extras
        ) as session:
            params["Arguments"].update(session.get_bootstrap_cli_arguments())
            run_id = self._client.start_job_run(**params)["JobRunId"]
            context.log.info(f"Started local Glue job {job_name} run {run_id} (a subprocess of this step)")
            try:
                response = self._wait(job_name, run_id)
            except dg.DagsterExecutionInterruptedError:
                if self.forward_termination:
                    context.log.warning(f"interrupted: stopping local Glue job run {run_id}")
                    self._client.batch_stop_job_run(JobName=job_name, JobRunIds=[run_id])
                raise
            status = response["JobRun"]["JobRunState"]
            if status != "SUCCEEDED":
                raise RuntimeError(
                    f"Glue job {job_name} run {run_id} completed with status {status} :\n"
                    f"{response['JobRun'].get('ErrorMessage')}"
                )
            context.log.info(f"Glue job {job_name} run {run_id} completed successfully")
        return dg.PipesClientCompletedInvocation(session, metadata=self._metadata(response))

    def _wait(self, job_name: str, run_id: str) -> dict:
        while True:
            response = self._client.get_job_run(JobName=job_name, RunId=run_id)
            if response["JobRun"]["JobRunState"] in TERMINAL:
                return response

    def _metadata(self, response) -> dict:
        run = response["JobRun"]
        metadata: dict = {"glue/job_name": run["JobName"], "glue/run_id": run["Id"]}
        log_path = getattr(self._client, "log_path", None)
        log = log_path(run["Id"]) if log_path else None
        if log is not None:
            metadata["glue/run_logs"] = dg.MetadataValue.path(str(log.parent))
        return metadata
