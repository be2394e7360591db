"""Sensors, schedules and automation: reloads triggered by what changed, and a nightly verification.

- `raw_zone_sensor`: new LOAD files in the raw zone written outside Dagster (e.g. a DMS task started from the
  AWS console) → one run of that table's `transformed` and `aurora` assets.
- `dms_task_sensor` (aws mode): a finished full-load of the replication task → runless `s3_raw`
  materializations carrying DMS's table statistics.
- `source_automation`: declarative automation over the `sqlserver` observations' data versions (off by default).
- `observe_sources_schedule` and `nightly_verification`.
"""

from __future__ import annotations

import hashlib
import json

import dagster as dg

from consorcio_assets.catalog import catalog
from consorcio_assets.common.stages import AURORA, S3_RAW, SQLSERVER, TRANSFORMED, asset_key
from consorcio_assets.dms.raw_zone import new_loads, scan
from consorcio_assets.dms.resource import DmsResource

ACTIVE_RUN_STATUSES = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


def _written_by_a_run(instance: dg.DagsterInstance, table, newest_mtime_ns: int) -> bool:
    """True when a Dagster run already materialized `s3_raw/<table>` from these files (or is doing so now):
    those loads flow downstream inside that run, so the sensor must not start a second one."""
    key = asset_key(S3_RAW, table)
    event = instance.get_latest_materialization_event(key)
    if event is not None and event.run_id and event.timestamp * 1e9 >= newest_mtime_ns:
        return True
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=ACTIVE_RUN_STATUSES)):
        if run.asset_selection and key in run.asset_selection:
            return True
    return False


@dg.sensor(
    name="raw_zone_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    asset_selection=dg.AssetSelection.groups(TRANSFORMED, AURORA),
    description="New DMS LOAD files in the raw zone → reload that table's transformed and aurora assets.",
)
def raw_zone_sensor(context: dg.SensorEvaluationContext, dms: DmsResource):
    try:
        result = scan(dms.lake(), dms.settings().endpoint.bucket_folder)
    except Exception as err:  # unreachable lake: log, request nothing, try again next tick
        context.log.error(f"cannot list the raw zone: {type(err).__name__}: {err}")
        return dg.SkipReason("raw zone unreachable")
    for key in result.malformed[:20]:
        context.log.warning(f"skipping object that is not a DMS LOAD file: {key}")
    changed, cursor = new_loads(result.files, context.cursor)
    by_source = {t.name: t for t in catalog()}
    requests = []
    for table_name, files in sorted(changed.items()):
        table = by_source.get(table_name)
        if table is None:
            context.log.warning(f"LOAD files for {table_name}, which is not in the catalog: skipped")
            continue
        if _written_by_a_run(context.instance, table, max(f.mtime_ns for f in files)):
            continue
        fingerprint = hashlib.sha256(json.dumps(sorted((f.key, f.mtime_ns) for f in files)).encode()).hexdigest()[:12]
        requests.append(
            dg.RunRequest(
                run_key=f"{table.target_name}:{fingerprint}",
                asset_selection=[asset_key(TRANSFORMED, table), asset_key(AURORA, table)],
                tags={"consorcio/trigger": "raw_zone_sensor", "consorcio/table": table.target_name},
            )
        )
    return dg.SensorResult(run_requests=requests, cursor=cursor)


@dg.sensor(
    name="dms_task_sensor",
    minimum_interval_seconds=120,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="A finished DMS full-load (aws mode) → s3_raw materializations with DMS's table statistics.",
)
def dms_task_sensor(context: dg.SensorEvaluationContext, dms: DmsResource):
    """One tick: the replication task through the `dms` resource (none in local mode)."""
    try:
        task = dms.replication_task()
    except Exception as err:
        context.log.error(f"cannot describe the DMS task: {type(err).__name__}: {err}")
        return dg.SkipReason("DMS unreachable")
    if task is None:
        return dg.SkipReason("no DMS replication task (aws mode only)")
    task_arn = task.get("ReplicationTaskArn", "")
    status, reason = task.get("Status"), task.get("StopReason") or ""
    stop_date = task.get("ReplicationTaskStats", {}).get("StopDate")
    stop_marker = stop_date.isoformat() if hasattr(stop_date, "isoformat") else str(stop_date or "")
    if status == "failed" or (
        status == "stopped" and "FULL_LOAD_ONLY_FINISHED" not in reason and "FULL_LOAD" not in reason.upper()
    ):
        if stop_marker and stop_marker != context.cursor:
            context.log.error(
                f"DMS task {task_arn} ended without a complete full-load: status={status} reason={reason!r} "
                f"error={task.get('LastFailureMessage', '')!r}"
            )
            return dg.SensorResult(cursor=stop_marker, skip_reason=dg.SkipReason("DMS task failed"))
        return dg.SkipReason("no new DMS stop")
    if status != "stopped" or not stop_marker or stop_marker == context.cursor:
        return dg.SkipReason(f"DMS task is {status}; no new finished full-load")
    by_source = {(t.schema, t.name): t for t in catalog()}
    events = []
    for stat in dms.table_statistics():
        table = by_source.get((stat["SchemaName"], stat["TableName"]))
        if table is None:
            continue
        events.append(
            dg.AssetMaterialization(
                asset_key=asset_key(S3_RAW, table),
                description=f"Full-load of {table.qualified_source} by DMS task finished {stop_marker}",
                metadata={
                    "dagster/row_count": int(stat.get("FullLoadRows", 0)),
                    "dms/table_state": stat.get("TableState", ""),
                    "dms/full_load_start": str(stat.get("FullLoadStartTime", "")),
                    "dms/full_load_end": str(stat.get("FullLoadEndTime", "")),
                    "dms/task_arn": task_arn,
                },
            )
        )
    return dg.SensorResult(asset_events=events, cursor=stop_marker)


source_automation = dg.AutomationConditionSensorDefinition(
    "source_automation",
    target=dg.AssetSelection.groups(S3_RAW, TRANSFORMED, AURORA),
    default_status=dg.DefaultSensorStatus.STOPPED,
    minimum_interval_seconds=60,
    description="Reload a table through every stage when its sqlserver data version changes. Off by default: "
    "turn it on in the UI (Automation tab) or with `dagster sensor start source_automation`.",
)

observe_sources_schedule = dg.ScheduleDefinition(
    name="observe_sources",
    cron_schedule="*/15 * * * *",
    target=dg.AssetSelection.groups(SQLSERVER, include_sources=True),
    description="Observe every source table's row count and data version; changed versions feed source_automation.",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

nightly_verification = dg.ScheduleDefinition(
    name="nightly_verification",
    cron_schedule="0 3 * * *",
    job_name="verify_migration",
    execution_timezone="America/Sao_Paulo",
    description="Every night at 03:00 (Brasília), run every integrity check against the current state.",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        sensors=[raw_zone_sensor, dms_task_sensor, source_automation],
        schedules=[observe_sources_schedule, nightly_verification],
    )
