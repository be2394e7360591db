"""Metadata values people read: byte counts in binary units (with the exact count kept in the text)."""

from __future__ import annotations

import dagster as dg

_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB")


def human_bytes(n: int) -> str:
    """7229699 → '6.9 MiB (7,229,699 bytes)'; small counts stay exact ('512 bytes')."""
    size, unit = float(n), 0
    while abs(size) >= 1024 and unit < len(_UNITS) - 1:
        size, unit = size / 1024, unit + 1
    if unit == 0:
        return f"{int(n):,} bytes"
    return f"{size:.1f} {_UNITS[unit]} ({int(n):,} bytes)"


def byte_size(n: int) -> dg.MetadataValue:
    return dg.MetadataValue.text(human_bytes(n))


def readable_bytes(metadata: dict) -> dict:
    """`bytes_*` integer entries (as reported through Pipes) rewritten as human-readable sizes."""
    out = {}
    for key, value in metadata.items():
        raw = getattr(value, "value", value)
        is_count = isinstance(raw, int) and not isinstance(raw, bool)
        out[key] = byte_size(raw) if key.startswith("bytes_") and is_count else value
    return out
