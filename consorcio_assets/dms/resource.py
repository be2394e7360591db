"""`DmsResource`: run a DMS full-load of a set of tables behind one interface, with two implementations chosen
by the definitions (`defs/resources.py`): `AwsDms` drives the replication task, `LocalDms` the local engine.

`AwsDms` (aws mode): a full-load is
  pre-flight → S3Settings on the endpoint → previous LOAD files of the selected tables moved under
  `_dms/archive/<time>/` → modify-replication-task (generated TableMappings, task settings) →
  start-replication the first time, reload-target afterwards → wait, logging FullLoadProgressPercent →
  describe-table-statistics (paginated). A `failed` task, `TablesErrored > 0` or a table in `Table error`
  raises DmsLoadError naming the tables.

`LocalDms` (local mode): the same pre-flight and mappings, then the local engine writes the lake (`engine.py`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from urllib.parse import urlparse

import dagster as dg
from pydantic import Field

from consorcio_assets.catalog import Table
from consorcio_assets.common.aws_clients import AwsClients
from consorcio_assets.common.lake_zones import Lake
from consorcio_assets.dms.engine import run_full_load
from consorcio_assets.dms.layout import (
    COMPLETED,
    ERRORED,
    WORK_ROOT,
    DmsLoadError,
    FullLoadReport,
    LoadedFile,
    TableLoad,
    table_prefix,
)
from consorcio_assets.dms.mappings import table_mappings
from consorcio_assets.dms.preflight import PreflightReport, preflight
from consorcio_assets.dms.settings_files import DmsSettings, load_settings

BUSY = ("creating", "modifying", "starting", "running", "stopping", "deleting", "testing", "moving")
FINISHED_REASON = "FULL_LOAD_ONLY_FINISHED"


class DmsResource(dg.ConfigurableResource):
    """A DMS full-load of the selected tables into the lake: the interface assets, checks and sensors use."""

    lake_uri: str = Field(description="root of the lake: file://... or s3://bucket/prefix (CONSORCIO_LAKE_URI)")
    source_url: str = Field(description="SQLAlchemy URL of the source DMS reads (CONSORCIO_SOURCE_URL)")

    def lake(self) -> Lake:
        return Lake(self.lake_uri)

    def settings(self) -> DmsSettings:
        return load_settings()

    def preflight(self, tables: Sequence[Table]) -> PreflightReport:
        from consorcio_assets.source.queries import source_engine_for

        engine = source_engine_for(self.source_url)
        try:
            return preflight(engine, tables, self.settings().task)
        finally:
            engine.dispose()

    def full_load(self, tables: Sequence[Table], log: logging.Logger | None = None) -> FullLoadReport:
        """Full-load `tables`; the report's tables are all `Table completed`, or DmsLoadError is raised
        (carrying the report, so the completed tables can still be recorded)."""
        log = log or logging.getLogger(__name__)
        settings = self.settings()
        checked = self.preflight(tables)
        for overflow in checked.overflows:
            log.warning(str(overflow))
        for note in checked.notes:
            log.warning(note)
        report = self.load(tables, table_mappings(tables, checked.boundaries), settings, log)
        report.preflight = checked
        if report.errored:
            failed = "\n  ".join(t.error or f"{t.schema}.{t.table}: {t.state}" for t in report.errored)
            raise DmsLoadError(f"DMS full-load failed for {len(report.errored)} table(s):\n  {failed}", report)
        return report

    def load(
        self, tables: Sequence[Table], mappings: dict, settings: DmsSettings, log: logging.Logger
    ) -> FullLoadReport:
        """The load itself, after the pre-flight: each implementation's own."""
        raise NotImplementedError(type(self).__name__)

    def replication_task(self) -> dict | None:
        """The replication task's description (describe-replication-tasks), or None where there is no task."""
        return None

    def table_statistics(self) -> list[dict]:
        """describe-table-statistics of the replication task, every page (empty where there is no task)."""
        return []


class LocalDms(DmsResource):
    """The local engine: reads the source (the DuckDB stand-in) and writes what DMS writes to the lake."""

    def load(self, tables, mappings, settings, log) -> FullLoadReport:
        report = run_full_load(mappings, source_url=self.source_url, lake=self.lake(), settings=settings, log=log)
        for result in report.tables.values():
            result.statistics = local_statistics(result)
        return report


class AwsDms(DmsResource, AwsClients):
    """AWS DMS: the full-load replication task, its S3 target endpoint, and the lake's bucket."""

    replication_task_arn: str = Field(description="the full-load replication task (CONSORCIO_DMS_TASK_ARN)")
    target_endpoint_arn: str | None = Field(
        default=None,
        description="its S3 target endpoint: the project's S3Settings are applied to it when set "
        "(CONSORCIO_DMS_TARGET_ENDPOINT_ARN)",
    )
    service_access_role_arn: str | None = Field(
        default=None,
        description="the endpoint's ServiceAccessRoleArn, sent with the S3Settings (CONSORCIO_DMS_S3_ROLE_ARN)",
    )
    poll_interval_seconds: float = Field(default=15.0, description="how often the task's progress is polled")
    timeout_seconds: float = Field(default=6 * 3600.0, description="longest full-load before giving up")

    @property
    def task_arn(self) -> str:
        if not self.replication_task_arn:
            raise DmsLoadError("aws mode needs the replication task: set CONSORCIO_DMS_TASK_ARN")
        return self.replication_task_arn

    def dms_client(self):
        return self.client("dms")

    def s3_client(self):
        """Endpoint from boto3's own resolution (AWS_ENDPOINT_URL_S3...), as the lake's pyarrow S3 filesystem."""
        return self.client("s3", own_endpoint=False)

    def load(self, tables, mappings, settings, log) -> FullLoadReport:
        return AwsFullLoad(self, settings, log).run(tables, mappings)

    def replication_task(self) -> dict | None:
        tasks = self.dms_client().describe_replication_tasks(
            Filters=[{"Name": "replication-task-arn", "Values": [self.task_arn]}], WithoutSettings=True
        )
        return (tasks.get("ReplicationTasks") or [None])[0]

    def table_statistics(self) -> list[dict]:
        return table_statistics(self.dms_client(), self.task_arn)


def local_statistics(result: TableLoad) -> dict:
    """The local engine's result in the shape of a DMS TableStatistics entry."""
    return {
        "SchemaName": result.schema,
        "TableName": result.table,
        "FullLoadRows": result.full_load_rows,
        "FullLoadErrorRows": 0,
        "FullLoadStartTime": result.started_at,
        "FullLoadEndTime": result.ended_at,
        "TableState": result.state,
    }


def table_statistics(client, task_arn: str) -> list[dict]:
    stats = []
    for page in client.get_paginator("describe_table_statistics").paginate(ReplicationTaskArn=task_arn):
        stats.extend(page["TableStatistics"])
    return stats


class AwsFullLoad:
    """One full-load through the replication task."""

    def __init__(
        self, resource: AwsDms, settings: DmsSettings, log: logging.Logger, sleep: Callable[[float], None] = time.sleep
    ):
        self.resource, self.settings, self.log, self.sleep = resource, settings, log, sleep
        self.dms, self.arn = resource.dms_client(), resource.task_arn
        lake = urlparse(resource.lake().uri)
        if lake.scheme != "s3":
            raise DmsLoadError(f"aws mode writes to S3: the lake must be s3://bucket/prefix, not {resource.lake().uri}")
        self.bucket, self.prefix = lake.netloc, lake.path.strip("/")
        self._s3 = None

    @property
    def s3(self):
        if self._s3 is None:
            self._s3 = self.resource.s3_client()
        return self._s3

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def describe(self) -> dict:
        tasks = self.dms.describe_replication_tasks(
            Filters=[{"Name": "replication-task-arn", "Values": [self.arn]}], WithoutSettings=True
        )
        if not tasks.get("ReplicationTasks"):
            raise DmsLoadError(f"replication task {self.arn} not found")
        return tasks["ReplicationTasks"][0]

    def run(self, tables: Sequence[Table], mappings: dict) -> FullLoadReport:
        task = self.describe()
        if task["Status"] in BUSY:
            raise DmsLoadError(f"replication task {self.arn} is {task['Status']}: wait for it to stop")
        self.configure_endpoint()
        self.archive_previous(tables)
        self.dms.modify_replication_task(
            ReplicationTaskArn=self.arn,
            MigrationType="full-load",
            TableMappings=json.dumps(mappings),
            ReplicationTaskSettings=json.dumps(self.settings.task.raw),
        )
        task = self.wait_while("modifying")
        before = task.get("ReplicationTaskStats", {}).get("StartDate")
        start_type = "reload-target" if before or task.get("ReplicationTaskStartDate") else "start-replication"
        self.log.info(f"starting DMS task {self.arn} ({start_type}) for {len(tables)} table(s)")
        self.dms.start_replication_task(ReplicationTaskArn=self.arn, StartReplicationTaskType=start_type)
        task = self.wait_finished(before)
        return self.report(tables, mappings, task)

    def configure_endpoint(self) -> None:
        arn = self.resource.target_endpoint_arn
        if not arn:
            return
        s3 = {
            **self.settings.endpoint.raw,
            "BucketName": self.bucket,
            "BucketFolder": self._key(self.settings.endpoint.bucket_folder),
        }
        role = self.resource.service_access_role_arn
        if role:
            s3["ServiceAccessRoleArn"] = role
        self.dms.modify_endpoint(EndpointArn=arn, S3Settings=s3)

    def archive_previous(self, tables: Sequence[Table]) -> None:
        """Move the tables' previous LOAD files away so the new load never mixes with them."""
        s3, stamp = self.s3, datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        for table in tables:
            folder = self._key(table_prefix(self.settings.endpoint, table)) + "/"
            keys = [
                o["Key"]
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=folder)
                for o in page.get("Contents", [])
            ]
            for key in keys:
                relative = key[len(self.prefix) + 1 :] if self.prefix else key
                s3.copy_object(
                    Bucket=self.bucket,
                    Key=self._key(WORK_ROOT, "archive", stamp, relative),
                    CopySource={"Bucket": self.bucket, "Key": key},
                )
            for start in range(0, len(keys), 1000):
                s3.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]]}
                )
            if keys:
                self.log.info(
                    f"{table.qualified_source}: {len(keys)} previous file(s) archived under "
                    f"s3://{self.bucket}/{self._key(WORK_ROOT, 'archive', stamp)}/"
                )

    def wait_while(self, status: str) -> dict:
        task = self.describe()
        deadline = time.monotonic() + self.resource.timeout_seconds
        while task["Status"] == status:
            if time.monotonic() > deadline:
                raise DmsLoadError(f"replication task {self.arn} still {status} after {self.resource.timeout_seconds}s")
            self.sleep(self.resource.poll_interval_seconds)
            task = self.describe()
        return task

    def wait_finished(self, previous_start) -> dict:
        deadline = time.monotonic() + self.resource.timeout_seconds
        started, progress = False, None
        while True:
            task = self.describe()
            stats = task.get("ReplicationTaskStats", {})
            started = started or task["Status"] in BUSY or stats.get("StartDate") not in (None, previous_start)
            if stats.get("FullLoadProgressPercent") != progress:
                progress = stats.get("FullLoadProgressPercent")
                self.log.info(
                    f"DMS full-load {progress}%: {stats.get('TablesLoaded', 0)} loaded, "
                    f"{stats.get('TablesLoading', 0)} loading, {stats.get('TablesQueued', 0)} queued, "
                    f"{stats.get('TablesErrored', 0)} errored"
                )
            if task["Status"] == "failed":
                raise DmsLoadError(f"replication task {self.arn} failed: {task.get('LastFailureMessage', '')}".strip())
            if started and task["Status"] == "stopped":
                if FINISHED_REASON not in (task.get("StopReason") or ""):
                    raise DmsLoadError(
                        f"replication task {self.arn} stopped before the full-load finished: "
                        f"{task.get('StopReason', '')}"
                    )
                return task
            if time.monotonic() > deadline:
                raise DmsLoadError(f"replication task {self.arn} did not finish in {self.resource.timeout_seconds}s")
            self.sleep(self.resource.poll_interval_seconds)

    def report(self, tables: Sequence[Table], mappings: dict, task: dict) -> FullLoadReport:
        stats = {(s["SchemaName"], s["TableName"]): s for s in table_statistics(self.dms, self.arn)}
        results = {t.name: self._table_load(t, stats.get((t.schema, t.name))) for t in tables}
        errored = int(task.get("ReplicationTaskStats", {}).get("TablesErrored", 0) or 0)
        if errored and not any(r.state != COMPLETED for r in results.values()):
            for r in results.values():
                r.state, r.error = ERRORED, f"{r.schema}.{r.table}: the task reports {errored} errored table(s)"
        return FullLoadReport("aws", results, mappings, task_arn=self.arn)

    def _table_load(self, table: Table, stat: dict | None) -> TableLoad:
        if stat is None:
            return TableLoad(
                table.schema,
                table.name,
                state=ERRORED,
                error=f"{table.qualified_source}: DMS returned no statistics for the table",
            )
        result = TableLoad(
            table.schema,
            table.name,
            state=stat.get("TableState", ""),
            full_load_rows=int(stat.get("FullLoadRows", 0)),
            started_at=stat.get("FullLoadStartTime"),
            ended_at=stat.get("FullLoadEndTime"),
            statistics=stat,
            files=self._files(table),
        )
        if result.state != COMPLETED:
            result.error = (
                f"{table.qualified_source}: DMS table state is {result.state!r} "
                f"({stat.get('FullLoadErrorRows', 0)} error rows): see the task's CloudWatch log"
            )
        return result

    def _files(self, table: Table) -> tuple[LoadedFile, ...]:
        s3 = self.s3
        folder = self._key(table_prefix(self.settings.endpoint, table)) + "/"
        cut = len(self.prefix) + 1 if self.prefix else 0
        return tuple(
            LoadedFile(o["Key"][cut:], int(o["Size"]))
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=folder)
            for o in page.get("Contents", [])
        )
