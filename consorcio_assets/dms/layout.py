"""What a DMS full-load leaves in the lake, seen from the catalog: where a table's files are, their expected
schema, reading them back (the raw-zone checks), and the load report both the AWS resource and the local engine
return. The layout rules themselves are `consorcio_core.dms_layout` (shared with the Glue job); CSV files are
read by the one DMS CSV reader, `consorcio_core.dms_csv`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from consorcio_assets.catalog import Column, Table
from consorcio_assets.dms.settings_files import EndpointSettings
from consorcio_assets.dms.versions import DataVersion
from consorcio_core.dms_csv import read_typed
from consorcio_core.dms_layout import WORK_ROOT, file_schema, layout_problems, load_file_name, table_folder  # noqa: F401 - re-exported

COMPLETED, ERRORED = "Table completed", "Table error"


# -- results (the AWS path and the local engine return the same types) ----------------------------------------


@dataclass(frozen=True)
class LoadedFile:
    path: str  # relative to the lake root, e.g. raw/dbo/Grupo/LOAD00000001.parquet
    size: int
    rows: int | None = None


@dataclass
class TableLoad:
    schema: str
    table: str
    state: str = COMPLETED
    full_load_rows: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None
    files: tuple[LoadedFile, ...] = ()
    error: str | None = None
    lob_truncated: dict[str, int] = field(default_factory=dict)
    segments: int = 1
    statistics: dict = field(default_factory=dict)  # DMS's TableStatistics entry, as DMS returned it
    #: the source table's data version right before and right after its extraction (versions.py)
    version_before: DataVersion | None = None
    version_after: DataVersion | None = None
    source_changes: dict | None = None  # None: unchanged during the extraction (a consistent snapshot)

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def duration_seconds(self) -> float:
        if not (self.started_at and self.ended_at):
            return 0.0
        return max((self.ended_at - self.started_at).total_seconds(), 0.0)

    @property
    def rows_per_second(self) -> float:
        return self.full_load_rows / self.duration_seconds if self.duration_seconds else 0.0


@dataclass
class FullLoadReport:
    mode: str
    tables: dict[str, TableLoad]
    table_mappings: dict
    task_arn: str | None = None
    preflight: Any = None  # the PreflightReport the resource ran before the load

    @property
    def errored(self) -> list[TableLoad]:
        return [t for t in self.tables.values() if t.state != COMPLETED]


class DmsLoadError(RuntimeError):
    """A full-load that did not complete for every table; `report` holds what did."""

    def __init__(self, message: str, report: FullLoadReport | None = None):
        super().__init__(message)
        self.report = report


# -- where and what ---------------------------------------------------------------------------------------------


def table_prefix(settings: EndpointSettings, table: Table) -> str:
    """Where DMS puts a table's files, relative to the bucket (the lake root)."""
    return table_folder(settings, table.schema, table.name)


def list_files(fs: pafs.FileSystem, root: str, prefix: str) -> list[LoadedFile]:
    """Every file under `prefix` (relative to the lake root), sorted by path."""
    infos = fs.get_file_info(pafs.FileSelector(f"{root}/{prefix}", recursive=True, allow_not_found=True))
    files = [LoadedFile(i.path[len(root) + 1 :], i.size or 0) for i in infos if i.type == pafs.FileType.File]
    return sorted(files, key=lambda f: f.path)


def is_national(column: Column) -> bool:
    """UTF-16 LOB types: SQL Server stores 2 bytes per character (what LobMaxSize counts)."""
    return column.sql_type in ("nvarchar(max)", "ntext", "xml")


def lob_limit_chars(column: Column, lob_max_bytes: int) -> int:
    """How many characters of a LOB value DMS keeps in limited LOB mode."""
    return lob_max_bytes // (2 if is_national(column) else 1)


def expected_schema(table: Table, endpoint: EndpointSettings) -> pa.Schema:
    """The schema of the files DMS writes for `table` under these settings (DMS's type mapping)."""
    return file_schema(table.dms_schema(ms_timestamps=endpoint.timestamp_ms), endpoint)


# -- reading the raw zone back (the raw-zone checks and the tests) ---------------------------------------------


def read_csv_batches(
    fs: pafs.FileSystem, path: str, table: Table, endpoint: EndpointSettings
) -> Iterator[pa.RecordBatch]:
    """Stream a CSV LOAD file typed as DMS's mapping says; a value that does not parse raises."""
    return read_typed(fs, path, endpoint, expected_schema(table, endpoint))


@dataclass(frozen=True)
class FileFacts:
    path: str
    rows: int
    schema: pa.Schema | None  # None when the file could not be read with the expected types
    error: str | None = None


def file_facts(fs: pafs.FileSystem, root: str, path: str, table: Table, endpoint: EndpointSettings) -> FileFacts:
    """Rows and schema of one LOAD file (Parquet: from the footer; CSV: parsed with DMS's types)."""
    full = f"{root}/{path}"
    try:
        if path.endswith(".parquet"):
            with fs.open_input_file(full) as f:
                meta = pq.ParquetFile(f).metadata
                return FileFacts(path, meta.num_rows, meta.schema.to_arrow_schema())
        rows = sum(b.num_rows for b in read_csv_batches(fs, full, table, endpoint))
        return FileFacts(path, rows, expected_schema(table, endpoint))
    except (pa.ArrowInvalid, OSError, ValueError) as err:
        return FileFacts(path, 0, None, f"{path}: {str(err).splitlines()[0]}")
