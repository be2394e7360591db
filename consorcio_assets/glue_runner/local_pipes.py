"""The Pipes client for the local Glue stand-in: `PipesGlueClient`'s protocol and polling, with local wording.

dagster_aws's client logs "Started AWS Glue job" and attaches an AWS console link (a dead
`https://local.console.aws.amazon.com/...` locally); here the run is named as what it is, a subprocess, and
its metadata points at the run's log directory instead.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from dagster_aws.pipes import PipesGlueClient


class LocalPipesGlueClient(PipesGlueClient):
    """`PipesGlueClient` over `LocalGlueClient`: same session and arguments, no AWS console wording or links."""

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
                response = self._wait_for_job_run_completion(job_name, run_id)
            except dg.DagsterExecutionInterruptedError:
                if self.forward_termination:
                    self._terminate_job_run(context=context, job_name=job_name, run_id=run_id)
                raise
            status = response["JobRun"]["JobRunState"]
            if status != "SUCCEEDED":
                raise RuntimeError(
                    f"Glue job {job_name} run {run_id} completed with status {status} :\n"
                    f"{response['JobRun'].get('ErrorMessage')}"
                )
            context.log.info(f"Glue job {job_name} run {run_id} completed successfully")
        return dg.PipesClientCompletedInvocation(session, metadata=self._extract_dagster_metadata(response))

    def _extract_dagster_metadata(self, response) -> dict:
        run = response["JobRun"]
        metadata: dict = {"glue/job_name": run["JobName"], "glue/run_id": run["Id"]}
        log_path = getattr(self._client, "log_path", None)
        log = log_path(run["Id"]) if log_path else None
        if log is not None:
            metadata["glue/run_logs"] = dg.MetadataValue.path(str(log.parent))
        return metadata
