"""The job's binary COPY streams on their own: every batch lands once across the streams,
and a value PostgreSQL refuses fails the load naming the table, the stream and the column, never the value."""

from __future__ import annotations

import psycopg
import pyarrow as pa
import pytest

from consorcio_glue.errors import JobError
from consorcio_glue.streams import IngestStreams

SECRET = "Maria-Secreta-da-Silva"


class _Spec:
    """The part of the job's `Spec` the streams read."""

    target = "pessoa"
    staging_schema = "stage_test"

    @staticmethod
    def target_schema() -> pa.Schema:
        return pa.schema(
            [
                pa.field("pessoa_id", pa.int64(), False),
                pa.field("guid", pa.uuid()),
                pa.field("nome", pa.string()),
                pa.field("saldo", pa.decimal128(15, 2)),
            ]
        )

    @classmethod
    def target_columns(cls) -> list[str]:
        return cls.target_schema().names

    @classmethod
    def copy_columns(cls) -> list[str]:  # no generated column here
        return cls.target_columns()


@pytest.fixture
def staging(fresh_db):
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA stage_test")
        conn.execute(
            "CREATE TABLE stage_test.pessoa (pessoa_id bigint NOT NULL, guid uuid, nome varchar(10), "
            "saldo numeric(15,2))"
        )
    return fresh_db


def _batch(start: int, n: int, nome: str = "Ana") -> pa.RecordBatch:
    import uuid

    ids = list(range(start, start + n))
    guids = pa.ExtensionArray.from_storage(pa.uuid(), pa.array([uuid.UUID(int=i).bytes for i in ids], pa.binary(16)))
    return pa.RecordBatch.from_arrays(
        [pa.array(ids, pa.int64()), guids, pa.array([nome] * n), pa.array([None] * n, pa.decimal128(15, 2))],
        schema=_Spec.target_schema(),
    )


def test_batches_spread_over_the_streams_land_exactly_once(staging):
    streams = IngestStreams(staging, _Spec, 3)
    for start in range(0, 10_000, 1_000):
        streams.put(_batch(start, 1_000))
    streams.close()
    assert streams.rows == 10_000
    with psycopg.connect(staging) as conn:
        count, distinct, lo, hi = conn.execute(
            "SELECT count(*), count(DISTINCT pessoa_id), min(pessoa_id), max(pessoa_id) FROM stage_test.pessoa"
        ).fetchone()
    assert (count, distinct, lo, hi) == (10_000, 10_000, 0, 9_999)


def test_a_refused_value_fails_naming_table_stream_and_column_without_the_value(staging):
    streams = IngestStreams(staging, _Spec, 1)
    streams.put(_batch(0, 10))
    streams.put(_batch(10, 1, nome=SECRET))  # longer than varchar(10)
    with pytest.raises(JobError) as failed:
        streams.close()
    message = str(failed.value)
    assert message.startswith("pessoa: COPY stream 0 into the staging table failed")
    assert "column nome" in message and "22001" in message
    assert SECRET not in message
    with psycopg.connect(staging) as conn:  # the stream's transaction never committed
        assert conn.execute("SELECT count(*) FROM stage_test.pessoa").fetchone()[0] == 0
