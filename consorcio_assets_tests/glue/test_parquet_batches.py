"""The job reads Parquet one row group at a time (bounded memory whatever the file's size): every row comes out
once, in file order, in non-empty batches of less than twice the batch size."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from consorcio_glue.raw import parquet_batches


def _file(group_sizes: list[int]) -> tuple[pq.ParquetFile, pa.Table]:
    total = sum(group_sizes)
    table = pa.table({"id": pa.array(range(total), pa.int64()), "text": [f"r{i}" for i in range(total)]})
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, table.schema) as writer:
        start = 0
        for size in group_sizes:
            writer.write_table(table.slice(start, size), row_group_size=max(size, 1))
            start += size
    return pq.ParquetFile(io.BytesIO(sink.getvalue())), table


@settings(max_examples=60)
@given(
    group_sizes=st.lists(st.integers(0, 40), min_size=0, max_size=12), rows=st.integers(1, 50), only_id=st.booleans()
)
def test_every_row_once_in_order_in_bounded_batches(group_sizes, rows, only_id):
    pf, table = _file(group_sizes)
    columns = ["id"] if only_id else None
    batches = list(parquet_batches(pf, rows, columns))
    assert all(0 < b.num_rows < 2 * rows for b in batches)  # small groups coalesce, a large one is split
    assert all(b.schema.names == (columns or table.column_names) for b in batches)
    read = pa.Table.from_batches(batches, schema=batches[0].schema) if batches else table.slice(0, 0)
    assert read.column("id").to_pylist() == list(range(table.num_rows))
