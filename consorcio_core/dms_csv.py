"""The one reader of the CSV files DMS writes, used by the raw-zone checks and by the Glue job.

Every parsing rule comes from the S3 endpoint settings the files were written with: the delimiter
(CsvDelimiter), quoting (Rfc4180: double quotes, doubled inside, values may span lines; without it nothing is
quoted), the null marker (CsvNullValue; a quoted value equal to it is text, not NULL), the header (AddColumnName:
it must name exactly the expected columns) and GZIP by the `.csv.gz` extension. Text is then typed as DMS types
the same columns in Parquet, flagging what does not parse instead of failing the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import cache

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs

from consorcio_core.arrow_casts import cast_rows, unhex_binary
from consorcio_core.dms_endpoint import EndpointSettings

BLOCK_BYTES = 8 << 20
#: the boolean column that flags a column's unparsable values in a typed batch
INVALID_PREFIX = "__invalid__"


class CsvHeaderError(ValueError):
    """A header row that does not name the expected columns (its text is never quoted: it may be a data row)."""


def text_batches(
    fs: pafs.FileSystem,
    path: str,
    endpoint: EndpointSettings,
    names: Sequence[str],
    *,
    invalid_row_handler: Callable | None = None,
) -> Iterator[pa.RecordBatch]:
    """The file's rows as text columns `names` (DMS's extra columns first, then the table's), streamed in blocks.

    `invalid_row_handler` is pyarrow's: it sees rows with the wrong number of fields (skip or error)."""
    endpoint.require_readable_csv()
    names = list(names)
    read = pacsv.ReadOptions(
        column_names=None if endpoint.add_column_name else names, block_size=BLOCK_BYTES, use_threads=True
    )
    parse = pacsv.ParseOptions(
        delimiter=endpoint.csv_delimiter,
        quote_char='"' if endpoint.rfc4180 else False,
        double_quote=endpoint.rfc4180,
        escape_char=False,
        newlines_in_values=endpoint.rfc4180,
        invalid_row_handler=invalid_row_handler,
    )
    convert = pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names},
        null_values=[endpoint.csv_null_value],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    with fs.open_input_stream(path, compression="gzip" if path.endswith(".gz") else None) as stream:
        reader = pacsv.open_csv(stream, read, parse, convert)
        if reader.schema.names != names:
            raise CsvHeaderError(f"header does not name the expected {len(names)} columns {names} in order")
        yield from reader


@cache  # built on first use: pyarrow imports pandas to build an array from a list (0.3-0.5 s at every start-up)
def _bool_spellings() -> tuple[pa.Array, pa.Array]:
    return pa.array(["1", "true", "t", "y", "yes"]), pa.array(["0", "false", "f", "n", "no"])


def _csv_bool(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    low = pc.utf8_lower(pc.utf8_trim_whitespace(arr))
    spelled_true, spelled_false = _bool_spellings()
    is_true, is_false = pc.is_in(low, spelled_true), pc.is_in(low, spelled_false)
    value = pc.if_else(is_true, True, pc.if_else(is_false, False, None))
    return value, pc.and_(arr.is_valid(), pc.invert(pc.or_(is_true, is_false)))


def _csv_binary(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    ok = pc.match_substring_regex(arr, r"^(0[xX])?([0-9A-Fa-f]{2})*$")
    clean = pc.if_else(ok, pc.replace_substring_regex(arr, r"^0[xX]", ""), None)
    return unhex_binary(clean), pc.and_(arr.is_valid(), pc.invert(ok.fill_null(False)))


def _csv_time(arr: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    stamped = pc.binary_join_element_wise("1970-01-01 ", pc.utf8_slice_codeunits(arr, 0, 15), "")
    ts, bad = cast_rows(stamped, pa.timestamp("us"))
    return pc.cast(ts, pa.time64("us")), bad


def _typed(arr: pa.Array, want: pa.DataType) -> tuple[pa.Array, pa.Array | None]:
    """One text column as DMS's Arrow type, and the flags of the values that do not parse (None: all did)."""
    if want == pa.string():
        return arr, None
    if want == pa.bool_():
        return _csv_bool(arr)
    if want == pa.binary():
        return _csv_binary(arr)
    if want == pa.time64("us"):
        return _csv_time(arr)
    if pa.types.is_timestamp(want):
        return cast_rows(pc.utf8_slice_codeunits(arr, 0, 26), want)
    value, bad = cast_rows(arr, want)
    if pa.types.is_floating(want):
        overflow = pc.and_(pc.is_inf(value), pc.invert(pc.match_substring_regex(arr, "(?i)inf")))
        bad = overflow if bad is None else pc.or_(bad, overflow)
    return value, bad


def typed_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Text columns to the Arrow types in `schema` (DMS's Parquet types); unparsable values come back as nulls
    with an `__invalid__<column>` boolean column after their column, so callers report them by key."""
    arrays, names = [], []
    for field in schema:
        value, bad = _typed(batch.column(field.name), field.type)
        arrays.append(value)
        names.append(field.name)
        if bad is not None:
            arrays.append(bad.fill_null(False))
            names.append(f"{INVALID_PREFIX}{field.name}")
    return pa.RecordBatch.from_arrays(arrays, names=names)


def read_typed(
    fs: pafs.FileSystem, path: str, endpoint: EndpointSettings, schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """The file's rows typed as `schema` (all its columns, extra ones included). A row with the wrong number
    of fields or a value that does not parse raises a ValueError saying where (row, column), never the values."""
    problems: list[str] = []

    def wrong_count(row) -> str:
        where = "a row" if row.number is None else f"row {row.number}"  # unknown when values may span lines
        problems.append(f"{where}: {row.actual_columns} fields where {row.expected_columns} were expected")
        return "error"

    try:
        for batch in text_batches(fs, path, endpoint, schema.names, invalid_row_handler=wrong_count):
            typed = typed_batch(batch, schema)
            for name in typed.schema.names:
                if name.startswith(INVALID_PREFIX) and (bad := pc.sum(typed.column(name)).as_py() or 0):
                    column = name[len(INVALID_PREFIX) :]
                    raise ValueError(f"{bad} value(s) of column {column} do not parse as {schema.field(column).type}")
            yield pa.RecordBatch.from_arrays([typed.column(n) for n in schema.names], schema=schema)
    except pa.ArrowInvalid:
        if problems:
            raise ValueError(problems[0]) from None
        raise
