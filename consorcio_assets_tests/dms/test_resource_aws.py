"""`AwsDms`: moto's S3 server for the bucket, a botocore Stubber for the DMS calls.

The stubbed DMS asserts the exact requests (task ARN, endpoint S3Settings, TableMappings JSON, start type);
when the stub "starts" the task, a hook writes the LOAD files a real task would, so the archive of the previous
load and the listing of the new one run against a real S3 API.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
import sqlalchemy as sa
from botocore.stub import Stubber

from consorcio_assets.catalog import catalog
from consorcio_assets.dms.layout import COMPLETED, DmsLoadError
from consorcio_assets.dms.mappings import table_mappings
from consorcio_assets.dms.preflight import preflight
from consorcio_assets.dms.resource import AwsDms
from consorcio_assets.dms.settings_files import endpoint_settings, load_settings

TASK = "arn:aws:dms:us-east-1:123456789012:task:CONSORCIO-FULL-LOAD"
TARGET = "arn:aws:dms:us-east-1:123456789012:endpoint:CONSORCIO-S3"
ROLE = "arn:aws:iam::123456789012:role/dms-s3"
T0 = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
DESCRIBE = {"Filters": [{"Name": "replication-task-arn", "Values": [TASK]}], "WithoutSettings": True}
TABLES = ["Grupo", "Simulacao", "vw_FunilMensal"]


def task(status: str, **extra) -> dict:
    return {"ReplicationTasks": [{"ReplicationTaskArn": TASK, "Status": status, **extra}]}


def stats(**values) -> dict:
    return {"ReplicationTaskStats": {"FullLoadProgressPercent": 0, "TablesErrored": 0, **values}}


def table_stat(name: str, rows: int, state: str = "Table completed") -> dict:
    return {
        "SchemaName": "dbo",
        "TableName": name,
        "FullLoadRows": rows,
        "FullLoadErrorRows": 0,
        "TableState": state,
        "FullLoadStartTime": T0,
        "FullLoadEndTime": T0,
    }


@pytest.fixture
def aws(s3_bucket, hand_made_source, monkeypatch):
    """(resource, stubber, s3 client, expected TableMappings) for a full-load of TABLES."""
    client = boto3.client("dms", region_name="us-east-1")
    stubber = Stubber(client)
    monkeypatch.setattr(AwsDms, "dms_client", lambda self: client)
    resource = AwsDms(
        replication_task_arn=TASK,
        target_endpoint_arn=TARGET,
        service_access_role_arn=ROLE,
        lake_uri=f"s3://{s3_bucket}/lake",
        source_url=f"duckdb:///{hand_made_source}",
        poll_interval_seconds=0,
        region_name="us-east-1",
    )
    tables = [catalog()[t] for t in TABLES]
    engine = sa.create_engine(f"duckdb:///{hand_made_source}", connect_args={"read_only": True}, poolclass=sa.NullPool)
    mappings = table_mappings(tables, preflight(engine, tables, load_settings().task).boundaries)
    s3 = boto3.client("s3")

    def dms_writes_files(**_):
        for key in (
            "Grupo/LOAD00000001.parquet",
            "Simulacao/SEGMENT1/LOAD00000001.parquet",
            "Simulacao/SEGMENT2/LOAD00000001.parquet",
            "vw_FunilMensal/LOAD00000001.parquet",
        ):
            s3.put_object(Bucket=s3_bucket, Key=f"lake/raw/dbo/{key}", Body=b"PAR1-new")

    client.meta.events.register("after-call.database-migration-service.StartReplicationTask", dms_writes_files)
    with stubber:
        yield resource, stubber, s3, mappings


def expect_configuration(stubber: Stubber, bucket: str, mappings: dict, first: dict) -> None:
    stubber.add_response("describe_replication_tasks", first, DESCRIBE)
    stubber.add_response(
        "modify_endpoint",
        {},
        {
            "EndpointArn": TARGET,
            "S3Settings": {
                **endpoint_settings().raw,
                "BucketName": bucket,
                "BucketFolder": "lake/raw",
                "ServiceAccessRoleArn": ROLE,
            },
        },
    )
    stubber.add_response(
        "modify_replication_task",
        {},
        {
            "ReplicationTaskArn": TASK,
            "MigrationType": "full-load",
            "TableMappings": json.dumps(mappings),
            "ReplicationTaskSettings": json.dumps(load_settings().task.raw),
        },
    )
    stubber.add_response("describe_replication_tasks", task("modifying"), DESCRIBE)


def expect_run(stubber: Stubber, start_type: str, before: dict, final: dict, table_stats: list[dict]) -> None:
    stubber.add_response("describe_replication_tasks", before, DESCRIBE)
    stubber.add_response(
        "start_replication_task", {}, {"ReplicationTaskArn": TASK, "StartReplicationTaskType": start_type}
    )
    stubber.add_response("describe_replication_tasks", task("starting", **stats()), DESCRIBE)
    stubber.add_response("describe_replication_tasks", task("running", **stats(FullLoadProgressPercent=60)), DESCRIBE)
    stubber.add_response("describe_replication_tasks", final, DESCRIBE)
    if table_stats is not None:
        stubber.add_response(
            "describe_table_statistics",
            {"TableStatistics": table_stats[:2], "Marker": "page-2"},
            {"ReplicationTaskArn": TASK},
        )
        stubber.add_response(
            "describe_table_statistics",
            {"TableStatistics": table_stats[2:]},
            {"ReplicationTaskArn": TASK, "Marker": "page-2"},
        )


FINISHED = task(
    "stopped",
    StopReason="Stop Reason FULL_LOAD_ONLY_FINISHED",
    **stats(FullLoadProgressPercent=100, TablesLoaded=3, StartDate=T0),
)
ALL_COMPLETED = [table_stat("Grupo", 2), table_stat("Simulacao", 40), table_stat("vw_FunilMensal", 38)]


def keys(s3, bucket: str, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def test_first_full_load_starts_replication_and_returns_dms_statistics(aws, s3_bucket, caplog):
    resource, stubber, _s3, mappings = aws
    expect_configuration(stubber, s3_bucket, mappings, task("ready"))
    expect_run(stubber, "start-replication", task("ready"), FINISHED, ALL_COMPLETED)
    caplog.set_level("INFO")
    report = resource.full_load([catalog()[t] for t in TABLES])
    stubber.assert_no_pending_responses()
    assert report.mode == "aws" and report.task_arn == TASK
    assert {n: (r.state, r.full_load_rows) for n, r in report.tables.items()} == {
        "Grupo": (COMPLETED, 2),
        "Simulacao": (COMPLETED, 40),
        "vw_FunilMensal": (COMPLETED, 38),
    }
    assert [f.path for f in report.tables["Simulacao"].files] == [
        "raw/dbo/Simulacao/SEGMENT1/LOAD00000001.parquet",
        "raw/dbo/Simulacao/SEGMENT2/LOAD00000001.parquet",
    ]
    assert report.tables["Grupo"].statistics["TableState"] == "Table completed"
    assert report.preflight.source_rows["Simulacao"] == 40
    assert "DMS full-load 60%" in caplog.text
    assert any(r["rule-type"] == "table-settings" for r in mappings["rules"])  # Simulacao's segments were sent


def test_a_reload_archives_the_previous_files_and_uses_reload_target(aws, s3_bucket):
    resource, stubber, s3, mappings = aws
    s3.put_object(Bucket=s3_bucket, Key="lake/raw/dbo/Grupo/LOAD00000001.parquet", Body=b"PAR1-old")
    s3.put_object(Bucket=s3_bucket, Key="lake/raw/dbo/Grupo/LOAD00000002.parquet", Body=b"PAR1-old")
    s3.put_object(Bucket=s3_bucket, Key="lake/raw/dbo/Segmento/LOAD00000001.parquet", Body=b"PAR1-other")
    previous = task("stopped", StopReason="Stop Reason FULL_LOAD_ONLY_FINISHED", **stats(StartDate=T0))
    expect_configuration(stubber, s3_bucket, mappings, previous)
    later = task(
        "stopped",
        StopReason="Stop Reason FULL_LOAD_ONLY_FINISHED",
        **stats(FullLoadProgressPercent=100, StartDate=datetime(2026, 1, 6, tzinfo=UTC)),
    )
    expect_run(stubber, "reload-target", previous, later, ALL_COMPLETED)
    report = resource.full_load([catalog()[t] for t in TABLES])
    stubber.assert_no_pending_responses()
    assert [f.path for f in report.tables["Grupo"].files] == ["raw/dbo/Grupo/LOAD00000001.parquet"]
    assert s3.get_object(Bucket=s3_bucket, Key="lake/raw/dbo/Grupo/LOAD00000001.parquet")["Body"].read() == b"PAR1-new"
    archived = keys(s3, s3_bucket, "lake/_dms/archive/")
    assert [k.split("/", 4)[4] for k in archived] == [
        "raw/dbo/Grupo/LOAD00000001.parquet",
        "raw/dbo/Grupo/LOAD00000002.parquet",
    ]
    assert keys(s3, s3_bucket, "lake/raw/dbo/Segmento/") == ["lake/raw/dbo/Segmento/LOAD00000001.parquet"]


def test_a_failed_task_fails_with_dms_message(aws, s3_bucket):
    resource, stubber, _s3, mappings = aws
    expect_configuration(stubber, s3_bucket, mappings, task("ready"))
    failed = task("failed", LastFailureMessage="Error connecting to the source endpoint", **stats(StartDate=T0))
    expect_run(stubber, "start-replication", task("ready"), failed, None)
    with pytest.raises(DmsLoadError, match="failed: Error connecting to the source endpoint"):
        resource.full_load([catalog()[t] for t in TABLES])
    stubber.assert_no_pending_responses()


def test_errored_tables_fail_the_load_by_name_and_keep_the_completed_ones(aws, s3_bucket):
    resource, stubber, _s3, mappings = aws
    expect_configuration(stubber, s3_bucket, mappings, task("ready"))
    errored = task(
        "stopped",
        StopReason="Stop Reason FULL_LOAD_ONLY_FINISHED",
        **stats(FullLoadProgressPercent=100, TablesErrored=1, StartDate=T0),
    )
    expect_run(
        stubber,
        "start-replication",
        task("ready"),
        errored,
        [table_stat("Grupo", 2), table_stat("Simulacao", 12, "Table error"), table_stat("vw_FunilMensal", 38)],
    )
    with pytest.raises(DmsLoadError) as err:
        resource.full_load([catalog()[t] for t in TABLES])
    assert "1 table(s)" in str(err.value) and "dbo.Simulacao: DMS table state is 'Table error'" in str(err.value)
    assert [t.table for t in err.value.report.errored] == ["Simulacao"]
    assert err.value.report.tables["Grupo"].state == COMPLETED


def test_tables_errored_without_a_table_in_error_still_fails(aws, s3_bucket):
    resource, stubber, _s3, mappings = aws
    expect_configuration(stubber, s3_bucket, mappings, task("ready"))
    errored = task("stopped", StopReason="Stop Reason FULL_LOAD_ONLY_FINISHED", **stats(TablesErrored=2, StartDate=T0))
    expect_run(stubber, "start-replication", task("ready"), errored, ALL_COMPLETED)
    with pytest.raises(DmsLoadError, match="the task reports 2 errored table"):
        resource.full_load([catalog()[t] for t in TABLES])


def test_a_busy_task_is_not_touched(aws):
    resource, stubber, _s3, _mappings = aws
    stubber.add_response("describe_replication_tasks", task("running"), DESCRIBE)
    with pytest.raises(DmsLoadError, match="is running: wait for it to stop"):
        resource.full_load([catalog()[t] for t in TABLES])
    stubber.assert_no_pending_responses()


def test_the_task_arn_is_required():
    with pytest.raises(DmsLoadError, match="CONSORCIO_DMS_TASK_ARN"):
        _ = AwsDms(replication_task_arn="", lake_uri="s3://b/lake", source_url="mssql://").task_arn
