"""Scan the raw zone for LOAD files and decide which tables got a new load since the cursor.

The cursor keeps, per table, a fingerprint (newest modification time and the keys seen at it), so a
restart neither reprocesses old files nor misses files that arrived while the sensor was off.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pyarrow.fs as pafs

from consorcio_assets.common.lake_zones import Lake
from consorcio_core.dms_layout import LOAD_PATH


@dataclass(frozen=True)
class LoadFile:
    table: str
    key: str
    mtime_ns: int


@dataclass
class ScanResult:
    files: list[LoadFile] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)


def scan(lake: Lake, bucket_folder: str) -> ScanResult:
    """Every LOAD file under the raw prefix; keys that do not look like DMS output are set aside."""
    fs, _ = lake.filesystem()
    root = lake.path(bucket_folder)
    result = ScanResult()
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    for info in infos:
        if info.type != pafs.FileType.File:
            continue
        relative = info.path[len(root) + 1 :]
        match = LOAD_PATH.match(relative)
        if match is None:
            result.malformed.append(relative)
            continue
        result.files.append(LoadFile(match["table"], relative, info.mtime_ns or 0))
    return result


def new_loads(files: list[LoadFile], cursor: str | None) -> tuple[dict[str, list[LoadFile]], str]:
    """Tables with files newer than the cursor, and the advanced cursor."""
    seen = json.loads(cursor) if cursor else {}
    by_table: dict[str, list[LoadFile]] = {}
    for f in files:
        by_table.setdefault(f.table, []).append(f)
    changed: dict[str, list[LoadFile]] = {}
    for table, table_files in by_table.items():
        newest = max(f.mtime_ns for f in table_files)
        keys_at_newest = sorted(f.key for f in table_files if f.mtime_ns == newest)
        previous = seen.get(table)
        fresh = [
            f
            for f in table_files
            if previous is None
            or f.mtime_ns > previous["mtime_ns"]
            or (f.mtime_ns == previous["mtime_ns"] and f.key not in previous["keys"])
        ]
        if fresh:
            changed[table] = fresh
            seen[table] = {"mtime_ns": newest, "keys": keys_at_newest}
    return changed, json.dumps(seen, sort_keys=True)
