"""A date's canonical text is 'YYYY-MM-DD' on PostgreSQL and DuckDB over SQL Server's whole DATE range, also on a
database whose own DateStyle is not ISO: PostgreSQL's cast follows the session's DateStyle, which a `Side` sets."""

from datetime import date

import duckdb
import psycopg
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import sql

from consorcio_assets.checks import sql as q
from consorcio_assets.checks.sides import TARGET, Side
from consorcio_assets.target.postgres import sqlalchemy_url
from consorcio_assets_tests.conftest import _new_database


@pytest.fixture(scope="module")
def german_dates(pg_server_url):
    """A Side on a database whose default DateStyle writes 31.12.1999 (and a plain engine on it)."""
    database = _new_database(pg_server_url, "t_german")
    libpq_url = next(database)
    with psycopg.connect(libpq_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET DateStyle = 'German, DMY'").format(sql.Identifier(conn.info.dbname))
        )
    url = sqlalchemy_url(libpq_url)
    side = Side(TARGET, sa.create_engine(url, poolclass=sa.NullPool))
    plain = sa.create_engine(url, poolclass=sa.NullPool)
    yield side, plain
    side.engine.dispose()
    plain.dispose()
    next(database, None)  # drops it


def _text(engine: sa.Engine, day: date) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.select(q.date_text(sa.literal(day, sa.Date())))).scalar_one()


def test_a_side_writes_iso_where_the_database_would_not(german_dates):
    side, plain = german_dates
    assert _text(plain, date(1999, 12, 31)) == "31.12.1999"  # what the cast gives without the Side's setting
    assert _text(side.engine, date(1999, 12, 31)) == "1999-12-31"


@settings(max_examples=80, deadline=None)
@given(st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))
def test_postgresql_and_duckdb_write_every_sql_server_date_alike(german_dates, day):
    side, _ = german_dates
    duck = sa.create_engine("duckdb:///:memory:")
    expr = q.compile_sql(q.date_text(sa.literal_column(f"DATE '{day.isoformat()}'")), duck)
    with duckdb.connect() as con:
        in_duckdb = con.execute(f"SELECT {expr}").fetchone()[0]
    assert _text(side.engine, day) == in_duckdb == day.isoformat()
