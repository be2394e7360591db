"""PostgreSQL's binary COPY format, built from Arrow columns with numpy: no per-value Python, no text to parse on
the server. A row is its field count (int16) then each field as a byte length (int32, -1 for NULL) and the
value in the type's binary send format, big-endian. When every column is fixed-width and has no NULL in the
batch (the schedule table), rows are one fixed-width matrix filled column by column; otherwise each column
becomes Arrow binary fields and Arrow joins them row by row."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from consorcio_glue.errors import JobError

COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no header extension
COPY_TRAILER = b"\xff\xff"
PG_EPOCH_DAYS = 10_957  # 1970-01-01 to 2000-01-01, PostgreSQL's epoch
PG_EPOCH_US = PG_EPOCH_DAYS * 86_400_000_000
_NULL_FIELD = b"\xff\xff\xff\xff"
_NUMERIC_NEG = 0x4000
_INT64_MIN = np.iinfo(np.int64).min


def _numeric_groups(p: int, s: int) -> tuple[int, int]:
    """Base-10000 digit groups before and after the point that hold any DECIMAL(p, s)."""
    return max(1, -(-(p - s) // 4)), -(-s // 4)


def _numeric(arr: pa.Array) -> np.ndarray:
    """DECIMAL(p, s) as `numeric` (ndigits, weight, sign, dscale, digits: all int16) with a fixed number of
    base-10000 digits per column, so every value has the same width; PostgreSQL strips the zero groups."""
    p, s = arr.type.precision, arr.type.scale
    whole_groups, frac_groups = _numeric_groups(p, s)
    n = len(arr)
    words = np.frombuffer(arr.buffers()[1], dtype=np.int64, count=2 * (n + arr.offset))[2 * arr.offset :]
    low, high = words[0::2], words[1::2]
    if arr.null_count:
        valid = np.asarray(arr.is_valid())
        low, high = np.where(valid, low, 0), np.where(valid, high, 0)
    if (high == (low >> 63)).all() and not (low == _INT64_MIN).any():  # |int64 min| does not fit in int64
        negative, magnitude = low < 0, np.abs(low)
    else:  # beyond 64 bits: the 128-bit integers as exact Python integers, for this batch
        unscaled = high.astype(object) * 2**64 + low.view(np.uint64).astype(object)
        negative, magnitude = high < 0, np.abs(unscaled)
    out = np.empty((n, 4 + whole_groups + frac_groups), dtype=np.int16)
    out[:, 0], out[:, 1], out[:, 3] = whole_groups + frac_groups, whole_groups - 1, s
    out[:, 2] = np.where(negative, _NUMERIC_NEG, 0)
    whole, frac = _divmod(magnitude, 10**s)
    frac = frac * 10 ** (4 * frac_groups - s)
    for i in range(frac_groups - 1, -1, -1):
        frac, out[:, 4 + whole_groups + i] = _divmod(frac, 10_000)
    for i in range(whole_groups - 1, -1, -1):
        whole, out[:, 4 + i] = _divmod(whole, 10_000)
    return out


def _divmod(values: np.ndarray, divisor: int) -> tuple[np.ndarray, np.ndarray]:
    if values.dtype == object:  # Python integers: numpy has no divmod loop for them
        return values // divisor, values % divisor
    return np.divmod(values, divisor)


def _fixed_width(arr: pa.Array) -> tuple[np.dtype, np.ndarray] | None:
    """A fixed-width column as (big-endian field type, native values to assign to it); None for text and bytea.
    NULL slots hold any value: they are never sent."""
    if isinstance(arr, pa.ExtensionArray):  # uuid: its 16 bytes
        arr = arr.storage
    t = arr.type
    if pa.types.is_fixed_size_binary(t):
        width = t.byte_width
        raw = np.frombuffer(arr.buffers()[1], dtype=np.uint8, count=(len(arr) + arr.offset) * width)
        return np.dtype((np.uint8, (width,))), raw[arr.offset * width :].reshape(len(arr), width)
    if pa.types.is_boolean(t):
        return np.dtype(np.uint8), np.asarray(arr.cast(pa.uint8()).fill_null(0))
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        values = arr.fill_null(0).to_numpy()
        return values.dtype.newbyteorder(">"), values
    if pa.types.is_date32(t):
        return np.dtype(">i4"), arr.cast(pa.int32()).fill_null(0).to_numpy() - PG_EPOCH_DAYS
    if pa.types.is_timestamp(t):
        micros = arr.cast(pa.timestamp("us", t.tz)).cast(pa.int64()).fill_null(0).to_numpy()
        return np.dtype(">i8"), micros - PG_EPOCH_US
    if pa.types.is_time(t):  # µs since midnight
        return np.dtype(">i8"), arr.cast(pa.time64("us")).cast(pa.int64()).fill_null(0).to_numpy()
    if pa.types.is_decimal(t):
        values = _numeric(arr)
        return np.dtype((">i2", (values.shape[1],))), values
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t):
        return None
    raise JobError(f"no binary COPY encoding for Arrow type {t}")


def _binary(sizes: np.ndarray, data: np.ndarray) -> pa.Array:
    """An Arrow binary array of consecutive values of `sizes` bytes in `data`."""
    offsets = np.zeros(len(sizes) + 1, dtype=np.int32)
    np.cumsum(sizes, out=offsets[1:])
    return pa.Array.from_buffers(pa.binary(), len(sizes), [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _fields(arr: pa.Array) -> pa.Array:
    """One column as binary COPY fields (length prefix and value), one Arrow binary value per row."""
    fixed = _fixed_width(arr)
    n = len(arr)
    if fixed is None:  # text and bytea: the bytes themselves
        data = arr if pa.types.is_binary(arr.type) else arr.cast(pa.binary())
        lengths = pc.binary_length(data).fill_null(0).to_numpy(zero_copy_only=False).astype(">i4")
        joined = pc.binary_join_element_wise(_binary(np.full(n, 4), lengths.view(np.uint8)), data, b"")
        return joined.fill_null(pa.scalar(_NULL_FIELD, pa.binary())) if arr.null_count else joined
    kind, values = fixed
    fields = np.empty(n, dtype=[("size", ">i4"), ("value", kind)])
    fields["size"], fields["value"] = kind.itemsize, values
    if not arr.null_count:
        return _binary(np.full(n, fields.itemsize), fields.view(np.uint8))
    valid = np.asarray(arr.is_valid())
    fields["size"][~valid] = -1
    keep = np.ones((n, fields.itemsize), dtype=bool)
    keep[~valid, 4:] = False  # a NULL is its length -1 alone
    return _binary(np.where(valid, fields.itemsize, 4), fields.view(np.uint8).reshape(n, -1)[keep])


def copy_rows(batch: pa.RecordBatch) -> memoryview:
    """The batch's rows in PostgreSQL's binary COPY format (without the stream's header and trailer)."""
    if not any(c.null_count for c in batch.columns):
        fixed = [f for c in batch.columns if (f := _fixed_width(c)) is not None]
        if len(fixed) == batch.num_columns:  # one structured array: every row the same width
            layout: list[tuple[str, Any]] = [("count", ">i2")]
            for i, (kind, _) in enumerate(fixed):
                layout += [(f"size{i}", ">i4"), (f"value{i}", kind)]
            rows = np.empty(batch.num_rows, dtype=layout)
            rows["count"] = batch.num_columns
            for i, (kind, values) in enumerate(fixed):
                rows[f"size{i}"], rows[f"value{i}"] = kind.itemsize, values
            return rows.view(np.uint8).data
    count = batch.num_columns.to_bytes(2, "big")
    joined = pc.binary_join_element_wise(count, *(_fields(c) for c in batch.columns), b"")
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32, count=len(joined) + 1 + joined.offset)
    return memoryview(joined.buffers()[2])[offsets[joined.offset] : offsets[-1]]
