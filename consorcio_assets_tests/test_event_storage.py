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
