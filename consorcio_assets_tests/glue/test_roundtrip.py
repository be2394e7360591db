"""Every type of the mapping round-trips exactly through the Glue script (raw Parquet or CSV → Aurora)."""

from __future__ import annotations

import datetime as dt
import decimal
import tempfile
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from consorcio_assets.catalog import parse_contract
from consorcio_assets_tests.glue.helpers import dms_table, fetch, offset_text, ok, run_job, write_raw

CONTRACT = """
CREATE TABLE dbo.TodosTipos (
    Id INT NOT NULL CONSTRAINT PK_TodosTipos PRIMARY KEY,
    Bit BIT NULL, Tiny TINYINT NULL, Small SMALLINT NULL, Inteiro INT NULL, Grande BIGINT NULL,
    Dec38 DECIMAL(38,10) NULL, Dec152 NUMERIC(15,2) NULL, Dinheiro MONEY NULL, DinheiroPequeno SMALLMONEY NULL,
    Float8 FLOAT NULL, Data DATE NULL, Hora TIME(7) NULL, SmallDt SMALLDATETIME NULL, Dt DATETIME NULL,
    Dt2 DATETIME2(7) NULL, Dto DATETIMEOFFSET(7) NULL, Dto3 DATETIMEOFFSET(3) NULL, Dto0 DATETIMEOFFSET(0) NULL,
    Ch CHAR(10) NULL, NCh NCHAR(10) NULL, Vc VARCHAR(50) NULL, NVc NVARCHAR(50) NULL, VcMax VARCHAR(MAX) NULL,
    NVcMax NVARCHAR(MAX) NULL, Txt TEXT NULL, Xm XML NULL, Guid UNIQUEIDENTIFIER NULL, Bin BINARY(8) NULL,
    VarBin VARBINARY(16) NULL, VarBinMax VARBINARY(MAX) NULL, Rv ROWVERSION NOT NULL
);
GO
"""
CATALOG = parse_contract(CONTRACT)
TABLE = CATALOG["TodosTipos"]
UTC = dt.UTC
TRICKY = ['"', "'", ",", ";", "\n", "\r\n", '"quoted, with\nnewline"', "😀🇧🇷", "ação", "\\.", "NULL", "", " ", "\\N"]


def _text(max_size: int):
    chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
    return st.one_of(
        st.none(), st.sampled_from([t for t in TRICKY if len(t) <= max_size]), st.text(chars, max_size=max_size)
    )


def _decimal(precision: int, scale: int):
    """Every decimal(p, s), built from its unscaled integer (text construction is exact at any precision)."""
    unscaled = st.one_of(st.integers(-(10**precision) + 1, 10**precision - 1), st.sampled_from([0, 1, -1]))
    return unscaled.map(lambda n: decimal.Decimal(f"{n}E-{scale}"))


def _instant(unit: int):
    """UTC instants SQL Server can hold with any offset, at `unit` µs precision."""
    lo, hi = dt.datetime(1, 1, 2, tzinfo=UTC), dt.datetime(9999, 12, 30, tzinfo=UTC)
    return st.datetimes(min_value=lo.replace(tzinfo=None), max_value=hi.replace(tzinfo=None)).map(
        lambda d: d.replace(microsecond=d.microsecond // unit * unit, tzinfo=UTC)
    )


def _offset_value(unit: int):
    return st.one_of(st.none(), st.tuples(_instant(unit), st.integers(-12 * 60, 14 * 60), st.integers(0, 9)))


def _datetime(lo, hi, unit):
    return st.one_of(
        st.none(),
        st.datetimes(min_value=lo, max_value=hi).map(lambda d: d.replace(microsecond=d.microsecond // unit * unit)),
    )


ROW = st.fixed_dictionaries(
    {
        "Bit": st.one_of(st.none(), st.booleans()),
        "Tiny": st.one_of(st.none(), st.integers(0, 255)),
        "Small": st.one_of(st.none(), st.integers(-(2**15), 2**15 - 1)),
        "Inteiro": st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)),
        "Grande": st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
        "Dec38": st.one_of(st.none(), _decimal(38, 10)),
        "Dec152": st.one_of(st.none(), _decimal(15, 2)),
        "Dinheiro": st.one_of(st.none(), _decimal(19, 4)),
        "DinheiroPequeno": st.one_of(st.none(), _decimal(10, 4)),
        "Float8": st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
        "Data": st.one_of(st.none(), st.dates()),
        "Hora": st.one_of(st.none(), st.times()),
        "SmallDt": _datetime(dt.datetime(1900, 1, 1), dt.datetime(2079, 6, 6), 60_000_000).map(
            lambda d: d and d.replace(second=0, microsecond=0)
        ),
        "Dt": _datetime(dt.datetime(1753, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59), 1000),
        "Dt2": _datetime(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999), 1),
        "Dto": _offset_value(1),
        "Dto3": _offset_value(1000),
        "Dto0": _offset_value(1_000_000),
        "Ch": _text(10),
        "NCh": _text(10),
        "Vc": _text(50),
        "NVc": _text(50),
        "VcMax": _text(300),
        "NVcMax": _text(300),
        "Txt": _text(100),
        "Xm": _text(100),
        "Guid": st.one_of(st.none(), st.uuids()),
        "Bin": st.one_of(st.none(), st.binary(min_size=8, max_size=8)),
        "VarBin": st.one_of(st.none(), st.binary(max_size=16)),
        "VarBinMax": st.one_of(st.none(), st.binary(max_size=200)),
        "Rv": st.binary(min_size=8, max_size=8),
    }
)

EDGES = [
    {
        "Tiny": 255,
        "Small": -(2**15),
        "Inteiro": 2**31 - 1,
        "Grande": -(2**63),
        "Dec38": decimal.Decimal("-9999999999999999999999999999.9999999999"),
        "Dec152": decimal.Decimal("0.01"),
        "Dinheiro": decimal.Decimal("922337203685477.5807"),
        "DinheiroPequeno": decimal.Decimal("-214748.3648"),
        "Float8": 5e-324,
        "Data": dt.date(1, 1, 1),
        "Hora": dt.time(23, 59, 59, 999999),
        "Dt2": dt.datetime(1, 1, 1),
        "Dto": (dt.datetime(1, 1, 2, tzinfo=UTC), -12 * 60, 9),
        "Dto3": (dt.datetime(9999, 12, 30, 23, 59, 59, 999000, tzinfo=UTC), 14 * 60, 0),
        "Ch": "",
        "Vc": "",
        "NVcMax": None,
        "Bin": bytes(8),
        "VarBin": b"",
        "Rv": b"\xff" * 8,
    },
    {
        "Dec38": decimal.Decimal("9999999999999999999999999999.9999999999"),
        "Data": dt.date(9999, 12, 31),
        "Dt2": dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        "Float8": -1.7976931348623157e308,
        "Dto": (dt.datetime(2024, 2, 29, 12, 0, 0, 123456, tzinfo=UTC), 5 * 60 + 45, 5),
        "Ch": "  a b  ",
        "Vc": 'x"y,z\nw',
        "VcMax": "😀" * 300,
        "Guid": uuid.UUID(int=0),
        "Rv": bytes(8),
    },
]


def _dms_rows(rows: list[dict]) -> list[dict]:
    out = []
    for i, row in enumerate(rows):
        raw = {"Id": i, **row}
        for name in ("Dto", "Dto3", "Dto0"):
            if raw.get(name) is not None:
                instant, offset, digit = raw[name]
                local = instant.astimezone(dt.timezone(dt.timedelta(minutes=offset)))
                raw[name] = offset_text(local, TABLE.column(name).fsp, digit)
        out.append(raw)
    return out


def _expected(rows: list[dict]) -> list[dict]:
    out = []
    for i, row in enumerate(rows):
        exp = {"id": i}
        for c in TABLE.columns[1:]:
            value = row.get(c.name)
            if c.family == "timestamptz":
                exp[c.target_name] = value and value[0]
                exp[c.offset_column] = value and value[1]
            elif c.family == "char" and value is not None:
                exp[c.target_name] = value.rstrip(" ")
            else:
                exp[c.target_name] = value
        out.append(exp)
    return out


def _loaded(pg_url: str) -> list[dict]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(pg_url, row_factory=dict_row) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        return conn.execute("SELECT * FROM consorcio.todos_tipos ORDER BY id").fetchall()


def _roundtrip(pg_url: str, rows: list[dict], fmt: str) -> None:
    rows = EDGES + rows
    with tempfile.TemporaryDirectory() as tmp:
        lake = Path(tmp) / "lake"
        data = dms_table(TABLE, _dms_rows(rows))
        write_raw(lake, TABLE, data, fmt=fmt, rows_per_file=7)
        ok(run_job(lake, TABLE, CATALOG, pg_url, "--raw-format", fmt, expected_rows=len(rows)))
    loaded = _loaded(pg_url)
    assert len(loaded) == len(rows)
    for got, want in zip(loaded, _expected(rows)):
        got = {k: (bytes(v) if isinstance(v, memoryview) else v) for k, v in got.items()}
        assert got == want


# Each example is a subprocess run of the job: a few derandomized examples, no shrinking (minutes per step).
SETTINGS = settings(
    max_examples=3,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@SETTINGS
@given(rows=st.lists(ROW, min_size=1, max_size=25))
def test_every_type_round_trips_exactly(fresh_db, fmt, rows):
    _roundtrip(fresh_db, rows, fmt)


def test_offset_companion_and_types_in_aurora(fresh_db, tmp_path):
    """The physical model: types from the mapping, companions after their column, NOT NULL kept."""
    lake = tmp_path / "lake"
    write_raw(lake, TABLE, dms_table(TABLE, _dms_rows(EDGES)))
    ok(run_job(lake, TABLE, CATALOG, fresh_db))
    cols = fetch(
        fresh_db,
        "SELECT column_name, format_type(atttypid, atttypmod), attnotnull FROM "
        "information_schema.columns c JOIN pg_attribute a ON a.attrelid = 'consorcio.todos_tipos'::regclass "
        "AND a.attname = c.column_name WHERE table_schema = 'consorcio' AND table_name = 'todos_tipos' "
        "ORDER BY ordinal_position",
    )
    types = {name: t for name, t, _ in cols}
    names = [name for name, _, _ in cols]
    assert names.index("dto_offset_minutes") == names.index("dto") + 1
    assert types["dto"] == "timestamp(6) with time zone" and types["dto_offset_minutes"] == "smallint"
    assert types["dinheiro"] == "numeric(19,4)" and types["tiny"] == "smallint" and types["guid"] == "uuid"
    assert types["rv"] == "bytea" and types["ch"] == "character varying(10)" and types["vc_max"] == "text"
    assert dict((n, nn) for n, _, nn in cols)["rv"] is True
