"""A Dagster run worker for the termination case: `python -m consorcio_assets_tests.faults.run_worker <instance dir>
<table>...` executes the Glue multi-asset for the given tables as a run of the instance at <instance dir>.

What the webserver's "Terminate" does to a run: GraphQL `terminateRun` → `run_coordinator.cancel_run` →
`run_launcher.terminate`, which marks the run CANCELING and asks the code server that launched the run worker
to interrupt it; the code server's termination thread then sends the worker SIGINT (`send_interrupt`). This
worker is launched by the test rather than by a code server, so its own termination thread watches the run's
status and sends the same interrupt; everything after that (the step interrupted, the Glue runs in flight
stopped, the run marked CANCELED) is Dagster's and the project's code.
"""

from __future__ import annotations

import sys
import threading

import dagster as dg
from dagster._core.instance.ref import InstanceRef
from dagster._utils import send_interrupt
from dagster._utils.interrupts import capture_interrupts

JOB = "glue_tables"


def glue_tables_defs() -> dg.Definitions:
    from consorcio_assets.defs.glue_aurora import glue_transform_and_load
    from consorcio_assets.defs.resources import resources_for

    return dg.Definitions(
        assets=[glue_transform_and_load],
        resources=resources_for("local"),
        jobs=[
            dg.define_asset_job(
                JOB, selection=dg.AssetSelection.groups("transformed", "aurora"), executor_def=dg.in_process_executor
            )
        ],
    )


def glue_tables_job():
    return glue_tables_defs().resolve_job_def(JOB)


def watch_for_cancel(instance: dg.DagsterInstance, stop: threading.Event) -> None:
    """The code server's termination thread, driven by the run's status instead of a gRPC call."""
    while not stop.wait(0.1):
        runs = instance.get_runs(limit=1)
        if runs and runs[0].status == dg.DagsterRunStatus.CANCELING:
            send_interrupt()
            return


def main(instance_dir: str, tables: list[str]) -> int:
    from consorcio_assets.catalog import catalog
    from consorcio_assets.common.stages import AURORA, TRANSFORMED, asset_key

    cat = catalog()
    keys = [asset_key(stage, cat[t]) for t in tables for stage in (TRANSFORMED, AURORA)]
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(instance_dir)) as instance:
        stop = threading.Event()
        threading.Thread(target=watch_for_cancel, args=(instance, stop), daemon=True).start()
        with capture_interrupts():
            result = dg.execute_job(dg.reconstructable(glue_tables_job), instance, asset_selection=keys)
        stop.set()
    print(f"RUN {result.run_id} {result.dagster_run.status.value}", flush=True)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
