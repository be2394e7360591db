"""Where and under which names AWS DMS writes a full-load to S3, and the schema of its files: the one layout the
local engine writes, the AWS resource lists, the raw-zone checks verify and the Glue job reads.

- `<BucketFolder>/<schema>/<Table>/LOAD00000001.parquet` (or `.csv`, `.csv.gz`), the counter in 8 upper-case
  hexadecimal digits; parallel-load segments in `segment-names` sub-folders, or `SEGMENTn_LOAD...` files;
- CSV files may start with DMS's extra columns: `Op` (IncludeOpForFullLoad), then `TimestampColumnName`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pyarrow as pa

from consorcio_core.dms_endpoint import EndpointSettings

#: a numbered full-load file name without its extension: LOAD00000001, SEGMENT2_LOAD0000000A
_NUMBERED = r"(?P<prefix>SEGMENT\d+_)?LOAD(?P<n>[0-9A-F]{8})"
_FILE = rf"{_NUMBERED}\.(?P<format>parquet|csv)(?:\.gz)?"
#: a DMS full-load file name: LOAD00000001.parquet, SEGMENT2_LOAD0000000A.csv, LOAD00000001.csv.gz
LOAD_FILE = re.compile(rf"^{_FILE}$")
#: a full-load file's path below the bucket folder: <schema>/<Table>/[<segment name>/]<LOAD file>
LOAD_PATH = re.compile(rf"^(?P<schema>[^/]+)/(?P<table>[^/]+)/(?:(?P<segment>[^/]+)/)?{_FILE}$")
#: the engine's bookkeeping prefix at the lake root (staging, trash, leases), outside the raw zone
WORK_ROOT = "_dms"


def load_file_name(number: int, extension: str, prefix: str = "") -> str:
    return f"{prefix}LOAD{number:08X}{extension}"


def table_folder(endpoint: EndpointSettings, schema: str, name: str) -> str:
    """Where DMS puts a table's files, relative to the bucket (the lake root)."""
    return "/".join(p for p in (endpoint.bucket_folder, schema, name) if p)


def layout_problems(paths: Sequence[str], endpoint: EndpointSettings) -> list[str]:
    """Paths (relative to the table folder) that are not a DMS full-load series: wrong name or extension,
    or a numbering that does not run 1, 2, 3... in each folder (unnamed segments share one counter)."""
    pattern = re.compile(rf"^(?:(?P<folder>[^/]+)/)?{_NUMBERED}{re.escape(endpoint.extension)}\Z")
    problems: list[str] = []
    series: dict[str, list[int]] = {}
    for path in paths:
        match = pattern.match(path)
        if match is None:
            problems.append(f"{path}: not a DMS full-load file name (LOADnnnnnnnn{endpoint.extension})")
            continue
        series.setdefault(match["folder"] or "", []).append(int(match["n"], 16))
    for folder, numbers in series.items():
        if sorted(numbers) != list(range(1, len(numbers) + 1)):
            where = folder or "the table folder"
            problems.append(f"{where}: LOAD numbers {sorted(numbers)} do not run from 1 without gaps")
    return problems


def file_schema(table_schema: pa.Schema, endpoint: EndpointSettings) -> pa.Schema:
    """The schema of the files DMS writes for a table whose DMS types are `table_schema`: every column
    nullable (DMS's Parquet writer marks them all optional), DMS's extra text columns first."""
    fields = [pa.field(name, pa.string()) for name in endpoint.extra_columns]
    return pa.schema(fields + [f.with_nullable(True) for f in table_schema])
