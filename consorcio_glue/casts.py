"""GUID text to Arrow's uuid type in one C call (the flagging casts and hex decoding are `consorcio_core.arrow_casts`)."""

from __future__ import annotations

import binascii

import pyarrow as pa
import pyarrow.compute as pc

from consorcio_core.arrow_casts import checked


def uuid_from_text(text: pa.Array) -> pa.Array:
    """Validated GUID text to Arrow's uuid type (16 bytes, RFC 4122 order: the text's order)."""
    digits = pc.fill_null(pc.replace_substring(text, "-", ""), "0" * 32)
    raw = binascii.unhexlify(
        pc.cast(digits, pa.string()).buffers()[2].to_pybytes()[: 32 * len(text)] if len(text) else b""
    )
    validity = pa.concat_arrays([text.is_valid()]).buffers()[1]
    storage = checked(pa.Array.from_buffers(pa.binary(16), len(text), [validity, pa.py_buffer(raw)]))
    return pa.ExtensionArray.from_storage(pa.uuid(), storage)
