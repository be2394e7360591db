"""A decimal's canonical text in DuckDB is the same at the 64-bit width the row diff uses for columns that fit
(precision ≤ 18) as at DECIMAL(38): exactly `scale` digits, the sign, no exponent, as PostgreSQL writes it."""

from decimal import Decimal

import duckdb
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from consorcio_assets.checks import sql as q


@pytest.fixture(scope="module")
def con():
    with duckdb.connect() as c:
        yield c


def _text(con, value: Decimal, precision: int, scale: int, width: int) -> str:
    engine = sa.create_engine("duckdb:///:memory:")
    expr = q.decimal_text(
        sa.literal_column(f"CAST('{value}' AS DECIMAL({precision}, {scale}))"), q.num(scale), q.num(width)
    )
    return con.execute(f"SELECT {q.compile_sql(expr, engine)}").fetchone()[0]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([(15, 2), (9, 6), (5, 2), (7, 4), (18, 0)]).flatmap(
        lambda ps: st.tuples(
            st.just(ps),
            st.decimals(
                min_value=-(10 ** (ps[0] - ps[1])) + 1,
                max_value=10 ** (ps[0] - ps[1]) - 1,
                places=ps[1],
                allow_nan=False,
                allow_infinity=False,
            ),
        )
    )
)
def test_the_64_bit_text_equals_the_128_bit_text(con, case):
    (precision, scale), value = case
    narrow = _text(con, value, precision, scale, q.decimal_precision(precision))
    assert q.decimal_precision(precision) == 18
    expected = f"{(value if value else Decimal(0)):.{scale}f}"  # zero has no sign
    assert narrow == _text(con, value, precision, scale, 38) == expected


def test_wider_columns_keep_128_bits():
    assert q.decimal_precision(19) == q.decimal_precision(38) == q.decimal_precision(None) == 38
