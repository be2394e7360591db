"""Dagster's PostgreSQL event log with one connection kept open per process instead of one opened per event.

dagster-postgres opens a new connection for every write outside the webserver (NullPool). A run writes an event
per step start, output and check result — 500 for `verify_migration` — and each new connection costs a backend
fork on the server (~2.5 ms on a local socket, more over TLS to RDS), several per event: half the wall time of a
verify run went to connecting. It also remembers what it learnt of the schema: dagster-postgres reflects the
asset-key table's columns again for each asset event (four catalog queries), a third of the rest. Kept
connections are not shared across a fork: a forked child (the CLI forks its runs) drops the parent's pool without
closing the parent's sockets.
"""

from __future__ import annotations

import os
import time
import weakref
from functools import partial

import sqlalchemy as sa
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
