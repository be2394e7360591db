"""Dagster's PostgreSQL event log with one connection kept open per process instead of one opened per event.

dagster-postgres opens a new connection for every write outside the webserver (NullPool). A run writes an event
per step start, output and check result — 500 for `verify_migration` — and each new connection costs a backend
fork on the server (~2.5 ms on a local socket, more over TLS to RDS), several per event: half the wall time of a
verify run went to connecting. It also remembers which columns the asset-key table has: dagster-postgres reflects
the table's schema again for each asset event (four catalog queries), a third of the rest. Kept connections are not shared across a fork: a forked child (the CLI forks its
runs) drops the parent's pool without closing the parent's sockets.
"""

from __future__ import annotations

import os
import time
import weakref

import sqlalchemy as sa
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config

#: a step writes from one thread at a time, the run's progress poller and the UI's watchers read beside it
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
        """Remembered once seen: a column is added by `dagster instance migrate`, never removed."""
        if column_name not in self._asset_key_columns:
            if not super()._has_asset_key_col_on_connection(conn, column_name):
                return False
            self._asset_key_columns.add(column_name)
        return True

    def has_table(self, table_name: str) -> bool:
        """Remembered once seen (asked before every asset check event)."""
        if table_name not in self._tables:
            if not super().has_table(table_name):
                return False
            self._tables.add(table_name)
        return True

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
