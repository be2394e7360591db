"""The canonical row text means the same in DuckDB (SQL Server's storage) and PostgreSQL (Aurora's), for
every type family, edge values included; and the queries compile for SQL Server too."""

from datetime import date, datetime
from decimal import Decimal

import psycopg
import pyarrow as pa
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql

from consorcio_assets.catalog import parse_contract
from consorcio_assets.checks import aggregates, hashdiff, parity
from consorcio_assets.checks import sql as q
from consorcio_assets.checks.sides import SOURCE, TARGET, Side
from consorcio_assets.source.stand_in import build
from consorcio_assets.target.postgres import sqlalchemy_url
from consorcio_assets_tests.checks.reference import load

CONTRACT = """CREATE TABLE dbo.Tipos (
    Id INT NOT NULL CONSTRAINT PK_Tipos PRIMARY KEY,
    Flag BIT NULL, Mini TINYINT NULL, Valor DECIMAL(15,2) NULL, Dinheiro MONEY NULL, Dia DATE NULL,
    Antigo DATETIME NULL, Preciso DATETIME2(7) NULL, ComFuso DATETIMEOFFSET(7) NULL, Sigla CHAR(4) NULL,
    Texto NVARCHAR(40) NULL, Nota NVARCHAR(MAX) NULL, Guid UNIQUEIDENTIFIER NULL, Versao ROWVERSION NOT NULL
);
GO
CREATE TABLE dbo.Chaves (
    Codigo CHAR(3) NOT NULL, Dia DATE NOT NULL, Valor DECIMAL(9,6) NOT NULL,
    CONSTRAINT PK_Chaves PRIMARY KEY (Codigo, Dia)
);
GO
"""

ROWS = [
    (
        1,
        True,
        0,
        Decimal("-0.05"),
        Decimal("-12345.6789"),
        date(1999, 12, 31),
        datetime(2020, 2, 29, 23, 59, 59, 997000),
        "2024-01-01 10:00:00.9999999",
        "2024-03-10 23:59:59.9999999 +05:45",
        "AB",
        "ação ☃ 💶",
        "",
        "A1B2C3D4-0000-4000-8000-00000000000F",
        b"\x00\x01",
    ),
    (2, None, None, None, None, None, None, None, None, None, None, None, None, b"\xff" * 8),
    (
        3,
        False,
        255,
        Decimal("9999999999999.99"),
        Decimal("0.0001"),
        date(2024, 2, 29),
        datetime(2001, 1, 1),
        "1999-12-31 23:59:59.0000001",
        "2000-01-01 00:00:00.0000000 -14:00",
        "ABCD",
        "fim com espaço  ",
        "x" * 70_000,
        "00000000-0000-0000-0000-000000000000",
        b"",
    ),
]


def _batch(cat) -> pa.RecordBatch:
    columns = list(zip(*ROWS))
    schema = cat["Tipos"].dms_schema()
    arrays = []
    for field, values in zip(schema, columns):
        if field.name == "Preciso":
            arrays.append(pa.array([None if v is None else v for v in values], pa.string()).cast(pa.timestamp("ns")))
        else:
            arrays.append(pa.array(values, field.type))
    return pa.RecordBatch.from_arrays(
        arrays, schema=pa.schema([f.with_type(pa.timestamp("ns")) if f.name == "Preciso" else f for f in schema])
    )


def _chaves() -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "Codigo": ["AB", "AB", "XYZ"],
            "Dia": [date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 1)],
            "Valor": pa.array([Decimal("1.5"), Decimal("-2"), Decimal("0")], pa.decimal128(9, 6)),
        }
    )


@pytest.fixture
def pair(tmp_path, fresh_db):
    cat = parse_contract(CONTRACT)
    path = tmp_path / "tipos.duckdb"
    build(path, [("Tipos", _batch(cat)), ("Chaves", _chaves())], cat)
    load(path, fresh_db, tmp_path / "lake", cat)
    source = sa.create_engine(f"duckdb:///{path}", connect_args={"read_only": True}, poolclass=sa.NullPool)
    target = sa.create_engine(sqlalchemy_url(fresh_db), poolclass=sa.NullPool)
    yield cat, Side(SOURCE, source), Side(TARGET, target), fresh_db
    target.dispose()


def _texts(side: Side, table) -> list[tuple]:
    clause = side.table(table)
    fields = side.row_fields(clause, table)
    key = side.col(clause, table.column(table.primary_key[0]))
    with side.engine.connect() as conn:
        return conn.execute(
            sa.select(*(f.expr for f in fields), q.hash60(q.row_text([f.expr for f in fields])))
            .select_from(clause)
            .order_by(key)
        ).all()


def test_every_family_has_the_same_canonical_text_on_both_sides(pair):
    cat, source, target, _ = pair
    src, tgt = _texts(source, cat["Tipos"]), _texts(target, cat["Tipos"])
    assert src == tgt
    first = dict(zip([f.label for f in source.row_fields(source.table(cat["Tipos"]), cat["Tipos"])], src[0]))
    assert first["Valor"] == "-0.05" and first["Dinheiro"] == "-12345.6789" and first["Flag"] == "1"
    assert first["Preciso"] == "2024-01-01 10:00:00.999999"  # truncated like DMS, never rounded up
    assert first["ComFuso"] == "2024-03-10 18:14:59.999999" and first["com_fuso_offset_minutes"] == "345"
    assert first["Antigo"] == "2020-02-29 23:59:59.997000" and first["Sigla"] == "AB"
    assert first["Guid"] == "a1b2c3d4-0000-4000-8000-00000000000f" and first["Versao"] == "0001"
    for table in cat:
        assert hashdiff.reconcile(source, target, table).passed
        assert aggregates.reconcile(source, target, table).passed


@pytest.mark.parametrize(
    "change, column",
    [
        ("SET valor = valor - 0.01", "Valor"),
        ("SET preciso = preciso - interval '1 microsecond'", "Preciso"),
        ("SET sigla = 'AB '", "Sigla"),
        ("SET texto = upper(texto)", "Texto"),
        ("SET flag = NULL", "Flag"),
        ("SET nota = nota || '.'", "Nota"),
        ("SET guid = gen_random_uuid()", "Guid"),
    ],
)
def test_each_family_detects_a_change(pair, change, column):
    cat, source, target, url = pair
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # a faulty load: the rowversion trigger stays out
        conn.execute(f"UPDATE consorcio.tipos {change} WHERE id IN (1, 3)")
    outcome = hashdiff.reconcile(source, target, cat["Tipos"])
    assert outcome.details["column_mismatches"] == {column: 2}
    assert sorted(outcome.keys) == ["Id=1 (differs)", "Id=3 (differs)"]


def test_composite_char_and_date_key(pair):
    cat, source, target, url = pair
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM consorcio.chaves WHERE codigo = 'AB' AND dia = '2024-01-02'")
    assert hashdiff.reconcile(source, target, cat["Chaves"]).keys == ["Codigo=AB, Dia=2024-01-02 (missing in target)"]


def test_reconciliation_queries_compile_for_sql_server():
    cat = parse_contract(CONTRACT)
    side = Side(SOURCE, sa.create_mock_engine("mssql://", executor=None))
    table = cat["Tipos"]
    p = hashdiff.projection(side, table)
    texts = [
        q.compile_sql(hashdiff.segments_query(p, 0, 10, 1), mssql.dialect()),
        q.compile_sql(hashdiff.rows_query(p, 0, 10), mssql.dialect()),
        q.compile_sql(aggregates.aggregate_query(side, table, aggregates.metrics(table)), mssql.dialect()),
        q.compile_sql(parity.count_query(side, table), mssql.dialect()),
    ]
    assert "HASHBYTES('MD5'" in texts[0] and "SWITCHOFFSET" in texts[1].upper() and "COUNT_BIG(*)" in texts[3]
    assert "DATALENGTH" in texts[2]


def test_row_text_longer_than_one_concat_ws_call(pair):
    """PostgreSQL's concat_ws takes at most 100 arguments: longer rows are joined in nested calls, same text."""
    _, source, target, _ = pair
    fields = [q.text_literal(str(i)) for i in range(150)] + [sa.null()]
    expected = "|".join([*map(str, range(150)), q.NULL_MARKER])
    for side in (source, target):
        with side.engine.connect() as conn:
            assert conn.execute(sa.select(q.row_text(fields))).scalar_one() == expected
