import contextlib
import datetime as dt
import os
import time

import boto3
import dagster as dg
import pytest
from botocore.stub import Stubber

from consorcio_assets.common.stages import asset_key
from consorcio_assets.defs.sensors import dms_task_sensor, raw_zone_sensor
from consorcio_assets.dms.resource import AwsDms, DmsResource, LocalDms

TASK = "arn:aws:dms:us-east-1:123456789012:task:CONSORCIO"
LAKE = {}  # the lake the `dms` resource of a test's ticks points at


@pytest.fixture
def lake(tmp_path):
    LAKE["uri"] = (tmp_path / "lake").as_uri()
    return tmp_path / "lake"


def local_dms() -> LocalDms:
    return LocalDms(lake_uri=LAKE["uri"], source_url="duckdb:///unused.duckdb")


def write(lake, relative: str, mtime: float | None = None):
    path = lake / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PAR1")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def logged(capfd) -> str:
    """Dagster's sensor logger writes to stderr rather than propagating to the root logger."""
    out, err = capfd.readouterr()
    return out + err


@contextlib.contextmanager
def _quiet():
    yield


def tick(instance, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"dms": local_dms()})
    return raw_zone_sensor(context), context


def test_new_files_request_one_reload_then_nothing(lake):
    write(lake, "raw/dbo/Simulacao/LOAD00000001.parquet")
    write(lake, "raw/dbo/Simulacao/LOAD0000000A.parquet")
    with dg.instance_for_test() as instance:
        result, _ = tick(instance)
        assert len(result.run_requests) == 1
        request = result.run_requests[0]
        assert set(request.asset_selection) == {asset_key("transformed", "simulacao"), asset_key("aurora", "simulacao")}
        assert request.run_key.startswith("simulacao:")
        again, _ = tick(instance, result.cursor)
        assert again.run_requests == []
        # a later load of the same table is new again, and only that table is requested
        write(lake, "raw/dbo/Segmento/LOAD00000001.parquet")
        write(lake, "raw/dbo/Simulacao/LOAD00000001.parquet", mtime=time.time() + 5)
        third, _ = tick(instance, again.cursor)
        assert sorted(r.tags["consorcio/table"] for r in third.run_requests) == ["segmento", "simulacao"]
        assert third.run_requests[1].run_key != request.run_key


def test_restart_with_the_cursor_misses_nothing(lake):
    write(lake, "raw/dbo/Cliente/LOAD00000001.parquet", mtime=1_000)
    with dg.instance_for_test() as instance:
        first, _ = tick(instance)
        # while the sensor was stopped, another file arrived with the same timestamp
        write(lake, "raw/dbo/Cliente/LOAD00000002.parquet", mtime=1_000)
        second, _ = tick(instance, first.cursor)
        assert [r.tags["consorcio/table"] for r in second.run_requests] == ["cliente"]


def test_every_file_name_dms_writes_is_a_load(lake):
    """The sensor knows DMS's names from the one layout: unnamed segments' prefix and GZIP CSV included."""
    from consorcio_assets.common.lake_zones import Lake
    from consorcio_assets.dms.raw_zone import scan

    for name in (
        "Grupo/LOAD00000001.parquet",
        "Grupo/SEGMENT2_LOAD00000003.parquet",
        "Cota/part1/LOAD00000001.csv",
        "Cliente/LOAD0000000A.csv.gz",
    ):
        write(lake, f"raw/dbo/{name}")
    write(lake, "raw/dbo/Cliente/LOAD0000000A.csv.zip")
    result = scan(Lake(lake.as_uri()), "raw")
    assert sorted(f.table for f in result.files) == ["Cliente", "Cota", "Grupo", "Grupo"]
    assert result.malformed == ["dbo/Cliente/LOAD0000000A.csv.zip"]


def test_malformed_keys_are_skipped_with_a_warning(lake, capfd):
    write(lake, "raw/dbo/Simulacao/notes.txt")
    write(lake, "raw/dbo/Simulacao/LOAD1.parquet")
    write(lake, "raw/dbo/TabelaDesconhecida/LOAD00000001.parquet")
    with dg.instance_for_test() as instance, _quiet():
        result, _ = tick(instance)
    assert result.run_requests == []
    text = logged(capfd)
    assert "dbo/Simulacao/notes.txt" in text and "dbo/Simulacao/LOAD1.parquet" in text
    assert "TabelaDesconhecida" in text


def test_files_already_loaded_by_a_run_do_not_trigger_a_second_one(lake):
    write(lake, "raw/dbo/Grupo/LOAD00000001.parquet", mtime=time.time() - 60)

    @dg.asset(key=asset_key("s3_raw", "grupo"))
    def grupo_raw():
        return None

    with dg.instance_for_test() as instance:
        assert dg.materialize([grupo_raw], instance=instance).success
        result, _ = tick(instance)
        assert result.run_requests == []


def test_unreachable_lake_logs_and_requests_nothing(monkeypatch, capfd):
    LAKE["uri"] = "s3://consorcio-lake/raw-zone"
    import consorcio_assets.defs.sensors as sensors

    def refuse(*_a, **_k):
        raise OSError("When listing objects under key 'raw': connection refused")

    monkeypatch.setattr(sensors, "scan", refuse)
    with dg.instance_for_test() as instance, _quiet():
        result, _ = tick(instance)
    assert isinstance(result, dg.SkipReason)
    assert "cannot list the raw zone" in logged(capfd)


def _task(status, reason, stop):
    return {
        "ReplicationTasks": [
            {
                "ReplicationTaskArn": TASK,
                "Status": status,
                "StopReason": reason,
                "ReplicationTaskStats": {"StopDate": stop, "FullLoadProgressPercent": 100},
            }
        ]
    }


@pytest.fixture
def stubbed_dms(monkeypatch):
    """(the sensor's `dms` resource, a Stubber on the DMS client it uses)."""
    client = boto3.client("dms", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    monkeypatch.setattr(AwsDms, "dms_client", lambda self: client)
    return AwsDms(replication_task_arn=TASK, lake_uri="s3://consorcio-lake/raw", source_url="mssql://"), Stubber(client)


def evaluate_dms_task(context_args: dict, dms: DmsResource):
    return dms_task_sensor(dg.build_sensor_context(**context_args, resources={"dms": dms}))


def test_finished_full_load_records_s3_raw_materializations(stubbed_dms):
    dms, stub = stubbed_dms
    stop = dt.datetime(2026, 11, 29, 3, 0, tzinfo=dt.UTC)
    filters = {"Filters": [{"Name": "replication-task-arn", "Values": [TASK]}], "WithoutSettings": True}
    stub.add_response(
        "describe_replication_tasks", _task("stopped", "Stop Reason FULL_LOAD_ONLY_FINISHED", stop), filters
    )
    stub.add_response(
        "describe_table_statistics",
        {
            "TableStatistics": [
                {"SchemaName": "dbo", "TableName": "Simulacao", "FullLoadRows": 20000, "TableState": "Table completed"}
            ],
            "Marker": "m1",
        },
        {"ReplicationTaskArn": TASK},
    )
    stub.add_response(
        "describe_table_statistics",
        {
            "TableStatistics": [
                {
                    "SchemaName": "dbo",
                    "TableName": "vw_FunilMensal",
                    "FullLoadRows": 812,
                    "TableState": "Table completed",
                }
            ]
        },
        {"ReplicationTaskArn": TASK, "Marker": "m1"},
    )
    stub.add_response(
        "describe_replication_tasks", _task("stopped", "Stop Reason FULL_LOAD_ONLY_FINISHED", stop), filters
    )
    with stub, dg.instance_for_test() as instance:
        result = evaluate_dms_task({"instance": instance}, dms)
        keys = {e.asset_key: e.metadata["dagster/row_count"].value for e in result.asset_events}
        assert keys == {asset_key("s3_raw", "simulacao"): 20000, asset_key("s3_raw", "vw_funil_mensal"): 812}
        assert {e.metadata["dms/task_arn"].value for e in result.asset_events} == {TASK}
        again = evaluate_dms_task({"instance": instance, "cursor": result.cursor}, dms)
        assert isinstance(again, dg.SkipReason)


def test_failed_task_requests_nothing_and_logs_an_error(stubbed_dms, capfd):
    dms, stub = stubbed_dms
    stop = dt.datetime(2026, 11, 29, 3, 0, tzinfo=dt.UTC)
    failed = _task("failed", "Stop Reason FATAL_ERROR", stop)
    failed["ReplicationTasks"][0]["LastFailureMessage"] = "Last Error Table error"
    stub.add_response("describe_replication_tasks", failed)
    with stub, dg.instance_for_test() as instance, _quiet():
        result = evaluate_dms_task({"instance": instance}, dms)
    assert not result.asset_events and not result.run_requests
    assert "ended without a complete full-load" in logged(capfd)


def test_unreachable_dms_logs_and_yields_nothing(stubbed_dms, capfd):
    dms, stub = stubbed_dms
    stub.add_client_error("describe_replication_tasks", service_error_code="ThrottlingException", http_status_code=400)
    with stub, dg.instance_for_test() as instance, _quiet():
        result = evaluate_dms_task({"instance": instance}, dms)
    assert isinstance(result, dg.SkipReason) and "ThrottlingException" in logged(capfd)


def test_local_mode_has_no_task_to_watch(lake):
    with dg.instance_for_test() as instance:
        result = evaluate_dms_task({"instance": instance}, local_dms())
    assert isinstance(result, dg.SkipReason) and "aws mode only" in str(result.skip_message)
