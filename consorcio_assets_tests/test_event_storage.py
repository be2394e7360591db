"""The instance's event log keeps its connections (one per process, not one per event) and a forked run gets
its own: what the local dagster.yaml configures, asserted on the real embedded PostgreSQL."""

from __future__ import annotations

import os
import time

import dagster as dg
import pytest
import sqlalchemy as sa

from consorcio_assets.orchestration.event_storage import PooledPostgresEventLogStorage


@pytest.fixture
def instance(tmp_path, storage_db, monkeypatch):
    from consorcio_assets.orchestration.instance import prepare_instance_env

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("DAGSTER_PG_URL", storage_db.replace("postgresql://", "postgresql+psycopg2://", 1))
    prepare_instance_env()
    with dg.DagsterInstance.get() as inst:
        yield inst


def engine_connects(storage: PooledPostgresEventLogStorage) -> list[int]:
    connects: list[int] = []
    sa.event.listen(storage._engine, "connect", lambda *_: connects.append(1))
    return connects


def backend_pid(storage: PooledPostgresEventLogStorage) -> int:
    with storage._engine.connect() as conn:
        return conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()


def log(instance: dg.DagsterInstance, run_id: str, message: str) -> None:
    instance.report_engine_event(message, instance.get_run_by_id(run_id))


def test_events_of_a_run_reuse_one_connection(instance):
    storage = instance.event_log_storage
    assert isinstance(storage, PooledPostgresEventLogStorage)
    run = instance.create_run_for_job(dg.GraphDefinition("g").to_job())
    connects = engine_connects(storage)
    for n in range(30):
        log(instance, run.run_id, f"event {n}")
    assert len(connects) <= 1  # NullPool (dagster-postgres's default) connects once per event: 30 or more
    messages = [r.message for r in instance.all_logs(run.run_id)]
    assert [f"event {n}" for n in range(30)] == [m for m in messages if m.startswith("event ")]


def test_a_forked_child_connects_anew_and_the_parent_keeps_its_connection(instance):
    storage = instance.event_log_storage
    run = instance.create_run_for_job(dg.GraphDefinition("g").to_job())
    parent_pid = backend_pid(storage)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child writes its backend's pid and an event, as a forked run does
        code = 1
        try:
            os.close(read)
            os.write(write, str(backend_pid(storage)).encode())
            log(instance, run.run_id, "from the child")
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(child, 0)
    child_pid = int(os.read(read, 32) or 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert child_pid and child_pid != parent_pid  # a shared socket would answer with the parent's backend
    log(instance, run.run_id, "from the parent")
    assert backend_pid(storage) == parent_pid  # the child's exit did not close the parent's connection
    deadline = time.monotonic() + 5
    messages: list[str | None] = []
    while time.monotonic() < deadline and "from the child" not in messages:
        messages = [r.message for r in instance.all_logs(run.run_id)]
    assert {"from the child", "from the parent"} <= set(messages)


def test_an_idle_connection_the_server_dropped_is_replaced_before_use(instance, monkeypatch, storage_db):
    import psycopg

    from consorcio_assets.orchestration import event_storage

    storage = instance.event_log_storage
    run = instance.create_run_for_job(dg.GraphDefinition("g").to_job())
    dropped = backend_pid(storage)
    with psycopg.connect(storage_db, autocommit=True) as admin:  # a failover, a proxy's idle timeout
        admin.execute("SELECT pg_terminate_backend(%s)", (dropped,))
    monkeypatch.setattr(event_storage, "IDLE_PING_SECONDS", 0.0)
    log(instance, run.run_id, "after the drop")  # without the ping: "server closed the connection unexpectedly"
    assert backend_pid(storage) != dropped
    assert "after the drop" in [r.message for r in instance.all_logs(run.run_id)]


@dg.asset
def planted():
    return 1


@dg.asset_check(asset=planted)
def planted_is_one(planted):
    return dg.AssetCheckResult(passed=planted == 1, metadata={"rows": 1})


@dg.asset_check(asset=planted)
def planted_is_two(planted):
    return dg.AssetCheckResult(passed=planted == 2, severity=dg.AssetCheckSeverity.WARN)


def stock_instance(tmp_path) -> dg.DagsterInstance:
    """dagster-postgres's own event log on the same database: what the fast paths must write alike."""
    from consorcio_assets.orchestration.instance import DAGSTER_YAML

    home = tmp_path / "stock_home"
    home.mkdir()
    stock = DAGSTER_YAML.replace(
        "module: consorcio_assets.orchestration.event_storage\n  class: PooledPostgresEventLogStorage",
        "module: dagster_postgres.event_log\n  class: PostgresEventLogStorage",
    )
    assert stock != DAGSTER_YAML
    (home / "dagster.yaml").write_text(stock)
    return dg.DagsterInstance.from_config(str(home))


def written(instance: dg.DagsterInstance, run_id: str) -> tuple[list, list]:
    """The run's event rows and check-execution rows, with ids replaced by what they point at."""
    with instance.event_log_storage.index_connection() as conn:
        events = conn.exec_driver_sql(
            "SELECT id, dagster_event_type, step_key, asset_key, partition FROM event_logs "
            "WHERE run_id = %s AND dagster_event_type IS NOT NULL ORDER BY id",
            (run_id,),
        ).all()
        kinds = {row[0]: row[1] for row in events}
        checks = conn.exec_driver_sql(
            "SELECT asset_key, check_name, partition, execution_status, evaluation_event IS NOT NULL, "
            "evaluation_event_storage_id, materialization_event_storage_id FROM asset_check_executions "
            "WHERE run_id = %s ORDER BY check_name",
            (run_id,),
        ).all()
    ignored = {"ENGINE_EVENT", "LOGS_CAPTURED"}  # their order and count depend on timing, not on the storage
    event_rows = [tuple(row[1:]) for row in events if row[1] not in ignored]
    check_rows = [(*row[:5], kinds.get(row[5]), kinds.get(row[6])) for row in checks]
    return event_rows, check_rows


def test_the_fast_writes_store_what_dagster_postgres_stores(instance, tmp_path, monkeypatch):
    """Planned events in one batch, event rows and check results by prepared SQL: the same rows as Dagster's own
    storage writes for the same run, and the same answers from Dagster's readers (a Dagster upgrade that changes
    its schema or rows fails here)."""
    from consorcio_assets.orchestration.instance import BATCH_ENV

    monkeypatch.setenv(BATCH_ENV, "1000")
    batches: list[list[str]] = []
    storage = instance.event_log_storage
    store_batch = storage.store_event_batch
    monkeypatch.setattr(
        storage,
        "store_event_batch",
        lambda events: batches.append([e.dagster_event_type for e in events]) or store_batch(events),
    )
    stock = stock_instance(tmp_path)
    defs = [planted, planted_is_one, planted_is_two]
    ours_run = dg.materialize(defs, instance=instance).run_id
    stock_run = dg.materialize(defs, instance=stock).run_id
    job = dg.Definitions(
        assets=[planted], asset_checks=[planted_is_one, planted_is_two]
    ).resolve_implicit_global_asset_job_def()
    planned = [written(inst, inst.create_run_for_job(job).run_id) for inst in (instance, stock)]
    assert planned[0] == planned[1] and [row[3] for row in planned[0][1]] == ["PLANNED", "PLANNED"]
    assert all(row[5] == "ASSET_CHECK_EVALUATION_PLANNED" for row in planned[0][1])
    ours, theirs = written(instance, ours_run), written(stock, stock_run)
    assert ours == theirs
    ET = dg.DagsterEventType
    assert len(batches) == 2 and batches[0] == batches[1]  # materialize's run, then create_run_for_job's
    assert batches[0] == [ET.ASSET_MATERIALIZATION_PLANNED] + [ET.ASSET_CHECK_EVALUATION_PLANNED] * 2
    assert [row[3] for row in ours[1]] == ["SUCCEEDED", "FAILED"]
    assert all(row[5] == "ASSET_CHECK_EVALUATION" and row[6] == "ASSET_MATERIALIZATION" for row in ours[1])
    history = instance.event_log_storage.get_asset_check_execution_history
    for check in ("planted_is_one", "planted_is_two"):
        records = {r.run_id: r for r in history(dg.AssetCheckKey(dg.AssetKey("planted"), check), limit=10)}
        mine, stock_record = records[ours_run], records[stock_run]
        assert mine.status == stock_record.status and mine.event is not None
        assert mine.event.dagster_event.event_specific_data.passed == (check == "planted_is_one")
