"""Arrow casts that flag what fails instead of failing the batch, and hex text to bytes in one C call: what the
DMS CSV reader (`dms_csv`) and the Glue job's transform type text with."""

from __future__ import annotations

import binascii

import pyarrow as pa
import pyarrow.compute as pc


def cast_rows(arr: pa.Array, typ: pa.DataType) -> tuple[pa.Array, pa.Array | None]:
    """Cast; values that cannot be cast become null and are flagged. Bisects only when a value fails."""
    try:
        return pc.cast(arr, typ), None
    except pa.ArrowInvalid:
        if len(arr) == 1:
            return pa.nulls(1, typ), pa.array([True])
        mid = len(arr) // 2
        left, lbad = cast_rows(arr.slice(0, mid), typ)
        right, rbad = cast_rows(arr.slice(mid), typ)
        bad = pa.concat_arrays(
            [lbad if lbad is not None else _falses(mid), rbad if rbad is not None else _falses(len(arr) - mid)]
        )
        return pa.concat_arrays([left, right]), bad


def _falses(n: int) -> pa.Array:
    return pa.nulls(n, pa.bool_()).fill_null(False)


def _offsets(arr: pa.Array) -> tuple[pa.Array, int, int]:
    """The int32 offsets of a string/binary array (relative to its data buffer), first and last."""
    offs = pa.Array.from_buffers(pa.int32(), len(arr) + 1, [None, arr.buffers()[1]], offset=arr.offset)
    return offs, offs[0].as_py(), offs[-1].as_py()


def checked(arr: pa.Array) -> pa.Array:
    """Arrays built from raw buffers are fully validated: a wrong offset must raise, not crash Arrow later."""
    arr.validate(full=True)
    return arr


def unhex_binary(hex_strings: pa.Array) -> pa.Array:
    """Hex text (even length, validated) to binary, in one C call over the whole buffer."""
    hex_strings = pc.cast(hex_strings, pa.string())
    if len(hex_strings) == 0:
        return pa.array([], pa.binary())
    offs, start, end = _offsets(hex_strings)
    data = binascii.unhexlify(hex_strings.buffers()[2].to_pybytes()[start:end]) if end > start else b""
    new_offs = pc.cast(pc.divide(pc.subtract(offs, start), 2), pa.int32())  # int scalars promote to int64
    validity = pa.concat_arrays([hex_strings.is_valid()]).buffers()[1]
    return checked(
        pa.Array.from_buffers(pa.binary(), len(hex_strings), [validity, new_offs.buffers()[1], pa.py_buffer(data)])
    )
