"""The job's binary COPY encoder (`copy_rows`) against PostgreSQL itself: any values of every Arrow type the
catalog produces, NULLs included, read back exactly as sent. Both of its paths are exercised: one fixed-width
matrix when a batch has no NULL and no text, Arrow-joined fields otherwise."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import numpy as np
import psycopg
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consorcio_assets.catalog import catalog
from consorcio_assets.glue_runner.spec import table_spec
from consorcio_core.arrow_types import ARROW_FACTORIES
from consorcio_glue.copy_binary import copy_rows
from consorcio_glue.spec import Spec
from consorcio_glue.streams import IngestStreams

UTC = dt.UTC

#: (column, Arrow type, PostgreSQL type, values)
COLUMNS = [
    ("i16", pa.int16(), "smallint", st.integers(-(2**15), 2**15 - 1)),
    ("i32", pa.int32(), "integer", st.integers(-(2**31), 2**31 - 1)),
    ("i64", pa.int64(), "bigint", st.integers(-(2**63), 2**63 - 1)),
    ("flag", pa.bool_(), "boolean", st.booleans()),
    ("real", pa.float32(), "real", st.floats(width=32, allow_nan=False)),
    ("double", pa.float64(), "double precision", st.floats(allow_nan=False)),
    ("day", pa.date32(), "date", st.dates()),
    ("hour", pa.time64("us"), "time", st.times()),
    ("at", pa.timestamp("us"), "timestamp", st.datetimes()),
    ("at_utc", pa.timestamp("us", "UTC"), "timestamptz", st.datetimes(timezones=st.just(UTC))),
    ("money", pa.decimal128(15, 2), "numeric(15,2)", st.decimals(-(10**13) + 1, 10**13 - 1, places=2)),
    ("pct", pa.decimal128(9, 6), "numeric(9,6)", st.decimals(-999, 999, places=6)),
    ("wide", pa.decimal128(19, 4), "numeric(19,4)", st.decimals(-(10**15) + 1, 10**15 - 1, places=4)),
    ("huge", pa.decimal128(38, 2), "numeric(38,2)", st.decimals(-(10**36) + 1, 10**36 - 1, places=2)),
    ("units", pa.decimal128(5, 0), "numeric(5,0)", st.decimals(-99999, 99999, places=0)),
    (
        "name",
        pa.string(),
        "text",
        st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=30),
    ),
    ("blob", pa.binary(), "bytea", st.binary(max_size=20)),
    ("guid", pa.uuid(), "uuid", st.uuids()),
]


def _arrow(values: list, kind: pa.DataType) -> pa.Array:
    if kind == pa.uuid():
        storage = pa.array([None if v is None else v.bytes for v in values], pa.binary(16))
        return pa.ExtensionArray.from_storage(kind, storage)
    return pa.array(values, kind)


def _expected(value, kind: pa.DataType):
    if isinstance(value, dt.datetime) and kind == pa.timestamp("us"):
        return value.replace(tzinfo=None)
    return value


def _same(rows: list[tuple], columns) -> list[tuple]:
    """Rows with `real` values compared as float32 (their text form, which psycopg reads, is the shortest that
    round-trips in float32, not in Python's float64)."""
    single = [i for i, c in enumerate(columns) if c[1] == pa.float32()]
    return [tuple(float(np.float32(v)) if i in single and v is not None else v for i, v in enumerate(r)) for r in rows]


@pytest.fixture(scope="module")
def db(pg_server_url):
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = pg_server_url.replace("/postgres?", f"/{name}?", 1)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA stage_test")
    return url


class _Spec:
    target = "todos"
    staging_schema = "stage_test"

    def __init__(self, columns):
        self.columns = columns

    def target_schema(self) -> pa.Schema:
        return pa.schema([pa.field(name, kind) for name, kind, _, _ in self.columns])

    def target_columns(self) -> list[str]:
        return self.target_schema().names

    def copy_columns(self) -> list[str]:  # no generated column here
        return self.target_columns()


def _round_trip(url: str, columns, rows: list[tuple]) -> list[tuple]:
    spec = _Spec(columns)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS stage_test.todos")
        conn.execute("CREATE TABLE stage_test.todos (" + ", ".join(f"{n} {pg}" for n, _, pg, _ in columns) + ")")
    arrays = [_arrow([r[i] for r in rows], kind) for i, (_, kind, _, _) in enumerate(columns)]
    streams = IngestStreams(url, spec, 1)
    streams.put(pa.RecordBatch.from_arrays(arrays, schema=spec.target_schema()))
    streams.close()
    assert streams.rows == len(rows)
    with psycopg.connect(url) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        return conn.execute("SELECT * FROM stage_test.todos").fetchall()


def _rows(nullable: bool):
    values = [st.one_of(st.none(), strategy) if nullable else strategy for _, _, _, strategy in COLUMNS]
    return st.lists(st.tuples(*values), min_size=1, max_size=25)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(rows=_rows(nullable=True))
def test_every_type_with_nulls_reads_back_exactly(db, rows):
    back = _round_trip(db, COLUMNS, rows)
    assert _same(back, COLUMNS) == _same([tuple(_expected(v, c[1]) for v, c in zip(r, COLUMNS)) for r in rows], COLUMNS)


FIXED = [c for c in COLUMNS if c[0] not in ("name", "blob")]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(rows=st.lists(st.tuples(*(strategy for _, _, _, strategy in FIXED)), min_size=1, max_size=25))
def test_fixed_width_rows_without_nulls_read_back_exactly(db, rows):
    back = _round_trip(db, FIXED, rows)
    assert _same(back, FIXED) == _same([tuple(_expected(v, c[1]) for v, c in zip(r, FIXED)) for r in rows], FIXED)


def test_a_sliced_batch_sends_only_its_rows(db):
    columns = [COLUMNS[2], COLUMNS[10], COLUMNS[15]]  # bigint, numeric, text
    whole = pa.RecordBatch.from_arrays(
        [
            pa.array(range(10), pa.int64()),
            pa.array([Decimal(i) / 4 for i in range(10)], pa.decimal128(15, 2)),
            pa.array([f"n{i}" for i in range(10)]),
        ],
        names=[c[0] for c in columns],
    )
    for part in (whole.slice(3, 4), whole.slice(3, 4).drop_columns(["name"])):
        data = copy_rows(part)
        assert bytes(data).count(b"n3") == (1 if "name" in part.schema.names else 0)
    spec = _Spec(columns)
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS stage_test.todos")
        conn.execute("CREATE TABLE stage_test.todos (i64 bigint, money numeric(15,2), name text)")
    streams = IngestStreams(db, spec, 1)
    streams.put(whole.slice(3, 4))
    streams.close()
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT i64, money, name FROM stage_test.todos ORDER BY 1").fetchall() == [
            (i, Decimal(i) / 4, f"n{i}") for i in range(3, 7)
        ]


def test_every_type_the_catalog_loads_has_an_encoding():
    cat = catalog()
    kinds = {f.type for t in cat for f in Spec(table_spec(t, cat))._target_schema}
    kinds |= {factory() for factory in ARROW_FACTORIES.values()}
    for kind in kinds:
        assert copy_rows(pa.RecordBatch.from_arrays([pa.nulls(1, kind)], names=["c"])).nbytes > 0


def test_decimals_at_the_int64_edge_read_back_exactly(db):
    """-2^63 unscaled fits int64 but its magnitude does not: it must take the exact path."""
    column = ("edge", pa.decimal128(38, 0), "numeric(38,0)", None)
    values = [Decimal(-(2**63)), Decimal(2**63 - 1), Decimal(-(2**63) + 1), Decimal(0)]
    assert [r[0] for r in _round_trip(db, [column], [(v,) for v in values])] == values
