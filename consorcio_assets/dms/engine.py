"""The local full-load engine: what an AWS DMS full-load task writes to an S3 target, written to the lake.
Only local mode runs it; the layout it writes and the report it returns are `layout.py`, shared with the AWS
resource, the raw-zone checks and (through `consorcio_core.dms_layout`) the Glue job.

It obeys the same TableMappings document and the same S3/task settings files DMS gets, and writes through
`pyarrow.fs`, so one code path serves a local directory and an S3 bucket:

- layout `<BucketFolder>/<schema>/<Table>/LOAD00000001.parquet` (or `.csv`), the counter in 8 upper-case
  hexadecimal digits, a new file once `MaxFileSize` is reached (Parquet files are cut at row-group
  boundaries, CSV files before the row that would overflow, counting bytes before GZIP); parallel-load range segments in their
  `segment-names` sub-folders (or `SEGMENTn_LOAD...` files when unnamed); no folder for an empty table;
- DMS's type mapping (the catalog's `Table.dms_schema()`): DATETIMEOFFSET and UNIQUEIDENTIFIER as SQL Server
  text (GUIDs upper-case), DATETIME2(7) truncated (never rounded) to microseconds, or milliseconds with
  `ParquetTimestampInMillisecond`, CHAR values with their padding;
- limited LOB mode: NVARCHAR(MAX)/NTEXT/XML values are cut to LobMaxSize KB at 2 bytes per character
  (SQL Server's UTF-16 DATALENGTH; supplementary characters are counted once), VARCHAR(MAX)/TEXT at 1 byte
  per character, silently as DMS does (a warning with counts, never values, goes to the log);
- a reload writes under `_dms/staging/<load id>/` and then swaps the table folder, so a crash leaves the
  previous files in place and a reader never sees two loads mixed (on a local lake two directory renames:
  old folder out, new folder in; on S3, where nothing renames, a short delete-and-copy once the whole table
  is written). Staging left by a killed load is removed by the table's next load.
- one load of a table at a time: on a local lake a second load of the same table waits for the first
  (`table_locks`).

It streams record batches from the source (a read-only DuckDB connection locally, SQLAlchemy `yield_per`
otherwise) so memory stays flat whatever the table size.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import sqlalchemy as sa

from consorcio_assets.catalog import Catalog, Column, Table
from consorcio_assets.catalog import catalog as default_catalog
from consorcio_assets.common.dialects import dialect_function
from consorcio_assets.common.lake_zones import Lake
from consorcio_assets.dms.layout import (
    ERRORED,
    WORK_ROOT,
    FullLoadReport,
    LoadedFile,
    TableLoad,
    expected_schema,
    load_file_name,
    lob_limit_chars,
    table_prefix,
)
from consorcio_assets.dms.mappings import Selected, segment_predicates, selected_tables
from consorcio_assets.dms.settings_files import DmsSettings, EndpointSettings
from consorcio_assets.dms.versions import DataVersion, changes, read_version, sqlalchemy_executor
from consorcio_assets.source.queries import connect_stand_in, table_clause

log_ = logging.getLogger(__name__)

WRITE_BUFFER = 1 << 20  # Parquet writes many small pieces (page headers); unbuffered, each is a system call


def _is_local(fs: pafs.FileSystem) -> bool:
    return fs.type_name == "local"


# -- reading the source ----------------------------------------------------------------------------------------


guid_text = dialect_function(
    "guid_text", sa.String(), default="upper(CAST({0} AS VARCHAR))", mssql="CONVERT(CHAR(36), {0})"
)
"""UNIQUEIDENTIFIER as SQL Server prints it: upper-case, hyphenated."""

offset_text = dialect_function(
    "offset_text", sa.String(), default="CAST({0} AS VARCHAR)", mssql="CONVERT(VARCHAR(34), {0}, 121)"
)
"""DATETIMEOFFSET as SQL Server's ODBC canonical text: 'YYYY-MM-DD hh:mm:ss.fffffff +hh:mm'."""


def read_select(
    table: Table,
    where: sa.ColumnElement | None = None,
    clause: sa.TableClause | None = None,
) -> sa.Select:
    """The SELECT DMS's unload amounts to, with text conversions SQL Server applies for DMS's STRING types.

    `where` must be built on `clause` (one table clause per table, or SQLAlchemy sees two FROMs).
    """
    t = table_clause(table) if clause is None else clause
    items = []
    for c in table.columns:
        expr = t.c[c.name]
        if c.family == "uuid":
            expr = guid_text(expr)
        elif c.family == "timestamptz":
            expr = offset_text(expr)
        items.append(expr.label(c.name))
    query = sa.select(*items).select_from(t)
    return query if where is None else query.where(where)


class DuckDBSource:
    """The embedded stand-in, opened read-only so parallel segments and other runs can share it."""

    #: the file cannot change while it is open here: DuckDB refuses a writing connection, in any process, to a file
    #: a process holds read-only, so a table's data version after its extraction is the one before it
    snapshot = True

    def __init__(self, path):
        from duckdb_engine import Dialect

        self._con = connect_stand_in(path)
        self._dialect = Dialect()

    dialect = "duckdb"

    def execute(self, sql: str) -> tuple:
        """One row of a query (the data versions) on a cursor of its own."""
        cursor = self._con.cursor()
        try:
            return cursor.execute(sql).fetchone()
        finally:
            cursor.close()

    def batches(self, query: sa.Select, table: Table, rows: int) -> Iterator[pa.RecordBatch]:
        sql = str(query.compile(dialect=self._dialect, compile_kwargs={"literal_binds": True}))
        cursor = self._con.cursor()
        try:
            yield from cursor.sql(sql).to_arrow_reader(rows)
        finally:
            cursor.close()

    def close(self) -> None:
        self._con.close()


class SqlAlchemySource:
    """Any SQLAlchemy source (SQL Server through pyodbc in production): rows streamed with `yield_per`."""

    snapshot = False  # the application may write while DMS reads: versions are read before and after

    def __init__(self, engine: sa.Engine):
        self._engine = engine
        self.dialect = engine.dialect.name
        self.execute = sqlalchemy_executor(engine)

    def batches(self, query: sa.Select, table: Table, rows: int) -> Iterator[pa.RecordBatch]:
        schema = _transfer_schema(table)
        with self._engine.connect() as conn:
            result = conn.execution_options(yield_per=rows).execute(query)
            for part in result.partitions():
                columns = list(zip(*part))
                yield pa.RecordBatch.from_arrays(
                    [pa.array(col, type=f.type) for col, f in zip(columns, schema)], schema=schema
                )

    def close(self) -> None:
        self._engine.dispose()


def _transfer_schema(table: Table) -> pa.Schema:
    """Arrow types for driver values: DMS's types, at the microseconds Python's datetime holds."""
    return pa.schema([pa.field(c.name, c.arrow_type()) for c in table.columns])


def open_source(url: str):
    if url.startswith("duckdb:///"):
        from pathlib import Path

        path = Path(url[len("duckdb:///") :])
        if not path.exists():
            raise FileNotFoundError(f"source stand-in {path} does not exist: run `consorcio seed`")
        return DuckDBSource(path)
    return SqlAlchemySource(sa.create_engine(url, pool_pre_ping=True))


# -- DMS's type mapping ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TypeMapper:
    """Turns source batches into the batches DMS writes: truncations, then a checked cast per column."""

    table: Table
    endpoint: EndpointSettings
    lob_max_bytes: int

    @cached_property
    def schema(self) -> pa.Schema:
        """All columns nullable: DMS's Parquet writer marks every column optional."""
        dms = self.table.dms_schema(ms_timestamps=self.endpoint.timestamp_ms)
        return pa.schema([f.with_nullable(True) for f in dms])

    def convert(self, batch: pa.RecordBatch, truncated: dict[str, int]) -> pa.RecordBatch:
        arrays = []
        for column, target in zip(self.table.columns, self.schema):
            try:
                arr = batch.column(column.name)
            except KeyError:
                raise SchemaDriftError(self.table, column.name, "is missing from the source") from None
            arrays.append(self._column(column, arr, target.type, truncated))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _column(self, column: Column, arr: pa.Array, target: pa.DataType, truncated: dict[str, int]) -> pa.Array:
        if column.family == "lob" and (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            arr = self._truncate(column, arr, truncated)
        if pa.types.is_timestamp(arr.type) and pa.types.is_timestamp(target) and arr.type.unit != target.unit:
            unit = {"us": "microsecond", "ms": "millisecond", "s": "second"}[target.unit]
            arr = pc.floor_temporal(arr, unit=unit)  # DMS truncates; a plain cast would round toward zero
        try:
            return arr.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # Arrow's message quotes the value: not logged
            raise SchemaDriftError(
                self.table,
                column.name,
                f"holds {arr.type} values that DMS type {column.dms_type} ({target}) cannot take",
            ) from None

    def _truncate(self, column: Column, arr: pa.Array, truncated: dict[str, int]) -> pa.Array:
        limit = lob_limit_chars(column, self.lob_max_bytes)
        too_long = pc.sum(pc.greater(pc.utf8_length(arr), limit)).as_py() or 0
        if not too_long:
            return arr
        truncated[column.name] = truncated.get(column.name, 0) + too_long
        return pc.utf8_slice_codeunits(arr, 0, limit)


class SchemaDriftError(ValueError):
    def __init__(self, table: Table, column: str, problem: str):
        super().__init__(f"{table.qualified_source}.{column} {problem} (schema drift since the catalog was built?)")
        self.table, self.column = table.name, column


def with_extra_columns(batch: pa.RecordBatch, endpoint: EndpointSettings, loaded_at: datetime) -> pa.RecordBatch:
    """DMS's optional leading columns (`endpoint.extra_columns`): the CSV `Op` flag, the transfer time."""
    if not endpoint.extra_columns:
        return batch
    values = {"Op": "I", endpoint.timestamp_column: loaded_at.strftime("%Y-%m-%d %H:%M:%S.%f")}
    extra = [pa.repeat(pa.scalar(values[name], pa.string()), batch.num_rows) for name in endpoint.extra_columns]
    return pa.RecordBatch.from_arrays([*extra, *batch.columns], names=[*endpoint.extra_columns, *batch.schema.names])


# -- CSV rendering (vectorised) --------------------------------------------------------------------------------

_HEX = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)


def hex_upper(arr: pa.Array) -> pa.Array:
    """Binary values as upper-case hex text, as DMS writes BYTES to CSV."""
    arr = pa.concat_arrays([arr.cast(pa.binary())]) if len(arr) else arr.cast(pa.binary())
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8) if arr.buffers()[2] else np.empty(0, np.uint8)
    chunk = data[offsets[0] : offsets[-1]]
    out = np.empty(len(chunk) * 2, dtype=np.uint8)
    out[0::2], out[1::2] = _HEX[chunk >> 4], _HEX[chunk & 15]
    text = pa.StringArray.from_buffers(
        len(arr), pa.py_buffer(((offsets - offsets[0]) * 2).astype(np.int32)), pa.py_buffer(out.tobytes())
    )
    return pc.if_else(arr.is_null(), pa.scalar(None, pa.string()), text)


def csv_text(arr: pa.Array) -> pa.Array:
    if pa.types.is_boolean(arr.type):
        return pc.if_else(arr, "1", "0")
    if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
        return hex_upper(arr)
    if pa.types.is_timestamp(arr.type) and arr.type.unit != "us":
        arr = arr.cast(pa.timestamp("us"))  # DMS writes CSV timestamps with microseconds
    return arr if pa.types.is_string(arr.type) else arr.cast(pa.string())


def _quote(text: pa.Array, endpoint: EndpointSettings) -> pa.Array:
    """RFC 4180: quote values holding a quote, the delimiter or a line break (doubling inner quotes).

    A value that reads like the null marker (e.g. the empty string when CsvNullValue is "") is quoted too,
    so NULL and the empty string stay apart.
    """
    needles = {'"', "\r", "\n", endpoint.csv_delimiter, endpoint.csv_row_delimiter} - {""}
    needs = pc.equal(text, endpoint.csv_null_value)
    for needle in needles:
        needs = pc.or_(needs, pc.match_substring(text, needle))
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
    return pc.if_else(pc.fill_null(needs, False), quoted, text)


def csv_lines(batch: pa.RecordBatch, endpoint: EndpointSettings) -> pa.Array:
    """One string per row, each ending with the row delimiter."""
    columns = [csv_text(c) for c in batch.columns]
    if endpoint.rfc4180:
        columns = [_quote(c, endpoint) for c in columns]
    row = pc.binary_join_element_wise(
        *columns, endpoint.csv_delimiter, null_handling="replace", null_replacement=endpoint.csv_null_value
    )
    return pc.binary_join_element_wise(row, endpoint.csv_row_delimiter, "")


def csv_header(names: Sequence[str], endpoint: EndpointSettings) -> bytes:
    return (endpoint.csv_delimiter.join(names) + endpoint.csv_row_delimiter).encode()


# -- writing LOAD files ----------------------------------------------------------------------------------------


def parquet_options(endpoint: EndpointSettings) -> dict:
    return dict(
        version="1.0" if endpoint.parquet_version == "parquet-1-0" else "2.6",
        compression="gzip" if endpoint.compression == "gzip" else "none",
        use_dictionary=endpoint.encoding_type != "plain",
        write_statistics=endpoint.enable_statistics,
        data_page_size=endpoint.data_page_size,
        dictionary_pagesize_limit=endpoint.dict_page_size_limit,
        store_schema=False,  # DMS's files carry no Arrow schema: readers go by the Parquet types
        store_decimal_as_integer=True,  # INT32/INT64 physical decimals: same logical type, faster to write
    )


class Counter:
    """The LOAD file counter; unnamed parallel-load segments of a table share one (SEGMENT2_LOAD00000009)."""

    def __init__(self):
        self._value, self._lock = 0, threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._value += 1
            return self._value


class LoadFolder:
    """One folder's series of LOAD files (a table, or one parallel-load segment), written in order."""

    def __init__(
        self,
        fs: pafs.FileSystem,
        folder: str,
        endpoint: EndpointSettings,
        schema: pa.Schema,
        prefix: str = "",
        counter: Counter | None = None,
    ):
        self.fs, self.folder, self.endpoint, self.schema, self.prefix = fs, folder, endpoint, schema, prefix
        self.counter = counter or Counter()
        self.files: list[tuple[str, int, int]] = []  # (path, bytes, rows)
        self._stream = self._writer = None
        self._rows = 0

    def _open(self) -> None:
        if not self.files and _is_local(self.fs):
            self.fs.create_dir(self.folder, recursive=True)
        number = self.counter.next()
        path = f"{self.folder}/{load_file_name(number, self.endpoint.extension, self.prefix)}"
        compression = "gzip" if self.endpoint.extension.endswith(".gz") else None
        self._stream = self.fs.open_output_stream(path, compression=compression, buffer_size=WRITE_BUFFER)
        self._path, self._rows = path, 0
        if self.endpoint.data_format == "parquet":
            self._writer = pq.ParquetWriter(self._stream, self.schema, **parquet_options(self.endpoint))
        elif self.endpoint.add_column_name:
            self._stream.write(csv_header(self.schema.names, self.endpoint))

    def _close_file(self) -> None:
        if self._writer is not None:
            self._writer.close()
        size = self._stream.tell()
        self._stream.close()
        if self.endpoint.extension.endswith(".gz"):  # tell() counted the bytes before compression
            size = self.fs.get_file_info(self._path).size
        self.files.append((self._path, size, self._rows))
        self._stream = self._writer = None

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        if self.endpoint.data_format == "parquet":
            self._write_parquet(batch)
        else:
            self._write_csv(csv_lines(batch, self.endpoint))

    def _write_parquet(self, batch: pa.RecordBatch) -> None:
        """One row group per RowGroupLength rows; the file is cut after the row group that fills it."""
        size = self.endpoint.row_group_length
        for start in range(0, batch.num_rows, size):
            if self._stream is None:
                self._open()
            chunk = batch.slice(start, size)
            self._writer.write_batch(chunk, row_group_size=size)
            self._rows += chunk.num_rows
            if self._stream.tell() >= self.endpoint.max_file_bytes:
                self._close_file()

    def _write_csv(self, lines: pa.Array) -> None:
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset : lines.offset + len(lines) + 1]
        data = lines.buffers()[2]
        start = 0
        while start < len(lines):
            if self._stream is None:
                self._open()
            room = self.endpoint.max_file_bytes - self._stream.tell()
            end = int(np.searchsorted(offsets, offsets[start] + room, side="right")) - 1
            end = max(end, start + 1) if self._rows == 0 else end  # an oversized row still gets a file
            if end > start:
                self._stream.write(data[offsets[start] : offsets[end]])
                self._rows += end - start
                start = end
            if start < len(lines) or self._stream.tell() >= self.endpoint.max_file_bytes:
                self._close_file()

    def close(self) -> None:
        if self._stream is not None:
            self._close_file()

    def abort(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
            if self._stream is not None:
                self._stream.close()
        except Exception:  # the caller is already failing; the staging folder is removed anyway
            pass
        self._stream = self._writer = None


# -- staging and the swap --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workspace:
    """Where a load writes before the swap; under `_dms/` at the lake root, never inside the raw zone."""

    fs: pafs.FileSystem
    root: str
    load_id: str

    def staging(self, table: Table) -> str:
        return f"{self.root}/{WORK_ROOT}/staging/{self.load_id}/{table.schema}/{table.name}"

    def trash(self, table: Table) -> str:
        return f"{self.root}/{WORK_ROOT}/trash/{self.load_id}/{table.schema}/{table.name}"

    def remove_stale(self, table: Table) -> None:
        """Staging left by a killed load of this table (one load per table runs at a time)."""
        for kind in ("staging", "trash"):
            base = f"{self.root}/{WORK_ROOT}/{kind}"
            try:
                loads = self.fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
            except FileNotFoundError:  # removed while listed (a lake being reset): nothing stale left
                continue
            for info in loads:
                stale = f"{info.path}/{table.schema}/{table.name}"
                if info.path.rsplit("/", 1)[-1] != self.load_id and _exists(self.fs, stale):
                    self.fs.delete_dir(stale)

    def discard(self, path: str) -> None:
        if _exists(self.fs, path):
            self.fs.delete_dir(path)

    def finish(self) -> None:
        for kind in ("staging", "trash"):
            self.discard(f"{self.root}/{WORK_ROOT}/{kind}/{self.load_id}")

    def remove_dead_loads(self) -> list[str]:
        """Whole `_dms/staging/<id>` and `_dms/trash/<id>` trees of loads whose owner died (a SIGKILL skips
        `finish`), and their lease files; a live load's trees are left alone. Local lakes only (see `lease`)."""
        if not _is_local(self.fs):
            return []
        removed = []
        for kind in ("staging", "trash"):
            base = f"{self.root}/{WORK_ROOT}/{kind}"
            for info in self.fs.get_file_info(pafs.FileSelector(base, allow_not_found=True)):
                load_id = info.path.rsplit("/", 1)[-1]
                if load_id != self.load_id and not _lease_held(self.root, load_id):
                    try:
                        self.fs.delete_dir(info.path)
                    except FileNotFoundError:  # its load finished and removed it meanwhile
                        continue
                    removed.append(f"{kind}/{load_id}")
        owners = f"{self.root}/{WORK_ROOT}/owners"
        for name in os.listdir(owners) if os.path.isdir(owners) else []:
            if name != self.load_id and not name.startswith("."):
                _lease_held(self.root, name, unlink_if_free=True)
        return removed


@contextmanager
def lease(ws: Workspace) -> Iterator[None]:
    """The load's lease: an exclusive `flock` on `_dms/owners/<load id>` for as long as it runs, released by the
    kernel when the process dies, so a later load can tell a dead load's leftovers from a live one's. Taken
    under a temporary name and renamed into place, so no other load ever sees the file unlocked."""
    if not _is_local(ws.fs):
        yield
        return
    folder = f"{ws.root}/{WORK_ROOT}/owners"
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:  # the lake cannot be written at all: the load itself fails each table by name
        yield
        return
    path, tmp = f"{folder}/{ws.load_id}", f"{folder}/.{ws.load_id}.{os.getpid()}"
    fd = os.open(tmp, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(tmp, path)
        yield
    finally:
        for name in (path, tmp):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
        os.close(fd)


def _lease_held(root: str, load_id: str, unlink_if_free: bool = False) -> bool:
    """Whether the load `load_id` is running (its lease is locked); a free lease is a dead load's."""
    path = f"{root}/{WORK_ROOT}/owners/{load_id}"
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return True
    if unlink_if_free:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    os.close(fd)
    return False


@contextmanager
def table_locks(ws: Workspace, tables: Sequence[Table], log: logging.Logger) -> Iterator[None]:
    """One load per table at a time: a second load of a table waits for the first (it would otherwise take the
    first's staging for a killed load's and delete it). Exclusive `flock`s on `_dms/locks/<schema>.<table>`,
    taken in name order (no deadlock between loads of overlapping sets) and released by the kernel if the
    process dies. Only on a local lake: on S3 the engine runs in tests, and DMS refuses a task already running."""
    if not _is_local(ws.fs):
        yield
        return
    folder = f"{ws.root}/{WORK_ROOT}/locks"
    try:
        ws.fs.create_dir(folder, recursive=True)
    except OSError:  # the lake cannot be written at all: the load itself fails each table by name
        yield
        return
    held: list[int] = []
    try:
        for table in sorted(tables, key=lambda t: (t.schema, t.name)):
            fd = os.open(f"{folder}/{table.schema}.{table.name}", os.O_CREAT | os.O_RDWR, 0o644)
            held.append(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info(f"{table.qualified_source}: another load of the table is running: waiting for it")
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        for fd in held:
            os.close(fd)


def _exists(fs: pafs.FileSystem, path: str) -> bool:
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def publish(ws: Workspace, table: Table, final: str) -> None:
    """Replace the table's folder by the staged one (which is absent for an empty table)."""
    fs, staged = ws.fs, ws.staging(table)
    if _is_local(fs):
        parent = final.rsplit("/", 1)[0]
        fs.create_dir(parent, recursive=True)
        if _exists(fs, final):
            fs.create_dir(ws.trash(table).rsplit("/", 1)[0], recursive=True)
            fs.move(final, ws.trash(table))
        if _exists(fs, staged):
            fs.move(staged, final)
        ws.discard(ws.trash(table))
        return
    if _exists(fs, final):
        fs.delete_dir(final)
    for info in fs.get_file_info(pafs.FileSelector(staged, recursive=True, allow_not_found=True)):
        if info.type == pafs.FileType.File:
            fs.move(info.path, final + info.path[len(staged) :])
    ws.discard(staged)


# -- the full-load ---------------------------------------------------------------------------------------------


@dataclass
class _Segment:
    index: int
    name: str | None
    where: sa.ColumnElement | None
    counter: Counter
    clause: sa.TableClause
    files: list[tuple[str, int, int]] = field(default_factory=list)
    rows: int = 0
    truncated: dict[str, int] = field(default_factory=dict)
    started: datetime | None = None  # when a worker picked it up (not when it was queued)
    ended: datetime | None = None


def _now() -> datetime:
    return datetime.now(UTC)


class LocalFullLoad:
    """One run of the engine over a TableMappings document."""

    def __init__(
        self,
        source,
        lake: Lake,
        settings: DmsSettings,
        catalog: Catalog | None = None,
        log: logging.Logger | None = None,
        load_id: str | None = None,
    ):
        self.source, self.lake, self.settings = source, lake, settings
        self.catalog = catalog or default_catalog()
        self.log = log or log_
        fs, root = lake.filesystem()
        self.ws = Workspace(fs, root, load_id or f"{_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}")

    def run(self, mappings: Mapping) -> FullLoadReport:
        chosen = selected_tables(mappings, self.catalog)
        results: dict[str, TableLoad] = {}
        self._before: dict[str, DataVersion | None] = {}
        with (
            lease(self.ws),
            table_locks(self.ws, [sel.table for sel in chosen], self.log),
            ThreadPoolExecutor(self.workers, thread_name_prefix="dms-load") as pool,
        ):
            for dead in self.ws.remove_dead_loads():
                self.log.info(f"removed _dms/{dead}, left by a load that was killed")
            pending = [(sel, self._submit(pool, sel)) for sel in chosen]
            for sel, (segments, futures) in pending:
                results[sel.table.name] = self._finish(sel.table, segments, futures)
            self.ws.finish()  # under the lease: once it is free, another load may take these trees for a dead one's
        return FullLoadReport("local", results, dict(mappings))

    @property
    def workers(self) -> int:
        """MaxFullLoadSubTasks tables/segments at a time, but no more than this machine has cores: a DMS
        instance brings its own CPUs, here extra threads would only contend (the files are the same)."""
        return max(1, min(self.settings.task.max_full_load_subtasks, os.cpu_count() or 1))

    def _version(self, table: Table) -> DataVersion | None:
        execute = getattr(self.source, "execute", None)
        return read_version(execute, table, self.source.dialect) if execute else None

    def _submit(self, pool: ThreadPoolExecutor, sel: Selected):
        self.ws.remove_stale(sel.table)
        self._before[sel.table.name] = self._version(sel.table)
        shared, clause = Counter(), table_clause(sel.table)
        cuts = segment_predicates(sel.table, sel.parallel_load, clause) if sel.parallel_load else [(None, None)]
        segments = [_Segment(i, n, w, Counter() if n else shared, clause) for i, (n, w) in enumerate(cuts, 1)]
        return segments, [pool.submit(self._load_segment, sel.table, s) for s in segments]

    def _load_segment(self, table: Table, segment: _Segment) -> None:
        segment.started = _now()
        endpoint = self.settings.endpoint
        mapper = TypeMapper(table, endpoint, self.settings.task.lob_max_bytes)
        folder, prefix = self.ws.staging(table), ""
        if segment.name:
            folder = f"{folder}/{segment.name}"
        elif segment.where is not None:
            prefix = f"SEGMENT{segment.index}_"
        out = LoadFolder(self.ws.fs, folder, endpoint, expected_schema(table, endpoint), prefix, segment.counter)
        try:
            query = read_select(table, segment.where, segment.clause)
            for batch in self.source.batches(query, table, endpoint.row_group_length):
                mapped = mapper.convert(batch, segment.truncated)
                out.write(with_extra_columns(mapped, endpoint, _now()))
                segment.rows += batch.num_rows
            out.close()
        except BaseException:
            out.abort()
            raise
        segment.files, segment.ended = out.files, _now()

    def _finish(self, table: Table, segments: list[_Segment], futures: list[Future]) -> TableLoad:
        errors = [f.exception() for f in futures if f.exception() is not None]
        result = TableLoad(
            table.schema,
            table.name,
            segments=len(segments),
            started_at=min((s.started for s in segments if s.started), default=_now()),
        )
        result.version_before = self._before.get(table.name)
        if not errors and result.version_before is not None:
            result.version_after = result.version_before if self.source.snapshot else self._version(table)
            result.source_changes = changes(
                table, result.version_before, result.version_after, self.source.execute, self.source.dialect
            )
            if result.source_changes:
                self.log.warning(f"{table.qualified_source} changed while it was extracted: {result.source_changes}")
        final = f"{self.ws.root}/{table_prefix(self.settings.endpoint, table)}"
        written = max((s.ended for s in segments if s.ended), default=_now())
        swap = _now()
        try:
            if errors:
                raise errors[0]
            publish(self.ws, table, final)
        except Exception as err:
            self.ws.discard(self.ws.staging(table))
            result.state, result.error = ERRORED, _describe(table, err, self.lake)
            self.log.error(result.error)
        else:
            result.full_load_rows = sum(s.rows for s in segments)
            result.files = tuple(self._published(segments, table, final))
            for s in segments:
                for col, n in s.truncated.items():
                    result.lob_truncated[col] = result.lob_truncated.get(col, 0) + n
            self._warn_truncations(table, result.lob_truncated)
        result.ended_at = written + (_now() - swap)  # not counting the wait for earlier tables' swaps
        return result

    def _published(self, segments: list[_Segment], table: Table, final: str) -> Iterator[LoadedFile]:
        staged = self.ws.staging(table)
        for s in segments:
            for path, size, rows in s.files:
                yield LoadedFile(final[len(self.ws.root) + 1 :] + path[len(staged) :], size, rows)

    def _warn_truncations(self, table: Table, truncated: Mapping[str, int]) -> None:
        kb = self.settings.task.lob_max_size_kb
        for col, n in truncated.items():
            self.log.warning(
                f"{table.qualified_source}.{col}: {n} value(s) longer than LobMaxSize ({kb} KB) "
                "were truncated, as DMS does in limited LOB mode"
            )


def _describe(table: Table, err: BaseException, lake: Lake) -> str:
    if isinstance(err, SchemaDriftError):
        return str(err)
    if isinstance(err, OSError):
        return f"{table.qualified_source}: cannot write to the lake {lake.uri}: {err}"
    return f"{table.qualified_source}: {type(err).__name__}: {err}"


def run_full_load(
    mappings: Mapping,
    *,
    source_url: str,
    lake: Lake,
    settings: DmsSettings,
    catalog: Catalog | None = None,
    log: logging.Logger | None = None,
) -> FullLoadReport:
    """Full-load every table and view `mappings` selects; errors are per table, in the report."""
    source = open_source(source_url)
    try:
        return LocalFullLoad(source, lake, settings, catalog, log).run(mappings)
    finally:
        source.close()
