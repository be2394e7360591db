"""Dagster's PostgreSQL event log with one connection kept open per process instead of one opened per event.

dagster-postgres opens a new connection for every write outside the webserver (NullPool). A run writes an event
per step start, output and check result — 500 for `verify_migration` — and each new connection costs a backend
fork on the server (~2.5 ms on a local socket, more over TLS to RDS), several per event: half the wall time of a
verify run went to connecting. It also remembers what it learnt of the schema: dagster-postgres reflects the
asset-key table's columns again for each asset event (four catalog queries), a third of the rest. Kept
connections are not shared across a fork: a forked child (the CLI forks its runs) drops the parent's pool without
closing the parent's sockets.

The two writes a run makes most — an event row, and the update of a check's execution row when the check reports
— are also written here as two prepared SQL statements on the kept connection: dagster-postgres builds each with
SQLAlchemy Core anew, serialises the event twice and sends a NOTIFY nobody listens to since Dagster 1.x polls
(~3 ms of CPU per event, under the logging lock every step shares: half the Python time of a verify run). The rows
are Dagster's own (`_event_to_row`); anything else — asset events, planned checks, a check with no planned row —
goes through dagster-postgres unchanged. `test_event_storage` compares both paths' rows.

A run's planned materializations and checks (one event each, written when the run is created: 159 for a verify)
come as one batch when DAGSTER_EVENT_BATCH_SIZE is set (`instance.prepare_instance_env`, the image): one
multi-row insert per table here, where dagster-postgres writes planned checks one by one.
"""

from __future__ import annotations

import os
import time
import weakref
from functools import partial

import sqlalchemy as sa
from dagster._core.events import ASSET_EVENTS, DagsterEventType
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable, SqlEventLogStorageTable
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config

#: the main thread's step, the check steps on their threads (`check_threads.MAX_THREADS`) and the UI's watchers
POOL_SIZE = 1
MAX_OVERFLOW = 4
#: reconnect before a server or proxy (RDS Proxy: 24 h, NAT: 350 s idle) drops a long-idle connection
POOL_RECYCLE_SECONDS = 300

#: a connection idle longer than this is pinged before use (a failover or proxy may have dropped it); pinging every
#: checkout (`pool_pre_ping`) would add a round trip to each of a run's hundreds of events
IDLE_PING_SECONDS = 30.0

_live: weakref.WeakSet[PooledPostgresEventLogStorage] = weakref.WeakSet()


def _forget_pools_in_child() -> None:
    for storage in list(_live):
        storage.forget_pool()


os.register_at_fork(after_in_child=_forget_pools_in_child)


def _ping_when_idle(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "checkin")
    def _idle_since(dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _ping(dbapi_connection, record, proxy) -> None:
        if time.monotonic() - record.info.get("idle_since", time.monotonic()) < IDLE_PING_SECONDS:
            return
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception as err:  # the pool discards this connection and checks out a new one
            raise sa.exc.DisconnectionError(f"idle event-log connection gone: {err}") from err


_INSERT_EVENT = (
    "INSERT INTO event_logs (run_id, event, dagster_event_type, timestamp, step_key, asset_key, partition) "
    "VALUES (%(run_id)s, %(event)s, %(dagster_event_type)s, %(timestamp)s, %(step_key)s, %(asset_key)s, "
    "%(partition)s) RETURNING id"
)
_UPDATE_CHECK = (
    "UPDATE asset_check_executions SET execution_status = %(status)s, evaluation_event = %(event)s, "
    "evaluation_event_timestamp = %(timestamp)s, evaluation_event_storage_id = %(event_id)s, "
    "materialization_event_storage_id = %(materialization_id)s, partition = %(partition)s "
    "WHERE asset_key = %(asset_key)s AND check_name = %(check_name)s AND run_id = %(run_id)s AND "
)
_OF_PARTITION = {True: "partition IS NULL", False: "partition = %(partition)s"}
_PLANNED = frozenset({DagsterEventType.ASSET_MATERIALIZATION_PLANNED, DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED})


def _seen(known: set[str], name: str, probe) -> bool:
    """Whether a table or column exists, asked of the database until it does: `dagster instance migrate` adds
    them, nothing removes them."""
    if name not in known and probe(name):
        known.add(name)
    return name in known


class PooledPostgresEventLogStorage(PostgresEventLogStorage):
    """`PostgresEventLogStorage` whose engine pools its connections (configured like `storage: postgres`)."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True, inst_data=None, token_provider=None):
        super().__init__(postgres_url, should_autocreate_tables, inst_data, token_provider)
        self._engine.dispose()
        self._engine = create_pg_engine(
            self.postgres_url,
            self._token_provider,
            isolation_level="AUTOCOMMIT",
            pool_size=POOL_SIZE,
            max_overflow=MAX_OVERFLOW,
            pool_recycle=POOL_RECYCLE_SECONDS,
        )
        _ping_when_idle(self._engine)
        self._asset_key_columns: set[str] = set()
        self._tables: set[str] = set()
        _live.add(self)

    def _has_asset_key_col_on_connection(self, conn, column_name: str) -> bool:
        return _seen(self._asset_key_columns, column_name, partial(super()._has_asset_key_col_on_connection, conn))

    def has_table(self, table_name: str) -> bool:  # asked before every asset check event
        return _seen(self._tables, table_name, super().has_table)

    def store_event(self, event) -> None:
        kind = event.dagster_event_type if event.is_dagster_event else None
        check_result = kind == DagsterEventType.ASSET_CHECK_EVALUATION and bool(event.run_id)
        if kind in ASSET_EVENTS or kind == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
            return super().store_event(event)
        if check_result and not self.supports_asset_checks:
            return super().store_event(event)  # its error says the schema needs `dagster instance migrate`
        row = self._event_to_row(event)
        with self._connect() as conn:
            cursor = conn.connection.cursor()
            cursor.execute(_INSERT_EVENT, row)
            event_id = int(cursor.fetchone()[0])  # type: ignore[index]  # RETURNING id: one row
            updated = 1
            if check_result:
                cursor.execute(*self._check_update(event, row, event_id))
                updated = cursor.rowcount
        if not updated:  # no planned row (a check run outside its planned step): Dagster's own insert
            self._update_asset_check_evaluation(event, event_id)

    def store_event_batch(self, events) -> None:
        if not events or any(e.dagster_event_type not in _PLANNED for e in events) or not self.supports_asset_checks:
            return super().store_event_batch(events)
        rows = [self._event_to_row(event) for event in events]
        table = SqlEventLogStorageTable
        with self._connect() as conn:
            ids = [row[0] for row in conn.execute(table.insert().values(rows).returning(table.c.id))]
        materializations = [
            (event, event_id)
            for event, event_id in zip(events, ids)
            if event.dagster_event_type == DagsterEventType.ASSET_MATERIALIZATION_PLANNED
        ]
        if materializations:  # as dagster-postgres's store_event does for each asset event
            with self.index_transaction() as conn:
                self._store_asset_event_tags(conn, [e for e, _ in materializations], [i for _, i in materializations])
                for event, event_id in materializations:
                    self._store_asset_event(conn, event, event_id)
        checks = [
            self._planned_check_row(event, row, event_id, partition)
            for event, row, event_id in zip(events, rows, ids)
            if event.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
            for partition in self._planned_partitions(event)
        ]
        if checks:
            with self.index_connection() as conn:
                conn.execute(AssetCheckExecutionsTable.insert().values(checks))

    @staticmethod
    def _planned_partitions(event) -> list:
        planned = event.dagster_event.event_specific_data
        return planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]

    @staticmethod
    def _planned_check_row(event, row: dict, event_id: int, partition) -> dict:
        """`_store_asset_check_evaluation_planned`'s row, reusing the event row's serialisation and timestamp."""
        planned = event.dagster_event.event_specific_data
        return {
            "asset_key": planned.asset_key.to_string(),
            "check_name": planned.check_name,
            "partition": partition,
            "run_id": event.run_id,
            "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
            "evaluation_event": row["event"],
            "evaluation_event_timestamp": row["timestamp"],
            "evaluation_event_storage_id": event_id,
        }

    @staticmethod
    def _check_update(event, row: dict, event_id: int) -> tuple[str, dict]:
        """`_update_asset_check_evaluation`'s UPDATE, reusing the event row's serialisation and timestamp."""
        evaluation = event.dagster_event.event_specific_data
        target = evaluation.target_materialization_data
        passed = (
            AssetCheckExecutionRecordStatus.SUCCEEDED if evaluation.passed else AssetCheckExecutionRecordStatus.FAILED
        )
        values = {
            "status": passed.value,
            "event": row["event"],
            "timestamp": row["timestamp"],
            "event_id": event_id,
            "materialization_id": target.storage_id if target else None,
            "partition": evaluation.partition,
            "asset_key": evaluation.asset_key.to_string(),
            "check_name": evaluation.check_name,
            "run_id": event.run_id,
        }
        return _UPDATE_CHECK + _OF_PARTITION[evaluation.partition is None], values

    def forget_pool(self) -> None:
        """In a forked child: new connections from here on; the parent's stay open for the parent."""
        self._engine.dispose(close=False)

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> PooledPostgresEventLogStorage:
        return cls(
            pg_url_from_config(config_value),
            config_value.get("should_autocreate_tables", True),
            inst_data,
            get_token_provider_from_config(config_value),
        )
