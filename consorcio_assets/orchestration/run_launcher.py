"""The local instance's run launcher: Dagster's default one, plus what run monitoring needs to fail dead runs
(the default launcher cannot tell a dead run worker from a live one, so monitoring never fails a STARTED run)."""

from __future__ import annotations

from dagster import DefaultRunLauncher
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus  # no public name: run monitoring's API

from consorcio_assets.orchestration.runs import HOST_TAG, dead_because, hostname


class LocalRunLauncher(DefaultRunLauncher):
    """Tags each run with its host; a run whose process is gone from this host is reported FAILED by the
    daemon's run monitoring (see `consorcio_assets.orchestration.runs`)."""

    def launch_run(self, context) -> None:
        self._instance.add_run_tags(context.dagster_run.run_id, {HOST_TAG: hostname()})
        return super().launch_run(context)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run) -> CheckRunHealthResult:
        record = self._instance.get_run_record_by_id(run.run_id)
        why = dead_because(self._instance, record) if record else None
        if why:
            return CheckRunHealthResult(WorkerStatus.FAILED, why)
        return CheckRunHealthResult(WorkerStatus.RUNNING)
