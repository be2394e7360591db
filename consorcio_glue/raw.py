"""Reading the raw zone: the LOAD files DMS wrote for a table (Parquet, or CSV typed as DMS types Parquet),
checked against the catalog's columns and streamed one row group or CSV block at a time."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from consorcio_core.dms_csv import CsvHeaderError, text_batches, typed_batch
from consorcio_core.dms_layout import LOAD_FILE, table_folder
from consorcio_core.lake import LakeFiles
from consorcio_glue.args import JobArgs
from consorcio_glue.errors import JobError, no_values
from consorcio_glue.keys import key_json_text, key_text
from consorcio_glue.spec import Spec


@dataclass
class RawBatch:
    batch: pa.RecordBatch  # source column names, DMS types
    file: str  # path relative to the lake root
    first_row: int  # 0-based row number of the batch's first row within its file


@dataclass
class RawRejects:
    """Rows a CSV reader had to skip (wrong column count) in reject mode."""

    rows: list[dict] = field(default_factory=list)


def raw_files(lake: LakeFiles, args: JobArgs, spec: Spec) -> list[pafs.FileInfo]:
    base = lake.path(table_folder(args.endpoint, spec.source_schema, spec.source_name))
    listed = [(f, m["format"]) for f in lake.files_under(base) if (m := LOAD_FILE.match(f.base_name))]
    files = [f for f, _ in listed]
    wanted = "parquet" if args.raw_format == "parquet" else "csv"
    other = [f for f, kind in listed if kind != wanted]
    if other:
        raise JobError(f"{spec.source_name}: {lake.relative(other[0].path)} is not {wanted} (DataFormat is {wanted})")
    if not files and spec.expected_rows:
        raise JobError(
            f"{spec.source_name}: no LOAD files under {lake.relative(base)}/ but DMS loaded "
            f"{spec.expected_rows} rows from the source: the raw zone is missing this table's files"
        )
    return files


def _check_file_schema(spec: Spec, schema: pa.Schema, file: str, extra: Sequence[str]) -> list[str]:
    """Columns to read from a file; an unexpected, missing or retyped column is schema drift."""
    names = [n for n in schema.names if n not in extra]
    expected = [c.source for c in spec.columns]
    if sorted(names) != sorted(expected):
        missing = sorted(set(expected) - set(names))
        unexpected = sorted(set(names) - set(expected))
        raise JobError(
            f"{spec.source_name}: {file} has columns that differ from the catalog "
            f"(missing {missing}, unexpected {unexpected})"
        )
    for c in spec.columns:
        got, want = schema.field(c.source).type, c.dms_type()
        if got != want and not _compatible(got, want):
            raise JobError(f"{spec.source_name}.{c.source}: {file} has type {got}, the catalog says {want}")
    return expected


def _compatible(got: pa.DataType, want: pa.DataType) -> bool:
    if pa.types.is_timestamp(got) and pa.types.is_timestamp(want):
        return got.tz is None  # ParquetTimestampInMillisecond writes timestamp[ms]
    return (pa.types.is_large_string(got) and want == pa.string()) or (
        pa.types.is_large_binary(got) and want == pa.binary()
    )


def parquet_batches(
    pf: pq.ParquetFile, rows: int, columns: list[str] | None = None, groups: list[int] | None = None
) -> Iterator[pa.RecordBatch]:
    """The file's rows in batches of about `rows`, reading one row group at a time: `iter_batches` over a whole
    file holds memory that grows with the file (measured: +190 MB at 250k simulação rows, +340 MB at 1M), and DMS
    files grow with the table up to MaxFileSize. DMS's small row groups are coalesced into `rows`-row batches.
    `groups` limits the read to those row groups (a Spark executor's share of the file)."""
    pending: list[pa.RecordBatch] = []
    buffered = 0
    for index in range(pf.metadata.num_row_groups) if groups is None else groups:
        if pf.metadata.row_group(index).num_rows > rows:  # a large row group streams on its own
            yield from _coalesced(pending)
            pending, buffered = [], 0
            yield from pf.iter_batches(batch_size=rows, row_groups=[index], columns=columns)
            continue
        group = pf.read_row_group(index, columns=columns)
        pending.extend(group.to_batches())
        buffered += group.num_rows
        if buffered >= rows:
            yield from _coalesced(pending)
            pending, buffered = [], 0
    yield from _coalesced(pending)


def _coalesced(batches: list[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """One contiguous batch (Arrow copies each column once), so the transform and COPY see few large batches."""
    if sum(b.num_rows for b in batches):
        yield from pa.Table.from_batches(batches).combine_chunks().to_batches()


def read_parquet(
    lake: LakeFiles, info: pafs.FileInfo, spec: Spec, args: JobArgs, groups: list[int] | None = None, first_row: int = 0
) -> Iterator[RawBatch]:
    """The file's rows (or those of its row `groups`, the first of which is row `first_row` of the file)."""
    rel = lake.relative(info.path)
    batch, row = None, first_row
    try:
        pf = pq.ParquetFile(lake.fs.open_input_file(info.path))
        columns = _check_file_schema(spec, pf.schema_arrow, rel, args.extra_columns)
        for batch in parquet_batches(pf, args.batch_rows, columns, groups):
            yield RawBatch(batch, rel, row)
            row += batch.num_rows
    except (pa.ArrowException, OSError) as err:
        raise JobError(
            f"{spec.source_name}: cannot read {rel}: {type(err).__name__}: {no_values(str(err))}{_after(spec, batch)}"
        ) from None


def _after(spec: Spec, batch) -> str:
    if batch is None or batch.num_rows == 0:
        return " (before the first row)"
    return f" (after key {key_text(spec, batch, batch.num_rows - 1)})"


def read_csv(
    lake: LakeFiles, info: pafs.FileInfo, spec: Spec, args: JobArgs, skipped: RawRejects
) -> Iterator[RawBatch]:
    """The file's rows through the one DMS CSV reader (`consorcio_core.dms_csv`), typed as DMS types Parquet."""
    rel = lake.relative(info.path)
    names = [*args.extra_columns, *(c.source for c in spec.columns)]
    pk_positions = [names.index(k) for k in spec.primary_key]
    problems: list[str] = []

    def on_invalid_row(row) -> str:
        key = _csv_row_key(row.text, args.csv_delimiter, pk_positions, spec.primary_key)
        reason = f"wrong column count: expected {row.expected_columns}, got {row.actual_columns}"
        if args.on_invalid == "reject":
            skipped.rows.append(
                {
                    "source_file": rel,
                    "row_number": row.number,
                    "primary_key": key,
                    "column_name": None,
                    "reason": reason,
                }
            )
            return "skip"
        where = f"row {row.number}" if row.number is not None else "a row"
        problems.append(f"{spec.source_name}: {rel} {where} (key {key_json_text(key)}): {reason}")
        return "error"

    schema = pa.schema([(c.source, c.dms_type()) for c in spec.columns])
    row = 0
    batch = None
    try:
        for text in text_batches(lake.fs, info.path, args.endpoint, names, invalid_row_handler=on_invalid_row):
            batch = typed_batch(text, schema)
            yield RawBatch(batch, rel, row)
            row += batch.num_rows
    except CsvHeaderError:
        raise JobError(f"{spec.source_name}: {rel} header does not match the catalog's columns") from None
    except (pa.ArrowException, OSError) as err:
        if problems:
            raise JobError(problems[0]) from None
        raise JobError(
            f"{spec.source_name}: cannot read {rel}: {type(err).__name__}: {no_values(str(err))}{_after(spec, batch)}"
        ) from None


def _csv_row_key(text: str, delimiter: str, positions: list[int], names: list[str]) -> dict:
    import csv

    fields = next(csv.reader([text], delimiter=delimiter), [])
    return {n: (fields[p] if p < len(fields) else None) for n, p in zip(names, positions)}
