"""How the platform connects to SQL Server: read-only intent, a login timeout, encryption unless explicitly
turned off, SNAPSHOT isolation when the database allows it.

Drivers: `pymssql` (the `[sqlserver]` extra: a wheel with FreeTDS built in, no system package) or `pyodbc`
with Microsoft's ODBC driver installed. Options ride on the source URL's query string:
`encrypt=off` (the explicit opt-out; default on) and `login_timeout=<seconds>` (default 30).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

DEFAULT_LOGIN_TIMEOUT = 30
_OFF = ("off", "no", "false", "0", "disable", "optional")


@dataclass(frozen=True)
class SourceConnection:
    """What `sa.create_engine` gets for a SQL Server source."""

    url: sa.URL
    connect_args: dict


def _options(url: sa.URL) -> tuple[sa.URL, bool, int]:
    query = dict(url.query)
    encrypt = str(query.pop("encrypt", "on")).lower() not in _OFF
    raw_timeout = query.pop("login_timeout", DEFAULT_LOGIN_TIMEOUT)
    try:
        timeout = int(str(raw_timeout))
    except ValueError:
        raise ValueError(f"source URL: login_timeout must be a whole number of seconds, not {raw_timeout!r}") from None
    return url.set(query=query), encrypt, timeout


def mssql_connection(url: str | sa.URL) -> SourceConnection:
    """The URL and driver arguments of a read-only, encrypted, timed-out connection to SQL Server."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "mssql":
        raise ValueError(f"not a SQL Server URL: {parsed.render_as_string(hide_password=True)}")
    bare, encrypt, timeout = _options(parsed)
    driver = parsed.get_driver_name()
    if driver == "pymssql":
        return SourceConnection(
            bare, {"read_only": True, "login_timeout": timeout, "encryption": "require" if encrypt else "off"}
        )
    if driver == "pyodbc":  # ODBC keywords travel in the connection string (SQLAlchemy adds query keys to it)
        query = {**bare.query, "ApplicationIntent": "ReadOnly", "Encrypt": "yes" if encrypt else "no"}
        return SourceConnection(bare.set(query=query), {"timeout": timeout})
    raise ValueError(f"SQL Server driver {driver!r} is not supported: use mssql+pymssql:// or mssql+pyodbc://")


SNAPSHOT_ALLOWED = (
    "SELECT CASE WHEN snapshot_isolation_state = 1 THEN 1 ELSE 0 END FROM sys.databases WHERE database_id = DB_ID()"
)


def snapshot_allowed(engine: sa.Engine) -> bool:
    """Whether the database allows SNAPSHOT isolation (ALLOW_SNAPSHOT_ISOLATION ON)."""
    with engine.connect() as conn:
        return bool(conn.exec_driver_sql(SNAPSHOT_ALLOWED).scalar())


def mssql_engine(url: str, **kwargs) -> sa.Engine:
    """An engine on SQL Server that reads under SNAPSHOT isolation when the database allows it (one consistent
    view per transaction: counts, aggregates and hashes of one check agree); READ COMMITTED otherwise, which the
    pre-flight reports."""
    conn = mssql_connection(url)
    engine = sa.create_engine(conn.url, connect_args=conn.connect_args, **kwargs)
    try:
        allowed = snapshot_allowed(engine)
    except sa.exc.SQLAlchemyError:  # unreachable: the first real connect (the pre-flight's) names the error
        allowed = False
    return engine.execution_options(isolation_level="SNAPSHOT") if allowed else engine
