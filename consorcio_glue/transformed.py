"""The transformed zone: transformed/<table>/part-NNNNN.parquet written under a temporary prefix and swapped
in, read back for an `aurora`-only run, and the rejects that travel with it."""

from __future__ import annotations

import contextlib
import json
import re
import uuid as uuid_mod
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from consorcio_core.lake import LakeFiles
from consorcio_glue.errors import LOG, JobError, no_values
from consorcio_glue.raw import parquet_batches
from consorcio_glue.spec import Spec

if TYPE_CHECKING:
    from consorcio_glue.load import Stats


class TransformedWriter:
    """Writes transformed/<table>/part-NNNNN.parquet under a temporary prefix, then swaps it in."""

    def __init__(self, lake: LakeFiles, spec: Spec, part_rows: int, tmp: str | None = None, first_part: int = 0):
        """`tmp` and `first_part`: a Spark executor writes its parts into the driver's temporary prefix, numbered
        from its work item's, so every part has one deterministic name (a retried task overwrites its own)."""
        self.lake, self.spec, self.part_rows, self.first_part = lake, spec, part_rows, first_part
        self.final = lake.path("transformed", spec.target)
        self.tmp = tmp or lake.path("transformed", f".{spec.target}.tmp-{uuid_mod.uuid4().hex[:12]}")
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

    def _open(self) -> pq.ParquetWriter:
        path = f"{self.tmp}/part-{self.first_part + len(self.parts):05d}.parquet"
        self.parts.append(path)
        self.writer = pq.ParquetWriter(self.lake.fs.open_output_stream(path), self.schema, **self.options)
        self.rows_in_part = 0
        return self.writer

    def write(self, batch: pa.RecordBatch) -> None:
        try:
            if self.writer is None or self.rows_in_part >= self.part_rows:
                self.close_part()
                self.writer = self._open()
            self.writer.write_batch(batch)
        except OSError as err:  # a full disk, a refused upload: the part being written is named
            raise JobError(
                f"{self.spec.target}: cannot write {self.lake.relative(self.parts[-1])}: {no_values(str(err))}"
            ) from None
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
        return {"files": len(self.parts), "bytes": size, "rows": self.rows, "uri": self.lake.uri_of(self.final)}

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.close_part()
        with contextlib.suppress(Exception):
            self.lake.delete_dir(self.tmp)


def swap_prefix(lake: LakeFiles, tmp: str, final: str) -> None:
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
    new = {
        i.path[len(tmp) + 1 :]
        for i in lake.fs.get_file_info(pafs.FileSelector(tmp, recursive=True))
        if i.type == pafs.FileType.File
    }
    for name in sorted(new):
        lake.fs.copy_file(f"{tmp}/{name}", f"{final}/{name}")
    if lake.exists(final):
        for info in lake.fs.get_file_info(pafs.FileSelector(final, recursive=True)):
            if info.type == pafs.FileType.File and info.path[len(final) + 1 :] not in new:
                lake.fs.delete_file(info.path)
    lake.delete_dir(tmp)


def clean_leftovers(lake: LakeFiles, spec: Spec) -> None:
    """Temporary prefixes of this table left by a killed run (we hold the table's lock)."""
    base = lake.path("transformed")
    for info in lake.fs.get_file_info(pafs.FileSelector(base, allow_not_found=True)):
        name = info.base_name
        if info.type == pafs.FileType.Directory and (
            name.startswith(f".{spec.target}.tmp-") or name.startswith(f".{spec.target}.old-")
        ):
            LOG.info("removing leftover %s", lake.relative(info.path))
            lake.fs.delete_dir(info.path)


def read_transformed(lake: LakeFiles, spec: Spec, batch_rows: int, stats: Stats) -> Iterator[pa.RecordBatch]:
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
            raise JobError(f"{spec.target}: cannot read {rel}: {no_values(str(err))}") from None


def read_transformed_rejects(lake: LakeFiles, spec: Spec) -> list[dict]:
    path = lake.path("transformed", spec.target, "_rejects.parquet")
    if not lake.exists(path):
        return []
    rows = pq.read_table(path, filesystem=lake.fs).to_pylist()
    for r in rows:
        r["primary_key"] = json.loads(r["primary_key"]) if r["primary_key"] else None
    return rows


def rejects_table(rejects: list[dict], table: str, run_id: str) -> pa.Table:
    return pa.table(
        {
            "run_id": pa.array([run_id] * len(rejects), pa.string()),
            "table_name": pa.array([table] * len(rejects), pa.string()),
            "source_file": pa.array([r["source_file"] for r in rejects], pa.string()),
            "row_number": pa.array([r["row_number"] for r in rejects], pa.int64()),
            "primary_key": pa.array(
                [json.dumps(r["primary_key"]) if r["primary_key"] is not None else None for r in rejects], pa.string()
            ),
            "column_name": pa.array([r["column_name"] for r in rejects], pa.string()),
            "reason": pa.array([r["reason"] for r in rejects], pa.string()),
        }
    )
