"""AWS Glue job: one table from the raw zone (what DMS wrote) to the transformed zone and Aurora PostgreSQL.

Deployable as an AWS Glue 5.0 Python job (Python 3.11, no Spark). It imports only the standard library,
pyarrow, numpy, psycopg, boto3 and dagster_pipes: everything it knows about the table comes in
the table spec that Dagster builds from the catalog (`consorcio_assets.glue.spec`). It talks to Dagster through
Pipes (S3 context and messages on AWS, temporary files locally, chosen from the Pipes parameters) and exits
non-zero on failure.

Actions (`--action`):
  load      read raw/<schema>/<Table>/LOAD*.parquet|csv, transform by the spec, write transformed/<table>/
            part-NNNNN.parquet (temporary prefix, then swapped in) and load Aurora: binary COPY into a
            staging table, constraints and indexes after the data, then one transaction swaps it in
            (`--swap deferred`: the finished staging table is left for the batch's `publish` run).
  validate  VALIDATE the foreign keys left NOT VALID by the swaps of a batch of tables.
  publish   swap every table a batch staged (`load --swap deferred`) in ONE transaction, foreign keys validated
            before it commits; any failure rolls all of them back. The staged tables are dropped either way
            (`--discard true`: only dropped, after a failed load elsewhere in the batch).

Arguments (Glue job arguments, `--name value`; Glue's own --JOB_ID etc. are ignored):
  --table-spec        the spec: inline JSON, or s3://, file:// or a path to it
  --stages            transformed,aurora (default both; `aurora` alone loads from the transformed zone)
  --lake-uri          root of the lake: s3://bucket/prefix or file:///dir
  --raw-folder        DMS BucketFolder (default raw)
  --raw-format        parquet|csv (DMS DataFormat)
  --csv-delimiter --csv-null-value --csv-header   DMS CsvDelimiter, CsvNullValue, AddColumnName
  --extra-columns     columns DMS adds before the table's (IncludeOpForFullLoad's Op, TimestampColumnName)
  --on-invalid        fail (default) or reject: route rows that violate the target type to consorcio_rejects
  --copy-streams      parallel binary COPY connections (default 2)
  --batch-rows --part-rows  rows per record batch (65536) and per transformed part file (1048576)
  --fk-validation     immediate (default: validated inside the swap transaction) or deferred (left NOT VALID
                      for the batch's closing `--action validate` run)
  --target-secret-id  Secrets Manager secret with host/port/username/password/dbname (AWS)
  --target-url-env    name of an environment variable holding a libpq URL (local runs)
  --tables            validate: comma-separated target tables whose foreign keys to validate (default all);
                      publish: the batch's staged tables, parents first
  --swap              immediate (default: the load swaps its table in) or deferred (the load leaves the finished
                      staging table for the batch's closing `--action publish` run)
  --batch-tables      deferred: the tables staged by the same batch (a child's keys are validated against their
                      staged parents; in reject mode rows whose parent is not staged are rejected too)
  --staging-schema    publish: where the batch staged its tables (default consorcio_staging)
  --discard           publish: drop the batch's staged tables without swapping anything (default false)
  --run-id            recorded with rejected rows
  --report-checks     report the `no_rejected_rows` asset check through Pipes (default true)
Prints the run's figures as one JSON line on stdout; errors go to stderr as one `ERROR: ...` line.
"""

from __future__ import annotations

import argparse
import binascii
import contextlib
import io
import json
import logging
import os
import queue
import random
import re
import sys
import threading
import time
import traceback
import uuid as uuid_mod
from dataclasses import dataclass, field
from urllib.parse import urlparse

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from psycopg import sql

LOG = logging.getLogger("consorcio_glue_job")
LOAD_FILE = re.compile(r"^(?:SEGMENT\d+_)?LOAD[0-9A-F]{8}\.(parquet|csv)(\.gz)?$")  # DMS names
US_PER_MINUTE = 60_000_000
MIN_US = -62135596800000000  # 0001-01-01T00:00:00Z in µs since the epoch
MAX_US = 253402300799999999  # 9999-12-31T23:59:59.999999Z
INDEX_BUILD_MEMORY = "256MB"


class JobError(Exception):
    """A failure whose message names table, column, file and key — and never a data value of a PII column."""


def require_owner(target: str) -> None:
    """Local runs: the `consorcio run` process that owns the run (CONSORCIO_RUN_OWNER, `<pid>:<start ticks>`)
    is gone, so nobody will see or check this load: stop rather than change the target for a dead run."""
    pid, _, ticks = os.environ.get("CONSORCIO_RUN_OWNER", "").partition(":")
    if not pid:
        return
    try:
        text = open(f"/proc/{pid}/stat").read()
        fields = text[text.rindex(")") + 2:].split()
    except OSError:
        fields = None
    if fields is None or fields[0] == "Z" or fields[19] != ticks:
        raise JobError(f"{target}: the run that started this job is gone (process {pid}): not swapping")


# ---------------------------------------------------------------------------------------------- arguments


def _bool(text: str) -> bool:
    return str(text).strip().lower() in ("1", "true", "yes", "y")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)  # Glue adds its own --args
    p.add_argument("--action", choices=["load", "validate", "publish"], default="load")
    p.add_argument("--table-spec")
    p.add_argument("--stages", default="transformed,aurora")
    p.add_argument("--lake-uri")
    p.add_argument("--raw-folder", default="raw")
    p.add_argument("--raw-format", choices=["parquet", "csv"], default="parquet")
    p.add_argument("--csv-delimiter", default=",")
    p.add_argument("--csv-null-value", default="")
    p.add_argument("--csv-header", default="false")
    p.add_argument("--extra-columns", default="")
    p.add_argument("--on-invalid", choices=["fail", "reject"], default="fail")
    p.add_argument("--copy-streams", type=int, default=2)
    p.add_argument("--batch-rows", type=int, default=65_536)
    p.add_argument("--part-rows", type=int, default=1_048_576)
    p.add_argument("--fk-validation", choices=["immediate", "deferred"], default="immediate")
    p.add_argument("--target-secret-id")
    p.add_argument("--target-url-env")
    p.add_argument("--tables", default="")
    p.add_argument("--swap", choices=["immediate", "deferred"], default="immediate")
    p.add_argument("--batch-tables", default="")
    p.add_argument("--staging-schema", default="consorcio_staging")
    p.add_argument("--discard", default="false")
    p.add_argument("--schema", default="consorcio")
    p.add_argument("--run-id", default="")
    p.add_argument("--report-checks", default="true")
    args, _unknown = p.parse_known_args(argv)
    args.stages = {s.strip() for s in args.stages.split(",") if s.strip()}
    if not args.stages <= {"transformed", "aurora"} or not args.stages:
        p.error("--stages takes transformed, aurora or both")
    args.extra_columns = [c for c in args.extra_columns.split(",") if c]
    args.csv_header = _bool(args.csv_header)
    args.report_checks = _bool(args.report_checks)
    args.discard = _bool(args.discard)
    args.copy_streams = max(1, args.copy_streams)
    return args


# ---------------------------------------------------------------------------------------------- the lake


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, root path) of a lake or file URI; S3 endpoint and region from the usual AWS variables."""
    if uri.startswith("s3://"):
        parsed = urlparse(uri)
        fs = pafs.S3FileSystem(
            endpoint_override=os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"),
            region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        )
        return fs, f"{parsed.netloc}{parsed.path}".rstrip("/")
    if "://" not in uri:
        return pafs.LocalFileSystem(), os.path.abspath(uri).rstrip("/")
    fs, path = pafs.FileSystem.from_uri(uri)
    return fs, path.rstrip("/")


def load_spec(value: str) -> dict:
    if value.lstrip().startswith("{"):
        return json.loads(value)
    fs, path = filesystem(value)
    with fs.open_input_stream(path) as f:
        return json.loads(f.read().decode("utf-8"))


@dataclass
class Lake:
    fs: pafs.FileSystem
    root: str
    uri: str

    @staticmethod
    def at(uri: str) -> "Lake":
        return Lake(*filesystem(uri), uri.rstrip("/"))

    def uri_of(self, path: str) -> str:
        return f"{self.uri}/{self.relative(path)}"

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def relative(self, path: str) -> str:
        return path[len(self.root) + 1:] if path.startswith(self.root + "/") else path

    def exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type != pafs.FileType.NotFound

    def files_under(self, base: str) -> list[pafs.FileInfo]:
        """Files below `base`, skipping hidden and temporary folders (names starting with . or _)."""
        infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        out = []
        for info in infos:
            rel = info.path[len(base) + 1:]
            if info.type == pafs.FileType.File and not any(part[:1] in "._" for part in rel.split("/")):
                out.append(info)
        return sorted(out, key=lambda i: i.path)

    def delete_dir(self, path: str) -> None:
        if self.exists(path):
            self.fs.delete_dir(path)


# ---------------------------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class Col:
    source: str
    target: str
    family: str
    arrow: str
    postgres_type: str
    nullable: bool
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    pii: bool = False
    offset_column: str | None = None
    free_text: bool = False  # typed by a person (Observacao): may hold anything, so handled like PII
    generated: bool = False  # PostgreSQL computes it: not copied

    @staticmethod
    def of(d: dict) -> "Col":
        return Col(d["source"], d["target"], d["family"], d["arrow"], d["postgres_type"], d["nullable"],
                   d.get("length"), d.get("precision"), d.get("scale"), d.get("pii", False), d.get("offset_column"),
                   d.get("free_text", False), d.get("generated", False))

    @property
    def confidential(self) -> bool:
        """Values never shown (messages, rejects, logs): customer PII and free text."""
        return self.pii or self.free_text

    def dms_type(self) -> pa.DataType:
        """The Arrow type DMS writes for the column (the catalog's type-mapping table)."""
        if self.arrow.startswith("decimal128"):
            return pa.decimal128(self.precision, self.scale)
        return {
            "bool": pa.bool_(), "uint8": pa.uint8(), "int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64(),
            "float32": pa.float32(), "float64": pa.float64(), "date32": pa.date32(), "string": pa.string(),
            "binary": pa.binary(), "time64[us]": pa.time64("us"), "timestamp[us]": pa.timestamp("us"),
        }[self.arrow]

    def target_type(self) -> pa.DataType:
        """The Arrow type in the transformed zone: what the PostgreSQL column holds."""
        if self.family == "uuid":
            return pa.uuid()
        if self.family == "timestamptz":
            return pa.timestamp("us", tz="UTC")
        if self.family == "int" and self.arrow == "uint8":
            return pa.int16()
        return self.dms_type()

    def target_fields(self) -> list[pa.Field]:
        fields = [pa.field(self.target, self.target_type(), self.nullable)]
        if self.offset_column:
            fields.append(pa.field(self.offset_column, pa.int16(), self.nullable))
        return fields


@dataclass
class Spec:
    raw: dict
    columns: list[Col] = field(init=False)

    def __post_init__(self):
        self.columns = [Col.of(c) for c in self.raw["columns"]]
        self._target_schema = pa.schema([f for c in self.columns for f in c.target_fields()])

    @property
    def source_name(self) -> str:
        return self.raw["source"]["name"]

    @property
    def source_schema(self) -> str:
        return self.raw["source"]["schema"]

    @property
    def target(self) -> str:
        return self.raw["target"]["name"]

    @property
    def schema(self) -> str:
        return self.raw["target"]["schema"]

    @property
    def staging_schema(self) -> str:
        return self.raw["target"]["staging_schema"]

    @property
    def qualified(self) -> str:
        """For messages and metadata; SQL uses `table_id`/`staging_id` (quoted)."""
        return f"{self.schema}.{self.target}"

    @property
    def table_id(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.target)

    @property
    def staging_id(self) -> sql.Identifier:
        return sql.Identifier(self.staging_schema, self.target)

    @property
    def primary_key(self) -> list[str]:
        return list(self.raw["primary_key"])

    @property
    def target_primary_key(self) -> list[str]:
        by_source = {c.source: c.target for c in self.columns}
        return [by_source[k] for k in self.primary_key]

    @property
    def expected_rows(self) -> int | None:
        return self.raw.get("expected_rows")

    @property
    def ddl(self) -> dict:
        return self.raw["ddl"]

    def asset_key(self, stage: str) -> str:
        return self.raw["asset_keys"][stage]

    def target_schema(self) -> pa.Schema:
        return self._target_schema

    def target_columns(self) -> list[str]:
        return self.target_schema().names

    def copy_columns(self) -> list[str]:
        """The columns the COPY writes: all but those PostgreSQL generates."""
        generated = {c.target for c in self.columns if c.generated}
        return [n for n in self.target_columns() if n not in generated]


# ---------------------------------------------------------------------------------------------- reading raw


@dataclass
class RawBatch:
    batch: pa.RecordBatch  # source column names, DMS types
    file: str  # path relative to the lake root
    first_row: int  # 0-based row number of the batch's first row within its file


@dataclass
class RawRejects:
    """Rows a CSV reader had to skip (wrong column count) in reject mode."""

    rows: list[dict] = field(default_factory=list)


def raw_files(lake: Lake, args, spec: Spec) -> list[pafs.FileInfo]:
    folder = [p for p in args.raw_folder.strip("/").split("/") if p not in ("", ".")]
    base = lake.path(*folder, spec.source_schema, spec.source_name)
    files = [f for f in lake.files_under(base) if LOAD_FILE.match(f.base_name)]
    wanted = "parquet" if args.raw_format == "parquet" else "csv"
    other = [f for f in files if LOAD_FILE.match(f.base_name).group(1) != wanted]
    if other:
        raise JobError(f"{spec.source_name}: {lake.relative(other[0].path)} is not {wanted} (DataFormat is {wanted})")
    if not files and spec.expected_rows:
        raise JobError(
            f"{spec.source_name}: no LOAD files under {lake.relative(base)}/ but DMS loaded "
            f"{spec.expected_rows} rows from the source: the raw zone is missing this table's files"
        )
    return files


def _check_file_schema(spec: Spec, schema: pa.Schema, file: str, extra: list[str]) -> list[str]:
    """Columns to read from a file; an unexpected, missing or retyped column is schema drift."""
    names = [n for n in schema.names if n not in extra]
    expected = [c.source for c in spec.columns]
    if sorted(names) != sorted(expected):
        missing = sorted(set(expected) - set(names))
        unexpected = sorted(set(names) - set(expected))
        raise JobError(f"{spec.source_name}: {file} has columns that differ from the catalog "
                       f"(missing {missing}, unexpected {unexpected})")
    for c in spec.columns:
        got, want = schema.field(c.source).type, c.dms_type()
        if got != want and not _compatible(got, want):
            raise JobError(f"{spec.source_name}.{c.source}: {file} has type {got}, the catalog says {want}")
    return expected


def _compatible(got: pa.DataType, want: pa.DataType) -> bool:
    if pa.types.is_timestamp(got) and pa.types.is_timestamp(want):
        return got.tz is None  # ParquetTimestampInMillisecond writes timestamp[ms]
    return (pa.types.is_large_string(got) and want == pa.string()) or (
        pa.types.is_large_binary(got) and want == pa.binary())


def parquet_batches(pf: pq.ParquetFile, rows: int, columns: list[str] | None = None) -> "iter[pa.RecordBatch]":
    """The file's rows in batches of about `rows`, reading one row group at a time: `iter_batches` over a whole
    file holds memory that grows with the file (measured: +190 MB at 250k simulação rows, +340 MB at 1M), and DMS
    files grow with the table up to MaxFileSize. DMS's small row groups are coalesced into `rows`-row batches."""
    pending: list[pa.RecordBatch] = []
    buffered = 0
    for index in range(pf.metadata.num_row_groups):
        if pf.metadata.row_group(index).num_rows > rows:  # a large row group streams on its own
            yield from _coalesced(pending)
            pending, buffered = [], 0
            yield from pf.iter_batches(batch_size=rows, row_groups=[index], columns=columns)
            continue
        group = pf.read_row_group(index, columns=columns)
        pending.extend(group.to_batches())
        buffered += group.num_rows
        if buffered >= rows:
            yield from _coalesced(pending)
            pending, buffered = [], 0
    yield from _coalesced(pending)


def _coalesced(batches: list[pa.RecordBatch]) -> "iter[pa.RecordBatch]":
    """One contiguous batch (Arrow copies each column once), so the transform and COPY see few large batches."""
    if sum(b.num_rows for b in batches):
        yield from pa.Table.from_batches(batches).combine_chunks().to_batches()


def read_parquet(lake: Lake, info: pafs.FileInfo, spec: Spec, args) -> "iter[RawBatch]":
    rel = lake.relative(info.path)
    batch, row = None, 0
    try:
        pf = pq.ParquetFile(lake.fs.open_input_file(info.path))
        columns = _check_file_schema(spec, pf.schema_arrow, rel, args.extra_columns)
        for batch in parquet_batches(pf, args.batch_rows, columns):
            yield RawBatch(batch, rel, row)
            row += batch.num_rows
    except (pa.ArrowException, OSError) as err:
        raise JobError(f"{spec.source_name}: cannot read {rel}: {type(err).__name__}: "
                       f"{_no_values(str(err))}{_after(spec, batch)}") from None


def _after(spec: Spec, batch) -> str:
    if batch is None or batch.num_rows == 0:
        return " (before the first row)"
    return f" (after key {_key_text(spec, batch, batch.num_rows - 1)})"


def _no_values(message: str) -> str:
    """Arrow's messages may quote a data value or a CSV row: keep only the part before it."""
    return re.split(r"[:]\s*['\"]|\n", message, maxsplit=1)[0].strip()[:300]


def read_csv(lake: Lake, info: pafs.FileInfo, spec: Spec, args, skipped: RawRejects) -> "iter[RawBatch]":
    rel = lake.relative(info.path)
    names = [*args.extra_columns, *(c.source for c in spec.columns)]
    pk_positions = [names.index(k) for k in spec.primary_key]
    problems: list[str] = []

    def on_invalid_row(row) -> str:
        key = _csv_row_key(row.text, args.csv_delimiter, pk_positions, spec.primary_key)
        reason = f"wrong column count: expected {row.expected_columns}, got {row.actual_columns}"
        if args.on_invalid == "reject":
            skipped.rows.append({"source_file": rel, "row_number": row.number, "primary_key": key,
                                 "column_name": None, "reason": reason})
            return "skip"
        where = f"row {row.number}" if row.number is not None else "a row"
        problems.append(f"{spec.source_name}: {rel} {where} (key {_key_json_text(key)}): {reason}")
        return "error"

    read_options = pacsv.ReadOptions(column_names=None if args.csv_header else names,
                                     block_size=8 << 20, use_threads=True)
    parse_options = pacsv.ParseOptions(delimiter=args.csv_delimiter, quote_char='"', double_quote=True,
                                       escape_char=False, newlines_in_values=True, invalid_row_handler=on_invalid_row)
    convert_options = pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names}, null_values=[args.csv_null_value],
        strings_can_be_null=True, quoted_strings_can_be_null=False,
        include_columns=[c.source for c in spec.columns],
    )
    row = 0
    batch = None
    try:
        with lake.fs.open_input_stream(info.path) as stream:
            reader = pacsv.open_csv(stream, read_options, parse_options, convert_options)
            if args.csv_header and reader.schema.names != [c.source for c in spec.columns]:
                raise JobError(f"{spec.source_name}: {rel} header does not match the catalog's columns")
            for batch in reader:
                yield RawBatch(typed_from_csv(batch, spec), rel, row)
                row += batch.num_rows
    except (pa.ArrowException, OSError) as err:
        if problems:
            raise JobError(problems[0]) from None
        raise JobError(f"{spec.source_name}: cannot read {rel}: {type(err).__name__}: "
                       f"{_no_values(str(err))}{_after(spec, batch)}") from None


def _csv_row_key(text: str, delimiter: str, positions: list[int], names: list[str]) -> dict:
    import csv

    fields = next(csv.reader([text], delimiter=delimiter), [])
    return {n: (fields[p] if p < len(fields) else None) for n, p in zip(names, positions)}


# ---------------------------------------------------------------------------------------------- CSV text to DMS types


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
        bad = pa.concat_arrays([lbad if lbad is not None else _falses(mid),
                                rbad if rbad is not None else _falses(len(arr) - mid)])
        return pa.concat_arrays([left, right]), bad


def _falses(n: int) -> pa.Array:
    return pa.nulls(n, pa.bool_()).fill_null(False)


_BOOL_TRUE = pa.array(["1", "true", "t", "y", "yes"])
_BOOL_FALSE = pa.array(["0", "false", "f", "n", "no"])


def _csv_bool(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    low = pc.utf8_lower(pc.utf8_trim_whitespace(arr))
    is_true, is_false = pc.is_in(low, _BOOL_TRUE), pc.is_in(low, _BOOL_FALSE)
    value = pc.if_else(is_true, True, pc.if_else(is_false, False, None))
    return value, pc.and_(arr.is_valid(), pc.invert(pc.or_(is_true, is_false)))


def _csv_binary(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    ok = pc.match_substring_regex(arr, r"^(0[xX])?([0-9A-Fa-f]{2})*$")
    clean = pc.if_else(ok, pc.replace_substring_regex(arr, r"^0[xX]", ""), None)
    return unhex_binary(clean), pc.and_(arr.is_valid(), pc.invert(ok.fill_null(False)))


def _csv_time(arr: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    stamped = pc.binary_join_element_wise("1970-01-01 ", pc.utf8_slice_codeunits(arr, 0, 15), "")
    ts, bad = cast_rows(stamped, pa.timestamp("us"))
    return pc.cast(ts, pa.time64("us")), bad


def typed_from_csv(batch: pa.RecordBatch, spec: Spec) -> pa.RecordBatch:
    """Strings from a DMS CSV file to the Arrow types DMS writes to Parquet; unparsable values are flagged.

    Flagged values come back as nulls with a `__invalid__<column>` boolean column, so the one transform
    below handles both formats and reports them (with file and key) like any other violation.
    """
    arrays, names = [], []
    for c in spec.columns:
        arr = batch.column(c.source)
        want = c.dms_type()
        if want == pa.string():
            value, bad = arr, None
        elif want == pa.bool_():
            value, bad = _csv_bool(arr)
        elif want == pa.binary():
            value, bad = _csv_binary(arr)
        elif want == pa.time64("us"):
            value, bad = _csv_time(arr)
        elif pa.types.is_timestamp(want):
            value, bad = cast_rows(pc.utf8_slice_codeunits(arr, 0, 26), want)
        else:
            value, bad = cast_rows(arr, want)
            if pa.types.is_floating(want):
                overflow = pc.and_(pc.is_inf(value), pc.invert(pc.match_substring_regex(arr, "(?i)inf")))
                bad = overflow if bad is None else pc.or_(bad, overflow)
        arrays.append(value)
        names.append(c.source)
        if bad is not None:
            arrays.append(bad.fill_null(False))
            names.append(f"__invalid__{c.source}")
    return pa.RecordBatch.from_arrays(arrays, names=names)


# ---------------------------------------------------------------------------------------------- hex helpers


def _offsets(arr: pa.Array) -> tuple[pa.Array, int, int]:
    """The int32 offsets of a string/binary array (relative to its data buffer), first and last."""
    offs = pa.Array.from_buffers(pa.int32(), len(arr) + 1, [None, arr.buffers()[1]], offset=arr.offset)
    return offs, offs[0].as_py(), offs[-1].as_py()


def _checked(arr: pa.Array) -> pa.Array:
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
    return _checked(pa.Array.from_buffers(pa.binary(), len(hex_strings), [validity, new_offs.buffers()[1], pa.py_buffer(data)]))


def uuid_from_text(text: pa.Array) -> pa.Array:
    """Validated GUID text to Arrow's uuid type (16 bytes, RFC 4122 order: the text's order)."""
    digits = pc.fill_null(pc.replace_substring(text, "-", ""), "0" * 32)
    raw = binascii.unhexlify(pc.cast(digits, pa.string()).buffers()[2].to_pybytes()[: 32 * len(text)]
                             if len(text) else b"")
    validity = pa.concat_arrays([text.is_valid()]).buffers()[1]
    storage = _checked(pa.Array.from_buffers(pa.binary(16), len(text), [validity, pa.py_buffer(raw)]))
    return pa.ExtensionArray.from_storage(pa.uuid(), storage)


# ---------------------------------------------------------------------------------------------- transform


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
    local, bad_local = cast_rows(pc.utf8_slice_codeunits(pc.utf8_slice_codeunits(text, 0, -7), 0, 26),
                                 pa.timestamp("us"))
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
        out.append(Violation(c.source, _flag(pc.greater(pc.utf8_length(arr), c.length)),
                             f"longer than {c.postgres_type}"))
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


def _key_text(spec: Spec, batch: pa.RecordBatch, row: int) -> str:
    return _key_json_text({k: _plain(batch.column(k)[row].as_py()) for k in spec.primary_key})


def _key_json_text(key: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in key.items())


def _plain(value):
    if isinstance(value, (bytes, bytearray)):
        return "0x" + value.hex().upper()
    if value is None or isinstance(value, (int, float, str, bool)):
        return value
    return str(value)


def _value_hint(c: Col, batch: pa.RecordBatch, row: int) -> str:
    if c.confidential:
        return ""
    try:
        value = batch.column(c.source)[row].as_py()
    except UnicodeDecodeError:  # bytes that are not UTF-8: nothing printable to show
        return ""
    return f" (value {str(value)[:60]!r})" if value is not None else ""


def raise_violation(spec: Spec, raw: RawBatch, violations: list[Violation]) -> None:
    v = violations[0]
    row = pc.index(v.mask, True).as_py()
    c = next(col for col in spec.columns if col.source == v.column)
    count = sum(pc.sum(x.mask).as_py() or 0 for x in violations)
    raise JobError(
        f"{spec.source_name}.{v.column}: {v.reason}{_value_hint(c, raw.batch, row)} in {raw.file} "
        f"row {raw.first_row + row + 1} (key {_key_text(spec, raw.batch, row)}); "
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
            records.append({
                "source_file": raw.file, "row_number": raw.first_row + row + 1,
                "primary_key": {k: _plain(raw.batch.column(k)[row].as_py()) for k in spec.primary_key},
                "column_name": c.target, "reason": v.reason + _value_hint(c, raw.batch, row),
            })
    return pc.invert(bad), records


# ---------------------------------------------------------------------------------------------- transformed zone


class TransformedWriter:
    """Writes transformed/<table>/part-NNNNN.parquet under a temporary prefix, then swaps it in."""

    def __init__(self, lake: Lake, spec: Spec, part_rows: int):
        self.lake, self.spec, self.part_rows = lake, spec, part_rows
        self.final = lake.path("transformed", spec.target)
        self.tmp = lake.path("transformed", f".{spec.target}.tmp-{uuid_mod.uuid4().hex[:12]}")
        self.schema = spec.target_schema()
        # dictionaries and statistics only where they pay: text columns, and keys and dates for pruning
        keys = set(spec.target_primary_key)
        self.options = {
            "compression": "snappy",
            "use_dictionary": [f.name for f in self.schema if pa.types.is_string(f.type)],
            "write_statistics": [f.name for f in self.schema if f.name in keys or pa.types.is_temporal(f.type)],
        }
        self.writer: pq.ParquetWriter | None = None
        self.parts: list[str] = []
        self.rows_in_part = 0
        self.rows = 0
        self.lake.fs.create_dir(self.tmp, recursive=True)

    def _open(self) -> None:
        path = f"{self.tmp}/part-{len(self.parts):05d}.parquet"
        self.parts.append(path)
        self.writer = pq.ParquetWriter(self.lake.fs.open_output_stream(path), self.schema, **self.options)
        self.rows_in_part = 0

    def write(self, batch: pa.RecordBatch) -> None:
        try:
            if self.writer is None or self.rows_in_part >= self.part_rows:
                self.close_part()
                self._open()
            self.writer.write_batch(batch)
        except OSError as err:  # a full disk, a refused upload: the part being written is named
            raise JobError(f"{self.spec.target}: cannot write {self.lake.relative(self.parts[-1])}: "
                           f"{_no_values(str(err))}") from None
        self.rows_in_part += batch.num_rows
        self.rows += batch.num_rows

    def close_part(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def write_rejects(self, rejects: list[dict]) -> None:
        if rejects:
            table = rejects_table(rejects, self.spec.target, run_id="")
            pq.write_table(table, f"{self.tmp}/_rejects.parquet", filesystem=self.lake.fs)

    def commit(self, swap: bool = True) -> dict:
        """Close the parts and swap them in; `swap=False` leaves them under the temporary prefix for the batch's
        publish run (which swaps them once Aurora has committed)."""
        if self.writer is None and not self.parts:
            self._open()
        self.close_part()
        size = sum(self.lake.fs.get_file_info(p).size for p in self.parts)
        if swap:
            swap_prefix(self.lake, self.tmp, self.final)
        return {"files": len(self.parts), "bytes": size, "rows": self.rows,
                "uri": self.lake.uri_of(self.final)}

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.close_part()
        with contextlib.suppress(Exception):
            self.lake.delete_dir(self.tmp)


def swap_prefix(lake: Lake, tmp: str, final: str) -> None:
    """Replace `final` with `tmp`. A local directory swaps by renames (readers see old or new, never a mix);
    on S3 the new objects are copied over the old ones, then stale ones deleted."""
    if isinstance(lake.fs, pafs.LocalFileSystem):
        parent, name = final.rsplit("/", 1)
        old = f"{parent}/.{name}.old-{uuid_mod.uuid4().hex[:8]}"
        if lake.exists(final):
            lake.fs.move(final, old)
        lake.fs.move(tmp, final)
        lake.delete_dir(old)
        return
    new = {i.path[len(tmp) + 1:] for i in lake.fs.get_file_info(pafs.FileSelector(tmp, recursive=True))
           if i.type == pafs.FileType.File}
    for name in sorted(new):
        lake.fs.copy_file(f"{tmp}/{name}", f"{final}/{name}")
    if lake.exists(final):
        for info in lake.fs.get_file_info(pafs.FileSelector(final, recursive=True)):
            if info.type == pafs.FileType.File and info.path[len(final) + 1:] not in new:
                lake.fs.delete_file(info.path)
    lake.delete_dir(tmp)


def clean_leftovers(lake: Lake, spec: Spec) -> None:
    """Temporary prefixes of this table left by a killed run (we hold the table's lock)."""
    base = lake.path("transformed")
    for info in lake.fs.get_file_info(pafs.FileSelector(base, allow_not_found=True)):
        name = info.base_name
        if info.type == pafs.FileType.Directory and (
                name.startswith(f".{spec.target}.tmp-") or name.startswith(f".{spec.target}.old-")):
            LOG.info("removing leftover %s", lake.relative(info.path))
            lake.fs.delete_dir(info.path)


def read_transformed(lake: Lake, spec: Spec, batch_rows: int, stats: "Stats") -> "iter[pa.RecordBatch]":
    final = lake.path("transformed", spec.target)
    if not lake.exists(final):
        raise JobError(f"{spec.target}: transformed/{spec.target}/ does not exist: materialize transformed first")
    schema = spec.target_schema()
    for info in lake.files_under(final):
        if not re.match(r"^part-\d{5}\.parquet$", info.base_name):
            continue
        rel = lake.relative(info.path)
        try:
            pf = pq.ParquetFile(lake.fs.open_input_file(info.path))
            if pf.schema_arrow.remove_metadata() != schema.remove_metadata():
                raise JobError(f"{spec.target}: {rel} does not have the catalog's transformed schema")
            stats.files_read += 1
            stats.bytes_read += info.size or 0
            for batch in parquet_batches(pf, batch_rows):
                stats.rows_read += batch.num_rows
                yield batch
        except (pa.ArrowException, OSError) as err:
            raise JobError(f"{spec.target}: cannot read {rel}: {_no_values(str(err))}") from None


def read_transformed_rejects(lake: Lake, spec: Spec) -> list[dict]:
    path = lake.path("transformed", spec.target, "_rejects.parquet")
    if not lake.exists(path):
        return []
    rows = pq.read_table(path, filesystem=lake.fs).to_pylist()
    for r in rows:
        r["primary_key"] = json.loads(r["primary_key"]) if r["primary_key"] else None
    return rows


# ---------------------------------------------------------------------------------------------- binary COPY rows
#
# PostgreSQL's binary COPY format, built from Arrow columns with numpy: no per-value Python, no text to parse on
# the server. A row is its field count (int16) then each field as a byte length (int32, -1 for NULL) and the
# value in the type's binary send format, big-endian. When every column is fixed-width and has no NULL in the
# batch (the schedule table), rows are one fixed-width matrix filled column by column; otherwise each column
# becomes Arrow binary fields and Arrow joins them row by row.

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
    words = np.frombuffer(arr.buffers()[1], dtype=np.int64, count=2 * (n + arr.offset))[2 * arr.offset:]
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
    whole, frac = _divmod(magnitude, 10 ** s)
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
        return np.dtype((np.uint8, (width,))), raw[arr.offset * width:].reshape(len(arr), width)
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
        fixed = [_fixed_width(c) for c in batch.columns]
        if all(f is not None for f in fixed):  # one structured array: every row the same width
            layout = [("count", ">i2")]
            for i, (kind, _) in enumerate(fixed):
                layout += [(f"size{i}", ">i4"), (f"value{i}", kind)]
            rows = np.empty(batch.num_rows, dtype=layout)
            rows["count"] = batch.num_columns
            for i, (kind, values) in enumerate(fixed):
                rows[f"size{i}"], rows[f"value{i}"] = kind.itemsize, values
            return memoryview(rows.view(np.uint8))
    count = batch.num_columns.to_bytes(2, "big")
    joined = pc.binary_join_element_wise(count, *(_fields(c) for c in batch.columns), b"")
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32, count=len(joined) + 1 + joined.offset)
    return memoryview(joined.buffers()[2])[offsets[joined.offset]:offsets[-1]]


# ---------------------------------------------------------------------------------------------- Aurora


def aws_client(service: str):
    """A boto3 client with botocore's standard retries: throttling, 5xx and connection errors retried with
    exponential backoff and full jitter, at most 5 attempts."""
    import boto3
    from botocore.config import Config

    return boto3.client(service, config=Config(retries={"mode": "standard", "total_max_attempts": 5}))


def conninfo(args) -> str:
    if args.target_url_env:
        url = os.environ.get(args.target_url_env)
        if not url:
            raise JobError(f"environment variable {args.target_url_env} (the target URL) is not set")
        return url
    if args.target_secret_id:
        answer = aws_client("secretsmanager").get_secret_value(SecretId=args.target_secret_id)
        secret = json.loads(answer["SecretString"])
        return psycopg.conninfo.make_conninfo(
            host=secret["host"], port=secret.get("port", 5432), user=secret["username"],
            password=secret["password"], dbname=secret.get("dbname", "consorcio"), sslmode=secret.get("sslmode", "prefer"),
        )
    raise JobError("no target: pass --target-secret-id (AWS) or --target-url-env (local)")


CONNECT_ATTEMPTS = 5
#: a server that answers this may accept the same connection later (libpq gives connection failures no SQLSTATE)
TRANSIENT_FATAL = ("the database system is starting up", "the database system is shutting down",
                   "the database system is in recovery mode", "too many clients",
                   "remaining connection slots are reserved")


def _transient(err: Exception) -> bool:
    """No answer (refused, reset, unreachable) or "not ready"; a FATAL about password, role or database is final."""
    text = str(err)
    return "FATAL:" not in text or any(reason in text for reason in TRANSIENT_FATAL)


def _with_retries(open_connection, name: str, transient: tuple[type[Exception], ...]):
    """A connection, retrying transient failures with exponential backoff and full jitter (at most
    CONNECT_ATTEMPTS attempts): an Aurora failover or a burst of connections must not fail a load."""
    attempt = 1
    while True:
        try:
            return open_connection()
        except transient as err:
            if attempt == CONNECT_ATTEMPTS or not _transient(err):
                raise
            delay = random.random() * min(10.0, 0.5 * 2 ** (attempt - 1))
            LOG.warning("%s: connecting to PostgreSQL failed (attempt %d/%d: %s); retrying in %.2fs", name, attempt,
                        CONNECT_ATTEMPTS, _no_values(str(err)), delay)
            time.sleep(delay)
            attempt += 1


def _application_name(name: str) -> str:
    return f"consorcio-glue:{name}"[:63]


def connect(dsn: str, name: str, autocommit: bool = True) -> psycopg.Connection:
    return _with_retries(lambda: psycopg.connect(dsn, autocommit=autocommit, application_name=_application_name(name)),
                         name, (psycopg.OperationalError,))


VALUE_DETAILS = ("Key (", "Failing row contains")  # PostgreSQL details that quote a row's values


def pg_error(err: Exception) -> str:
    """A PostgreSQL error without the row text COPY puts in its context (it may hold PII)."""
    diag = getattr(err, "diag", None)
    if diag is None or diag.message_primary is None:
        return _no_values(str(err))
    detail = diag.message_detail or ""
    detail = f": {detail}" if detail and not any(quoted in detail for quoted in VALUE_DETAILS) else ""
    return f"{diag.message_primary}{detail}{_copy_position(diag.context or '')}"


def _copy_position(context: str) -> str:
    """Where in its input a COPY failed (line and column), from PostgreSQL's CONTEXT, without the value it quotes."""
    m = re.search(r"COPY [\w.]+, line (\d+)(?:, column (\w+))?", context)
    if not m:
        return ""
    return f" (COPY stream line {m.group(1)}" + (f", column {m.group(2)})" if m.group(2) else ")")


@contextlib.contextmanager
def table_lock(conn: psycopg.Connection, name: str):
    """A session advisory lock per table: two runs of one table never interleave; a killed run's lock dies with it."""
    key = f"consorcio.load:{name}"
    got = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)).fetchone()[0]
    if not got:
        LOG.info("another run is loading %s: waiting for its lock", name)
        conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))


def run_ddl(conn: psycopg.Connection, statements: list[str]) -> None:
    for stmt in statements:
        conn.execute(stmt)


def prepare_staging(conn: psycopg.Connection, spec: Spec) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('consorcio.ddl', 0))")
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(spec.schema)))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(spec.staging_schema)))
    # CASCADE: a staged child of a batch that never published (killed) may still reference this staging table
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(spec.staging_id))
    run_ddl(conn, spec.ddl["create"])


def drop_staging(conn: psycopg.Connection, spec: Spec) -> None:
    """A failed load leaves no half-written staging table behind. Best effort: the connection may be what failed
    (and a killed job cannot do it at all): the table's next run drops it first anyway."""
    with contextlib.suppress(psycopg.Error):
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(spec.staging_id))


class Workers:
    """Threads consuming a bounded queue (memory stays flat); a worker's error reaches the producer at its
    next `put` or at `close`, and `abort` makes the workers stop without committing anything."""

    def __init__(self, n: int, name: str):
        self.queue: queue.Queue = queue.Queue(maxsize=2 * n)
        self.errors: list[BaseException] = []
        self.aborted = False
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True, name=f"{name}-{i}")
                        for i in range(n)]
        for t in self.threads:
            t.start()

    def work(self, index: int, items) -> None:
        raise NotImplementedError

    def _items(self):
        while (item := self.queue.get()) is not None:
            if self.aborted:
                raise RuntimeError("aborted")
            yield item
        if self.aborted:
            raise RuntimeError("aborted")

    def _run(self, index: int) -> None:
        try:
            self.work(index, self._items())
        except BaseException as err:  # noqa: BLE001 - handed to the producer, whose puts time out to see it
            self.errors.append(err)

    def put(self, item) -> None:
        while True:
            if self.errors:
                raise self.errors[0]
            try:
                self.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """One sentinel per worker, re-sent while any worker lives: a failing worker drains the queue to unblock
        the producer, and may swallow the sentinel meant for another (which would then wait forever)."""
        while any(t.is_alive() for t in self.threads):
            with contextlib.suppress(queue.Full):
                self.queue.put_nowait(None)
            for t in self.threads:
                t.join(timeout=0.05)
        if self.errors and not self.aborted:
            raise self.errors[0]

    def abort(self) -> None:
        self.aborted = True
        with contextlib.suppress(BaseException):
            self.close()


class IngestStreams(Workers):
    """N connections, each streaming its share of the batches into the staging table as one binary COPY
    (`copy_rows`: numpy fills the rows with the GIL released; PostgreSQL reads binary values instead of parsing
    text). Each stream commits only once all of its batches are in."""

    def __init__(self, dsn: str, spec: Spec, n: int):
        self.dsn, self.spec = dsn, spec
        self.rows = 0
        self.bytes = 0
        self._lock = threading.Lock()
        super().__init__(n, f"copy-{spec.target}")

    def work(self, index: int, batches) -> None:
        spec = self.spec
        columns = spec.copy_columns()
        statement = sql.SQL("COPY {}.{} ({}) FROM STDIN (FORMAT binary)").format(
            sql.Identifier(spec.staging_schema), sql.Identifier(spec.target), _keys_sql(columns))
        select = len(columns) != len(spec.target_columns())
        try:
            with connect(self.dsn, f"{spec.target}#{index}", autocommit=False) as conn:
                with conn.cursor() as cur:
                    with cur.copy(statement) as copy:
                        copy.write(COPY_HEADER)
                        for batch in batches:
                            data = copy_rows(batch.select(columns) if select else batch)
                            copy.write(data)
                            with self._lock:
                                self.bytes += data.nbytes
                        copy.write(COPY_TRAILER)
                    rows = cur.rowcount
                conn.commit()
        except psycopg.Error as err:
            state = f" [SQLSTATE {err.sqlstate}]" if err.sqlstate else ""
            raise JobError(f"{spec.target}: COPY stream {index} into the staging table failed: "
                           f"{pg_error(err)}{state}") from None
        with self._lock:
            self.rows += rows


class BackgroundWriter(Workers):
    """The transformed zone's Parquet encoding on its own thread, overlapping the COPY."""

    def __init__(self, writer: "TransformedWriter"):
        self.writer = writer
        super().__init__(1, f"parquet-{writer.spec.target}")

    def work(self, index: int, batches) -> None:
        for batch in batches:
            self.writer.write(batch)


def _keys_sql(cols: list[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(c) for c in cols)


def finish_staging(conn: psycopg.Connection, spec: Spec, args, rejects: list[dict]) -> int:
    """Constraints and indexes after the data (one pass each); a failure names the rows that break it.
    Returns how many rows reject mode moved out of the table for breaking a CHECK."""
    conn.execute(f"SET maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")  # sort keys in memory, not on disk
    removed = 0
    for item in spec.ddl["after_load"]:
        if item["kind"] == "check" and args.on_invalid == "reject":
            moved = reject_check(conn, spec, item)
            removed += len(moved)
            rejects.extend(moved)
        try:
            conn.execute(item["sql"])
        except psycopg.Error as err:
            raise JobError(f"{spec.target}: {item['kind']} {item['name']} fails: {pg_error(err)}"
                           f"{diagnose(conn, spec, item)}") from None
    for column in spec.ddl.get("identity", []):
        conn.execute(sql.SQL(
            "SELECT setval(pg_get_serial_sequence({tbl}, {col}), COALESCE(max({c}), 0) + 1, false) FROM {s}.{t}"
        ).format(tbl=sql.Literal(spec.staging_id.as_string(conn)), col=sql.Literal(column), c=sql.Identifier(column),
                 s=sql.Identifier(spec.staging_schema), t=sql.Identifier(spec.target)))
    conn.execute("RESET maintenance_work_mem")
    # VACUUM, not only ANALYZE: the insert-triggered autovacuum of a freshly loaded table would otherwise scan it
    # in the background, taking a core from the next load and the checks, and hold off the swaps of the tables
    # that reference it (autovacuum yields to a lock request only after deadlock_timeout, 1 s)
    conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(spec.staging_id))
    return removed


def diagnose(conn: psycopg.Connection, spec: Spec, item: dict) -> str:
    """The first keys breaking a primary key, unique key or check (keys only)."""
    t = sql.SQL("{}.{}").format(sql.Identifier(spec.staging_schema), sql.Identifier(spec.target))
    pk = _keys_sql(spec.target_primary_key)
    if item["kind"] in ("primary_key", "unique"):
        cols = _keys_sql(item["columns"])
        q = sql.SQL("SELECT {c}, count(*) FROM {t} GROUP BY {c} HAVING count(*) > 1 LIMIT 5").format(c=cols, t=t)
        names = item["columns"]
    elif item["kind"] == "check":
        q = sql.SQL("SELECT {pk} FROM {t} WHERE NOT ({p}) LIMIT 5").format(pk=pk, t=t, p=sql.SQL(item["predicate"]))
        names = spec.target_primary_key
    else:
        return ""
    try:
        with conn.transaction():
            rows = conn.execute(q).fetchall()
    except psycopg.Error:
        return ""
    keys = ["(" + ", ".join(f"{n}={v}" for n, v in zip(names, r)) + ")" for r in rows]
    return f"; first offending keys: {', '.join(keys)}" if keys else ""


def reject_check(conn: psycopg.Connection, spec: Spec, item: dict) -> list[dict]:
    """Reject mode: rows that break a CHECK leave the staging table for consorcio_rejects."""
    t = sql.SQL("{}.{}").format(sql.Identifier(spec.staging_schema), sql.Identifier(spec.target))
    pk = spec.target_primary_key
    q = sql.SQL("DELETE FROM {t} WHERE NOT ({p}) RETURNING {pk}").format(
        t=t, p=sql.SQL(item["predicate"]), pk=_keys_sql(pk))
    rows = conn.execute(q).fetchall()
    source_pk = spec.primary_key
    return [{"source_file": None, "row_number": None,
             "primary_key": {s: _plain(v) for s, v in zip(source_pk, r)}, "column_name": None,
             "reason": f"violates check constraint {item['name']}"} for r in rows]


def add_foreign_keys(conn: psycopg.Connection, spec: Spec, batch: frozenset[str] = frozenset()) -> None:
    """Before the swap, the new table's own foreign keys, validated on the staging table: one pass each, and
    the key moves with the table, so nothing is left to validate after the swap (parents are loaded first;
    a parent staged by the same batch is the one referenced). A row without its parent fails the load here,
    naming the first keys, while the previous table stays."""
    staging = spec.staging_id.as_string(conn)
    for fk in spec.ddl["foreign_keys"]:
        parent = parent_relation(conn, spec, fk, batch)
        if not _exists(conn, parent):
            LOG.warning("%s: parent %s of %s is not loaded yet; the key is added when it is", spec.target,
                        fk["parent"], fk["name"])
            continue
        try:
            conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({})").format(
                spec.staging_id, sql.Identifier(fk["name"]), _keys_sql(fk["columns"]), _qualified(parent),
                _keys_sql(fk["parent_columns"])))
        except psycopg.errors.ForeignKeyViolation:
            count, keys = orphans(conn, staging, fk["columns"], parent, fk["parent_columns"], spec.target_primary_key)
            raise JobError(f"{spec.target}: {count} row(s) break foreign key {fk['name']} -> {fk['parent']}; "
                           f"first keys: {keys}") from None


def own_foreign_keys(conn: psycopg.Connection, table: str) -> dict[str, bool]:
    """name → validated, for the foreign keys `table` holds."""
    return dict(conn.execute("SELECT conname, convalidated FROM pg_constraint WHERE contype = 'f' "
                             "AND conrelid = %s::regclass", (table,)).fetchall())


# A table is named by the SQL text of its qualified name, quoted where it must be: the spec's foreign keys
# carry it so (the catalog's DDL quotes), PostgreSQL's `regclass::text` gives it so, and the job's own tables are
# turned into it with `sql.Identifier(...).as_string`. Never built by joining raw names with a dot.


def _exists(conn: psycopg.Connection, qualified: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified,)).fetchone()[0]


def _qualified(name: str) -> sql.Composable:
    return sql.SQL(name)


def orphans(conn, child: str, cols: list[str], parent: str, pcols: list[str], key: list[str]) -> tuple[int, str]:
    not_null = sql.SQL(" AND ").join(sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(c)) for c in cols)
    match = sql.SQL(" AND ").join(sql.SQL("p.{} = c.{}").format(sql.Identifier(p), sql.Identifier(c))
                                  for c, p in zip(cols, pcols))
    where = sql.SQL("{nn} AND NOT EXISTS (SELECT 1 FROM {p} p WHERE {m})").format(
        nn=not_null, p=_qualified(parent), m=match)
    count = conn.execute(sql.SQL("SELECT count(*) FROM {c} c WHERE {w}").format(c=_qualified(child), w=where)).fetchone()[0]
    if not count:
        return 0, ""
    rows = conn.execute(sql.SQL("SELECT {k} FROM {c} c WHERE {w} LIMIT 5").format(
        k=sql.SQL(", ").join(sql.SQL("c.{}").format(sql.Identifier(k)) for k in key), c=_qualified(child), w=where)).fetchall()
    return count, ", ".join("(" + ", ".join(f"{k}={v}" for k, v in zip(key, r)) + ")" for r in rows)


def swap(conn: psycopg.Connection, spec: Spec, rejects: list[dict] | None, run_id: str,
         validate: bool) -> list[tuple[str, str]]:
    """One transaction: readers see the previous complete table or the new one.

    The table's own foreign keys come validated from the staging table (`add_foreign_keys`); those of other
    tables pointing at it, and its own whose parent appeared since, are re-added NOT VALID; with
    `validate` they are validated in the same transaction (a failure rolls the swap back), otherwise they are
    returned for the batch's closing `validate` run. Views others built on the table are dropped and re-created
    (with their owner, comment and grants) in the same transaction.
    """
    touched: list[tuple[str, str]] = []
    table = spec.table_id.as_string(conn)
    with conn.transaction():
        conn.execute("SET LOCAL lock_timeout = '120s'")
        exists = _exists(conn, table)
        incoming, views = [], []
        if exists:
            conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(spec.table_id))
            incoming = conn.execute(
                "SELECT conname, conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE contype = 'f' AND confrelid = %s::regclass AND conrelid <> confrelid ORDER BY conname",
                (table,)).fetchall()
            for name, child, _ in incoming:
                conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(_qualified(child), sql.Identifier(name)))
            views = dependent_views(conn, table)
            for view in reversed(views):
                conn.execute(view.drop)
            conn.execute(sql.SQL("DROP TABLE {}").format(spec.table_id))
        conn.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(spec.staging_id, sql.Identifier(spec.schema)))
        for view in views:
            view.recreate(conn)
        own = own_foreign_keys(conn, table)  # added on the staging table; NOT VALID if a parent swap raced it
        touched += [(table, name) for name, valid in own.items() if not valid]
        for fk in spec.ddl["foreign_keys"]:
            if fk["name"] not in own and _exists(conn, fk["parent"]):
                conn.execute(fk["sql"])
                touched.append((table, fk["name"]))
        done = set()
        for name, child, definition in incoming:
            definition = definition.removesuffix(" NOT VALID")
            conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {} NOT VALID").format(
                _qualified(child), sql.Identifier(name), sql.SQL(definition)))
            touched.append((child, name))
            done.add(name)
        for fk in spec.ddl["incoming_foreign_keys"]:
            if fk["name"] not in done and _exists(conn, fk["child"]):
                conn.execute(fk["sql"])
                touched.append((fk["child"], fk["name"]))
        if rejects is not None:
            store_rejects(conn, spec, rejects, run_id)
        if validate:
            failures = validate_constraints(conn, touched)
            if failures:
                raise JobError(f"{spec.target}: foreign keys would not hold after the swap, which is rolled back: "
                               + "; ".join(failures))
        require_owner(spec.target)  # last look before the commit: a dead run's load is rolled back
    return [] if validate else touched


@dataclass(frozen=True)
class DependentView:
    """A view (or materialized view) someone built on a loaded table: dropped and re-created by the swap."""

    name: str
    kind: str  # "v" or "m"
    definition: str
    comment: str | None
    owner: str
    grants: tuple[tuple[str, str], ...]

    @property
    def keyword(self) -> str:
        return "MATERIALIZED VIEW" if self.kind == "m" else "VIEW"

    @property
    def drop(self) -> sql.Composable:
        return sql.SQL("DROP {} {}").format(sql.SQL(self.keyword), _qualified(self.name))

    def recreate(self, conn: psycopg.Connection) -> None:
        name = _qualified(self.name)
        conn.execute(sql.SQL("CREATE {} {} AS {}").format(sql.SQL(self.keyword), name,
                                                           sql.SQL(self.definition.rstrip().rstrip(";"))))
        conn.execute(sql.SQL("ALTER {} {} OWNER TO {}").format(sql.SQL(self.keyword), name, sql.Identifier(self.owner)))
        if self.comment is not None:
            conn.execute(sql.SQL("COMMENT ON {} {} IS {}").format(sql.SQL(self.keyword), name,
                                                                  sql.Literal(self.comment)))
        for grantee, privilege in self.grants:
            who = sql.SQL("PUBLIC") if grantee == "PUBLIC" else sql.Identifier(grantee)
            conn.execute(sql.SQL("GRANT {} ON {} TO {}").format(sql.SQL(privilege), name, who))


def dependent_views(conn: psycopg.Connection, table: str) -> list[DependentView]:
    """Views depending on `table`, directly or through other views, shallowest first."""
    rows = conn.execute(
        """WITH RECURSIVE deps(oid, depth) AS (
               SELECT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
               WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = %(t)s::regclass AND r.ev_class <> d.refobjid
               UNION
               SELECT r.ev_class, deps.depth + 1 FROM deps JOIN pg_depend d ON d.refobjid = deps.oid
               JOIN pg_rewrite r ON r.oid = d.objid
               WHERE d.classid = 'pg_rewrite'::regclass AND r.ev_class <> deps.oid AND deps.depth < 50)
           SELECT c.oid::regclass::text, c.relkind, pg_get_viewdef(c.oid), obj_description(c.oid, 'pg_class'),
                  pg_get_userbyid(c.relowner),
                  array(SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END
                               || '|' || a.privilege_type
                        FROM aclexplode(c.relacl) a WHERE a.grantee <> c.relowner),
                  max(deps.depth)
           FROM deps JOIN pg_class c ON c.oid = deps.oid
           GROUP BY c.oid ORDER BY max(deps.depth), 1""", {"t": table}).fetchall()
    return [DependentView(name, kind, definition, comment, owner, tuple(tuple(g.split("|", 1)) for g in grants))
            for name, kind, definition, comment, owner, grants, _ in rows]


def rejects_table(rejects: list[dict], table: str, run_id: str) -> pa.Table:
    return pa.table({
        "run_id": pa.array([run_id] * len(rejects), pa.string()),
        "table_name": pa.array([table] * len(rejects), pa.string()),
        "source_file": pa.array([r["source_file"] for r in rejects], pa.string()),
        "row_number": pa.array([r["row_number"] for r in rejects], pa.int64()),
        "primary_key": pa.array([json.dumps(r["primary_key"]) if r["primary_key"] is not None else None
                                 for r in rejects], pa.string()),
        "column_name": pa.array([r["column_name"] for r in rejects], pa.string()),
        "reason": pa.array([r["reason"] for r in rejects], pa.string()),
    })


def store_rejects(conn: psycopg.Connection, spec: Spec, rejects: list[dict], run_id: str) -> None:
    rejects_id = sql.SQL("{}.consorcio_rejects").format(sql.Identifier(spec.schema)).as_string(conn)
    if conn.execute("SELECT to_regclass(%s)", (rejects_id,)).fetchone()[0] is None:
        # concurrent first loads would race on CREATE TABLE IF NOT EXISTS (its sequence's unique name)
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('consorcio.ddl', 0))")
        conn.execute(spec.ddl["rejects"])
    conn.execute(sql.SQL("DELETE FROM {}.consorcio_rejects WHERE table_name = %s").format(
        sql.Identifier(spec.schema)), (spec.target,))
    if not rejects:
        return
    table = rejects_table(rejects, spec.target, run_id)
    with conn.cursor().copy(sql.SQL("COPY {}.consorcio_rejects ({}) FROM STDIN (FORMAT csv)").format(
            sql.Identifier(spec.schema), _keys_sql(table.schema.names))) as copy:
        out = io.BytesIO()
        pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=False))
        copy.write(out.getbuffer())


def validate_constraints(conn: psycopg.Connection, constraints: list[tuple[str, str]]) -> list[str]:
    """VALIDATE each (table, constraint); failures come back with their orphan keys."""
    failures = []
    for table, name in constraints:
        try:
            with conn.transaction():  # a savepoint inside the swap: a failure leaves the transaction usable
                conn.execute(sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(
                    _qualified(table), sql.Identifier(name)))
        except psycopg.errors.UndefinedObject:
            continue  # dropped by a later swap of its parent, which re-added and reported it
        except psycopg.Error as err:
            failures.append(f"{table}.{name}: {pg_error(err)}{describe_orphans(conn, table, name)}")
    return failures


def describe_orphans(conn: psycopg.Connection, table: str, name: str) -> str:
    row = conn.execute(
        """SELECT c.confrelid::regclass::text,
                  array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),
                  array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
                        JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i),
                  array(SELECT a.attname FROM pg_index x JOIN unnest(x.indkey) WITH ORDINALITY k(n, i) ON true
                        JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n
                        WHERE x.indrelid = c.conrelid AND x.indisprimary ORDER BY k.i)
           FROM pg_constraint c WHERE c.conname = %s AND c.conrelid = %s::regclass""", (name, table)).fetchone()
    if row is None:
        return ""
    parent, cols, pcols, key = row
    count, keys = orphans(conn, table, cols, parent, pcols, key or cols)
    return f"; {count} orphan row(s), first keys: {keys}" if count else ""


def pending_foreign_keys(conn: psycopg.Connection, schema: str, tables: list[str]) -> list[tuple[str, str]]:
    rows = conn.execute(
        """SELECT c.conrelid::regclass::text, c.conname, cl.relname, pl.relname
           FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_class pl ON pl.oid = c.confrelid
           WHERE c.contype = 'f' AND NOT c.convalidated AND c.connamespace = %s::regnamespace
           ORDER BY 1, 2""", (schema,)).fetchall()
    wanted = set(tables)
    return [(t, n) for t, n, child, parent in rows if not wanted or child in wanted or parent in wanted]


# ---------------------------------------------------------------------------------------------- the load


@dataclass
class Stats:
    rows_read: int = 0
    rows_rejected: int = 0
    rows_written: int = 0
    files_read: int = 0
    bytes_read: int = 0
    stream_seconds: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    def seconds(self) -> float:
        return time.perf_counter() - self.started


def source_batches(lake: Lake, spec: Spec, args, stats: Stats, skipped: RawRejects) -> "iter[RawBatch]":
    files = raw_files(lake, args, spec)
    if not files:
        LOG.warning("%s: no LOAD files (DMS writes none for an empty table): loading an empty table", spec.source_name)
    for info in files:
        stats.files_read += 1
        stats.bytes_read += info.size or 0
        reader = read_parquet if args.raw_format == "parquet" else read_csv
        extra = (skipped,) if args.raw_format == "csv" else ()
        yield from reader(lake, info, spec, args, *extra)


def transformed_batches(lake: Lake, spec: Spec, args, stats: Stats, rejects: list[dict],
                        skipped: RawRejects) -> "iter[pa.RecordBatch]":
    """Raw batches transformed; violations fail the run or become rejects (--on-invalid)."""
    for raw in source_batches(lake, spec, args, stats, skipped):
        stats.rows_read += raw.batch.num_rows
        batch, violations = transform(raw, spec)
        if violations:
            if args.on_invalid == "fail":
                raise_violation(spec, raw, violations)
            keep, records = reject_rows(spec, raw, violations, args.run_id)
            rejects.extend(records)
            stats.rows_rejected += raw.batch.num_rows - (pc.sum(keep).as_py() or 0)
            batch = batch.filter(keep)
        yield batch
    rejects.extend(skipped.rows)
    stats.rows_rejected += len(skipped.rows)
    stats.rows_read += len(skipped.rows)


def check_expected_rows(spec: Spec, stats: Stats) -> None:
    if spec.expected_rows is not None and stats.rows_read != spec.expected_rows:
        raise JobError(f"{spec.source_name}: the raw files hold {stats.rows_read} rows but DMS loaded "
                       f"{spec.expected_rows}: files are missing or truncated")


class TableLoad:
    """One table's run. The data streams once: raw files → transform → the transformed zone's temporary
    prefix and the COPY streams into the staging table. Then keys, checks and indexes are built, Aurora is
    swapped in one transaction, and only then the transformed prefix is swapped: a failure anywhere leaves
    both the transformed zone and Aurora as they were."""

    def __init__(self, args, spec: Spec, lake: Lake, control: psycopg.Connection | None, dsn: str | None):
        self.args, self.spec, self.lake, self.control, self.dsn = args, spec, lake, control, dsn
        self.aurora = "aurora" in args.stages
        self.transforming = "transformed" in args.stages
        self.stats, self.rejects, self.skipped = Stats(), [], RawRejects()
        self.writer: TransformedWriter | None = None
        self.copier: IngestStreams | None = None

    def run(self, pipes) -> dict:
        if self.transforming:
            clean_leftovers(self.lake, self.spec)
            self.writer = TransformedWriter(self.lake, self.spec, self.args.part_rows)
        try:
            self.stream()
            result = {"table": self.spec.target}
            if self.aurora:
                result["aurora"] = self.load_aurora()
            if self.writer:
                result["transformed"] = self.publish_transformed()
        except BaseException:
            if self.writer:
                self.writer.abort()
            if self.aurora:
                drop_staging(self.control, self.spec)
            raise
        if "transformed" in result:
            report_transformed(pipes, self.spec, result["transformed"])
        if "aurora" in result:
            report_aurora(pipes, self.spec, result["aurora"], self.args.report_checks)
        return result

    def batches(self):
        if self.transforming:
            return transformed_batches(self.lake, self.spec, self.args, self.stats, self.rejects, self.skipped)
        return read_transformed(self.lake, self.spec, self.args.batch_rows, self.stats)

    def stream(self) -> None:
        if self.aurora:
            prepare_staging(self.control, self.spec)
            self.copier = IngestStreams(self.dsn, self.spec, self.args.copy_streams)
        background = BackgroundWriter(self.writer) if self.writer else None
        try:
            for batch in self.batches():
                if background:
                    background.put(batch)
                if self.copier and batch.num_rows:
                    self.copier.put(batch)
            if self.transforming:
                check_expected_rows(self.spec, self.stats)
                background.close()
                self.writer.write_rejects(self.rejects)
            if self.copier:
                self.copier.close()
        except BaseException:
            if background:
                background.abort()
            if self.copier:
                self.copier.abort()
            raise
        self.stats.stream_seconds = self.stats.seconds()
        LOG.info("%s: %d rows read, transformed and copied in %.2fs", self.spec.target, self.stats.rows_read,
                 self.stats.stream_seconds)

    def load_aurora(self) -> dict:
        spec, control, args = self.spec, self.control, self.args
        if not self.transforming:
            self.rejects = read_transformed_rejects(self.lake, spec)
        mark = time.perf_counter()
        rows = self.copier.rows - finish_staging(control, spec, args, self.rejects)
        deferred = args.swap == "deferred"
        batch = batch_tables(args) if deferred else frozenset()
        if deferred and args.on_invalid == "reject":
            rows -= reject_orphans(control, spec, batch, self.rejects)
        add_foreign_keys(control, spec, batch)
        build = time.perf_counter() - mark
        LOG.info("%s: keys, checks and indexes built in %.2fs", spec.target, build)
        mark = time.perf_counter()
        if deferred:
            transformed = self.lake.relative(self.writer.tmp) if self.writer else None
            record_staged(control, spec, self.rejects, args.run_id, transformed)
            touched = []
            LOG.info("%s: staged for the batch's publish", spec.target)
        else:
            touched = swap(control, spec, self.rejects, args.run_id, validate=args.fk_validation == "immediate")
        swapped = time.perf_counter() - mark
        if not deferred:
            LOG.info("%s: swapped in %.3fs", spec.target, swapped)
        seconds = self.stats.seconds()
        return {"rows_written": rows, "rows_rejected": len(self.rejects), "rows_read": self.stats.rows_read,
                "bytes_copied": self.copier.bytes, "copy_streams": args.copy_streams, "seconds": round(seconds, 3),
                "stream_seconds": round(self.stats.stream_seconds, 3), "build_seconds": round(build, 3),
                "swap_seconds": round(swapped, 3), "rows_per_s": round(rows / seconds) if seconds else None,
                "database": control.info.dbname, "foreign_keys_not_valid": len(touched)}

    def publish_transformed(self) -> dict:
        out = self.writer.commit(swap=self.args.swap != "deferred" or not self.aurora)
        return {**out, "rows_read": self.stats.rows_read, "rows_rejected": self.stats.rows_rejected,
                "files_read": self.stats.files_read, "bytes_read": self.stats.bytes_read,
                "seconds": round(self.stats.seconds(), 3)}


def load_table(args, pipes) -> dict:
    spec = Spec(load_spec(args.table_spec))
    try:
        return _load_table(args, pipes, spec)
    except (psycopg.Error, OSError) as err:  # a failure no step named (a dropped connection, a lost file): the table
        raise JobError(f"{spec.target}: {type(err).__name__}: {pg_error(err)}") from None


def _load_table(args, pipes, spec: Spec) -> dict:
    lake = Lake.at(args.lake_uri)
    if "aurora" not in args.stages:
        return TableLoad(args, spec, lake, None, None).run(pipes)
    dsn = conninfo(args)
    with connect(dsn, spec.target) as control, table_lock(control, spec.target):
        return TableLoad(args, spec, lake, control, dsn).run(pipes)


def validate_batch(args, pipes) -> dict:
    tables = [t for t in args.tables.split(",") if t]
    with connect(conninfo(args), "validate") as conn:
        pending = pending_foreign_keys(conn, args.schema, tables)
        LOG.info("validating %d foreign key(s) left NOT VALID by the swaps", len(pending))
        failures = validate_constraints(conn, pending)
    if failures:
        raise JobError("foreign keys do not hold after loading the batch: " + "; ".join(failures))
    return {"validated": [f"{t}.{n}" for t, n in pending]}


# ---------------------------------------------------------------------------------------------- batch publish
# A batch's loads become visible together or not at all. Each table's load (`--swap deferred`) finishes its
# staging table (data, keys, indexes, its own foreign keys validated against the parents staged by the same
# batch) and records it in `<staging>._staged`; the closing `--action publish` run swaps every staged table in
# one transaction (PostgreSQL DDL is transactional), validates the foreign keys, and commits, or rolls all back.

STAGED = "_staged"  # <staging schema>._staged: table → the batch that staged it, its spec and its rejects


def batch_tables(args) -> frozenset[str]:
    return frozenset(t for t in args.batch_tables.split(",") if t)


def parent_relation(conn: psycopg.Connection, spec: Spec, fk: dict, batch: frozenset[str]) -> str:
    """The table a staged child's key references: itself, the parent staged by the same batch, or the live one."""
    if fk["parent"] == spec.table_id.as_string(conn):
        return spec.staging_id.as_string(conn)
    if fk.get("parent_table") in batch:
        return sql.Identifier(spec.staging_schema, fk["parent_table"]).as_string(conn)
    return fk["parent"]


def reject_orphans(conn: psycopg.Connection, spec: Spec, batch: frozenset[str], rejects: list[dict]) -> int:
    """Reject mode: rows whose parent is not in what the batch publishes (rejected, or missing) leave the staging
    table too, so no child points at a rejected parent. The reason names the parent key (keys, never values)."""
    removed = 0
    staging = spec.staging_id.as_string(conn)
    for fk in spec.ddl["foreign_keys"]:
        parent = parent_relation(conn, spec, fk, batch)
        if parent == staging or not _exists(conn, parent):
            continue
        cols, pcols = fk["columns"], fk["parent_columns"]
        not_null = sql.SQL(" AND ").join(sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(c)) for c in cols)
        match = sql.SQL(" AND ").join(sql.SQL("p.{} = c.{}").format(sql.Identifier(pc_), sql.Identifier(c))
                                      for c, pc_ in zip(cols, pcols))
        rows = conn.execute(sql.SQL(
            "DELETE FROM {c} c WHERE {nn} AND NOT EXISTS (SELECT 1 FROM {p} p WHERE {m}) RETURNING {k}, {f}").format(
            c=spec.staging_id, nn=not_null, p=_qualified(parent), m=match,
            k=sql.SQL(", ").join(sql.SQL("c.{}").format(sql.Identifier(k)) for k in spec.target_primary_key),
            f=sql.SQL(", ").join(sql.SQL("c.{}").format(sql.Identifier(c)) for c in cols))).fetchall()
        n = len(spec.target_primary_key)
        for row in rows:
            parent_key = ", ".join(f"{p}={_plain(v)}" for p, v in zip(pcols, row[n:]))
            rejects.append({"source_file": None, "row_number": None,
                            "primary_key": {s: _plain(v) for s, v in zip(spec.primary_key, row[:n])},
                            "column_name": cols[0],
                            "reason": f"its parent {fk['parent']} ({parent_key}) is not loaded (rejected or "
                                      f"missing): foreign key {fk['name']}"})
        if rows:
            LOG.warning("%s: %d row(s) rejected because their parent row in %s is not loaded (foreign key %s)",
                        spec.target, len(rows), fk["parent"], fk["name"])
        removed += len(rows)
    return removed


def _staged_id(schema: str) -> sql.Composable:
    return sql.Identifier(schema, STAGED)


def record_staged(conn: psycopg.Connection, spec: Spec, rejects: list[dict], batch: str,
                  transformed: str | None) -> None:
    """The staging table is finished: remember which batch staged it (its publish swaps only its own tables)
    and where its transformed parts wait (relative to the lake; swapped in after Aurora commits)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('consorcio.ddl', 0))")
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (table_name text PRIMARY KEY, batch_id text NOT NULL, "
                             "spec jsonb NOT NULL, rejects jsonb NOT NULL, transformed text, staged_at timestamptz NOT NULL "
                             "DEFAULT now())").format(_staged_id(spec.staging_schema)))
        conn.execute(sql.SQL("INSERT INTO {} (table_name, batch_id, spec, rejects, transformed) "
                             "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (table_name) DO UPDATE SET "
                             "batch_id = excluded.batch_id, spec = excluded.spec, rejects = excluded.rejects, "
                             "transformed = excluded.transformed, staged_at = now()").format(
            _staged_id(spec.staging_schema)),
            (spec.target, batch, json.dumps(spec.raw), json.dumps(rejects), transformed))


def staged_tables(conn: psycopg.Connection, schema: str, tables: list[str], batch: str) -> dict[str, tuple]:
    """table → (spec, rejects, transformed prefix) of what `batch` staged (a table restaged by another batch
    since is not ours)."""
    if not _exists(conn, _staged_id(schema).as_string(conn)):
        return {}
    rows = conn.execute(sql.SQL("SELECT table_name, spec, rejects, transformed FROM {} WHERE batch_id = %s "
                                "AND table_name = ANY(%s)").format(_staged_id(schema)), (batch, tables)).fetchall()
    return {name: (Spec(raw), rejects, transformed) for name, raw, rejects, transformed in rows}


def swap_batch(conn: psycopg.Connection, staged: list[tuple], run_id: str) -> list[str]:
    """Every staged table swapped in one transaction (parents first), foreign keys validated before COMMIT."""
    touched: list[tuple[str, str]] = []
    with conn.transaction():
        conn.execute("SET LOCAL lock_timeout = '120s'")
        for spec, rejects, _ in staged:
            if not _exists(conn, spec.staging_id.as_string(conn)):
                raise JobError(f"{spec.target}: its staging table is gone (dropped by another run's load of it)")
            touched += swap(conn, spec, rejects, run_id, validate=False)
        names = [spec.target for spec, _, _ in staged]
        pending = list(dict.fromkeys(touched + pending_foreign_keys(conn, staged[0][0].schema, names)))
        failures = validate_constraints(conn, pending)
        if failures:
            raise JobError("foreign keys would not hold after publishing the batch, so nothing was published "
                           "(every table keeps its previous version): " + "; ".join(failures))
    return [f"{t}.{n}" for t, n in pending]


def discard_staged(conn: psycopg.Connection, lake: Lake, schema: str, tables: list[str], batch: str) -> None:
    """Drop what `batch` staged (children first, transformed parts still waiting included) and forget it;
    tables restaged by another batch are left alone."""
    with contextlib.suppress(psycopg.Error, OSError):
        ours = staged_tables(conn, schema, tables, batch)
        for table in reversed(tables):
            if table in ours:
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(schema, table)))
                if ours[table][2]:
                    lake.delete_dir(lake.path(ours[table][2]))
        conn.execute(sql.SQL("DELETE FROM {} WHERE batch_id = %s AND table_name = ANY(%s)").format(
            _staged_id(schema)), (batch, list(ours)))


def publish_batch(args, pipes) -> dict:
    """The batch's closing run: swap all of its staged tables at once, or (--discard) none of them."""
    tables = [t for t in args.tables.split(",") if t]
    lake = Lake.at(args.lake_uri)
    with connect(conninfo(args), "publish") as conn, contextlib.ExitStack() as locks:
        for table in sorted(tables):  # one order for every publish: two batches never deadlock on these
            locks.enter_context(table_lock(conn, table))
        try:
            if args.discard:
                LOG.info("discarding %d staged table(s): the batch did not load completely", len(tables))
                return {"published": [], "discarded": tables}
            staged = staged_tables(conn, args.staging_schema, tables, args.run_id)
            lost = [t for t in tables if t not in staged]
            if lost:
                raise JobError(f"{', '.join(lost)}: not staged by this batch (run {args.run_id}) or restaged by "
                               "another run since: nothing was published")
            waiting = {t: staged[t][2] for t in tables if staged[t][2]}
            gone = [t for t, prefix in waiting.items() if not lake.exists(lake.path(prefix))]
            if gone:
                raise JobError(f"{', '.join(gone)}: the transformed parts this batch wrote are gone (removed by "
                               "another run's load of the table): nothing was published")
            mark = time.perf_counter()
            validated = swap_batch(conn, [staged[t] for t in tables], args.run_id)
            for table, prefix in waiting.items():  # Aurora has committed: the transformed zone follows
                swap_prefix(lake, lake.path(prefix), lake.path("transformed", table))
            LOG.info("published %d table(s) in one transaction in %.3fs (%d foreign key(s) validated)",
                     len(tables), time.perf_counter() - mark, len(validated))
            return {"published": tables, "validated": validated}
        finally:
            discard_staged(conn, lake, args.staging_schema, tables, args.run_id)


# ---------------------------------------------------------------------------------------------- Pipes


def report_transformed(pipes, spec: Spec, out: dict) -> None:
    if pipes is None:
        return
    seconds = out["seconds"] or 0
    pipes.report_asset_materialization(asset_key=spec.asset_key("transformed"), metadata={
        "dagster/row_count": out["rows"], "rows_read": out["rows_read"], "rows_written": out["rows"],
        "rows_rejected": out["rows_rejected"], "files_read": out["files_read"], "bytes_read": out["bytes_read"],
        "files_written": out["files"], "bytes_written": out["bytes"],
        "uri": {"raw_value": out["uri"], "type": "text"},
        "duration_s": float(seconds), "rows_per_s": float(round(out["rows"] / seconds)) if seconds else 0.0,
    })


def report_aurora(pipes, spec: Spec, out: dict, report_checks: bool) -> None:
    if pipes is None:
        return
    pipes.report_asset_materialization(asset_key=spec.asset_key("aurora"), metadata={
        "dagster/row_count": out["rows_written"], "rows_read": out["rows_read"], "rows_written": out["rows_written"],
        "rows_rejected": out["rows_rejected"], "bytes_copied": out["bytes_copied"], "copy_streams": out["copy_streams"],
        "duration_s": float(out["seconds"]), "rows_per_s": float(out["rows_per_s"] or 0),
        "stream_s": float(out["stream_seconds"]), "build_s": float(out["build_seconds"]),
        "swap_s": float(out["swap_seconds"]),
        "dagster/table_name": f"{out['database']}.{spec.qualified}",
        "foreign_keys_not_valid": out["foreign_keys_not_valid"],
    })
    if report_checks:
        pipes.report_asset_check(
            check_name="no_rejected_rows", asset_key=spec.asset_key("aurora"), passed=out["rows_rejected"] == 0,
            severity="ERROR", metadata={"rejected_rows": out["rows_rejected"],
                                        "where": {"raw_value": f"{spec.schema}.consorcio_rejects", "type": "text"}},
        )


class _PipesLogHandler(logging.Handler):
    def __init__(self, pipes):
        super().__init__()
        self.pipes = pipes

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.pipes.log.log(record.levelno, self.format(record))


@contextlib.contextmanager
def open_pipes():
    """Pipes when Dagster launched us (S3 context/messages on AWS, files locally); None when run by hand."""
    from dagster_pipes import (PipesCliArgsParamsLoader, PipesDefaultContextLoader, PipesDefaultMessageWriter,
                               PipesS3ContextLoader, PipesS3MessageWriter, open_dagster_pipes)

    loader = PipesCliArgsParamsLoader()
    if not loader.is_dagster_pipes_process():
        yield None
        return
    if "bucket" in loader.load_context_params():
        s3 = aws_client("s3")
        context_loader, writer = PipesS3ContextLoader(client=s3), PipesS3MessageWriter(client=s3, interval=1)
    else:
        context_loader, writer = PipesDefaultContextLoader(), PipesDefaultMessageWriter()
    with open_dagster_pipes(params_loader=loader, context_loader=context_loader, message_writer=writer) as pipes:
        handler = _PipesLogHandler(pipes)
        LOG.addHandler(handler)
        try:
            yield pipes
        finally:
            LOG.removeHandler(handler)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        with open_pipes() as pipes:
            action = {"validate": validate_batch, "publish": publish_batch}.get(args.action, load_table)
            result = action(args, pipes)
    except JobError as err:
        print(f"ERROR: {err}", file=sys.stderr, flush=True)
        return 1
    except Exception as err:  # noqa: BLE001 - reported, then a non-zero exit
        traceback.print_exc()
        print(f"ERROR: {type(err).__name__}: {_no_values(str(err))}", file=sys.stderr, flush=True)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
