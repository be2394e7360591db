"""How a row is named in errors and reject records: its primary key, and a value only for columns that are neither PII nor free text."""

from __future__ import annotations

import pyarrow as pa

from consorcio_glue.spec import Col, Spec


def key_text(spec: Spec, batch: pa.RecordBatch, row: int) -> str:
    return key_json_text({k: plain(batch.column(k)[row].as_py()) for k in spec.primary_key})


def key_json_text(key: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in key.items())


def plain(value):
    if isinstance(value, (bytes, bytearray)):
        return "0x" + value.hex().upper()
    if value is None or isinstance(value, (int, float, str, bool)):
        return value
    return str(value)


def value_hint(c: Col, batch: pa.RecordBatch, row: int) -> str:
    if c.confidential:
        return ""
    try:
        value = batch.column(c.source)[row].as_py()
    except UnicodeDecodeError:  # bytes that are not UTF-8: nothing printable to show
        return ""
    return f" (value {str(value)[:60]!r})" if value is not None else ""
