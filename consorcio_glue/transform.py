"""The transform: DMS columns to target columns (GUIDs, DATETIMEOFFSET instants and offsets, trimmed and checked
text, range-checked numbers), collecting violations of the target type instead of failing at the first."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from consorcio_core.arrow_casts import cast_rows
from consorcio_glue.casts import uuid_from_text
from consorcio_glue.errors import JobError
from consorcio_glue.keys import key_text, plain, value_hint
from consorcio_glue.raw import RawBatch
from consorcio_glue.spec import Col, Spec

US_PER_MINUTE = 60_000_000
MIN_US = -62135596800000000  # 0001-01-01T00:00:00Z in µs since the epoch
MAX_US = 253402300799999999  # 9999-12-31T23:59:59.999999Z


@dataclass
class Violation:
    column: str
    mask: pa.Array  # boolean, no nulls
    reason: str


_GUID = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
_DTO = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,7})? [+-]\d{2}:\d{2}$"


def _flag(mask) -> pa.Array:
    return pc.fill_null(mask, False)


def _transform_uuid(c: Col, arr: pa.Array, out: list[Violation]):
    ok = pc.match_substring_regex(arr, _GUID)
    out.append(Violation(c.source, _flag(pc.invert(ok)), "not a GUID"))
    return [uuid_from_text(pc.utf8_lower(pc.if_else(ok, arr, None)))]


def _transform_dto(c: Col, arr: pa.Array, out: list[Violation]):
    """SQL Server's DATETIMEOFFSET text to the exact instant (UTC, µs) and the original offset in minutes."""
    ok = pc.match_substring_regex(arr, _DTO)
    text = pc.if_else(ok, arr, None)
    local, bad_local = cast_rows(
        pc.utf8_slice_codeunits(pc.utf8_slice_codeunits(text, 0, -7), 0, 26), pa.timestamp("us")
    )
    off = pc.utf8_slice_codeunits(text, -6)
    hours = pc.cast(pc.utf8_slice_codeunits(off, 1, 3), pa.int32())
    minutes = pc.cast(pc.utf8_slice_codeunits(off, 4, 6), pa.int32())
    sign = pc.if_else(pc.starts_with(off, "-"), -1, 1)
    offset = pc.multiply(sign, pc.add(pc.multiply(hours, 60), minutes))
    bad_offset = pc.or_(pc.greater(pc.abs(offset), 840), pc.greater_equal(minutes, 60))
    instant = pc.subtract(pc.cast(local, pa.int64()), pc.multiply(pc.cast(offset, pa.int64()), US_PER_MINUTE))
    bad_range = pc.or_(pc.less(instant, MIN_US), pc.greater(instant, MAX_US))
    bad = pc.or_(_flag(pc.invert(ok)), pc.or_(_flag(bad_offset), _flag(bad_range)))
    if bad_local is not None:
        bad = pc.or_(bad, bad_local)
    out.append(Violation(c.source, bad, "not a valid DATETIMEOFFSET in 0001-01-01..9999-12-31 UTC, offset ±14:00"))
    instant = pc.if_else(bad, None, instant)
    return [pc.cast(instant, pa.timestamp("us", tz="UTC")), pc.cast(pc.if_else(bad, None, offset), pa.int16())]


def invalid_utf8(arr: pa.Array) -> pa.Array | None:
    """Rows whose text is not valid UTF-8 (Parquet readers do not check; PostgreSQL would refuse the COPY).
    The whole array is validated in C; rows are looked at one by one only when it fails."""
    try:
        arr.validate(full=True)
        return None
    except pa.ArrowInvalid:
        raw = arr.view(pa.large_binary() if pa.types.is_large_string(arr.type) else pa.binary())
        return pa.array([v is not None and not _is_utf8(v) for v in raw.to_pylist()], pa.bool_())


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _transform_text(c: Col, arr: pa.Array, out: list[Violation]):
    bad_utf8 = invalid_utf8(arr)
    if bad_utf8 is not None:
        out.append(Violation(c.source, bad_utf8, "not valid UTF-8"))
        arr = pc.if_else(bad_utf8, pa.scalar(None, arr.type), arr)  # the text kernels below expect UTF-8
    if c.family == "char":
        arr = pc.utf8_rtrim(arr, characters=" ")
    if c.length is not None:
        out.append(
            Violation(c.source, _flag(pc.greater(pc.utf8_length(arr), c.length)), f"longer than {c.postgres_type}")
        )
    out.append(Violation(c.source, _flag(pc.match_substring(arr, "\x00")), "contains a NUL character"))
    return [arr]


def transform_column(c: Col, arr: pa.Array, out: list[Violation]) -> list[pa.Array]:
    """One DMS column to its target column(s); violations of the target type are appended to `out`."""
    if isinstance(arr, pa.ChunkedArray):
        arr = pa.concat_arrays(arr.chunks) if arr.num_chunks != 1 else arr.chunk(0)
    if c.family == "uuid":
        return _transform_uuid(c, arr, out)
    if c.family == "timestamptz":
        return _transform_dto(c, arr, out)
    if c.family in ("char", "text", "lob"):
        return _transform_text(c, pc.cast(arr, pa.string()), out)
    want = c.target_type()
    if arr.type == want:
        return [arr]
    value, bad = cast_rows(arr, want)
    if bad is not None:
        out.append(Violation(c.source, bad, f"out of range for {c.postgres_type}"))
    return [value]


def transform(raw: RawBatch, spec: Spec) -> tuple[pa.RecordBatch, list[Violation]]:
    batch = raw.batch
    arrays, violations = [], []
    for c in spec.columns:
        arr = batch.column(c.source)
        flagged = f"__invalid__{c.source}"
        if flagged in batch.schema.names:
            violations.append(Violation(c.source, batch.column(flagged), f"unparsable as {c.postgres_type}"))
        if not c.nullable and arr.null_count:
            violations.append(Violation(c.source, arr.is_null(), "NULL in a NOT NULL column"))
        arrays.extend(transform_column(c, arr, violations))
    return pa.RecordBatch.from_arrays(arrays, schema=spec.target_schema()), [v for v in violations if _any(v.mask)]


def _any(mask: pa.Array) -> bool:
    return bool(pc.any(mask).as_py())


def raise_violation(spec: Spec, raw: RawBatch, violations: list[Violation]) -> None:
    v = violations[0]
    row = pc.index(v.mask, True).as_py()
    c = next(col for col in spec.columns if col.source == v.column)
    count = sum(pc.sum(x.mask).as_py() or 0 for x in violations)
    raise JobError(
        f"{spec.source_name}.{v.column}: {v.reason}{value_hint(c, raw.batch, row)} in {raw.file} "
        f"row {raw.first_row + row + 1} (key {key_text(spec, raw.batch, row)}); "
        f"{count} invalid value(s) in this batch; rerun with --on-invalid reject to route them to consorcio_rejects"
    )


def reject_rows(spec: Spec, raw: RawBatch, violations: list[Violation], run_id: str) -> tuple[pa.Array, list[dict]]:
    """Rows to keep, and one reject record per (row, column) violation — keys only, never PII values."""
    bad = violations[0].mask
    for v in violations[1:]:
        bad = pc.or_(bad, v.mask)
    records = []
    for v in violations:
        c = next(col for col in spec.columns if col.source == v.column)
        for row in pc.indices_nonzero(v.mask).to_pylist():
            records.append(
                {
                    "source_file": raw.file,
                    "row_number": raw.first_row + row + 1,
                    "primary_key": {k: plain(raw.batch.column(k)[row].as_py()) for k in spec.primary_key},
                    "column_name": c.target,
                    "reason": v.reason + value_hint(c, raw.batch, row),
                }
            )
    return pc.invert(bad), records
