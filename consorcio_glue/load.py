"""One table's run, in process: raw files → transform → the transformed zone and the COPY streams, then keys,
the swap and the transformed zone's swap; and the batch's closing `validate` run."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from consorcio_core.lake import LakeFiles
from consorcio_glue.args import JobArgs
from consorcio_glue.aurora import (
    add_foreign_keys,
    connect,
    conninfo,
    drop_staging,
    finish_staging,
    pending_foreign_keys,
    pg_error,
    prepare_staging,
    swap,
    table_lock,
    validate_constraints,
)
from consorcio_glue.errors import LOG, JobError
from consorcio_glue.pipes import report_aurora, report_transformed
from consorcio_glue.publish import record_staged, reject_orphans, wait_for_parents
from consorcio_glue.raw import RawBatch, RawRejects, raw_files, read_csv, read_parquet
from consorcio_glue.spec import Spec, load_spec
from consorcio_glue.streams import BackgroundWriter, IngestStreams
from consorcio_glue.transform import raise_violation, reject_rows, transform
from consorcio_glue.transformed import TransformedWriter, clean_leftovers, read_transformed, read_transformed_rejects


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


def source_batches(lake: LakeFiles, spec: Spec, args: JobArgs, stats: Stats, skipped: RawRejects) -> Iterator[RawBatch]:
    files = raw_files(lake, args, spec)
    if not files:
        LOG.warning("%s: no LOAD files (DMS writes none for an empty table): loading an empty table", spec.source_name)
    for info in files:
        stats.files_read += 1
        stats.bytes_read += info.size or 0
        reader = read_parquet if args.raw_format == "parquet" else read_csv
        extra = (skipped,) if args.raw_format == "csv" else ()
        yield from reader(lake, info, spec, args, *extra)


def transformed_batches(
    lake: LakeFiles, spec: Spec, args: JobArgs, stats: Stats, rejects: list[dict], skipped: RawRejects
) -> Iterator[pa.RecordBatch]:
    """The table's raw batches transformed; violations fail the run or become rejects (--on-invalid)."""
    yield from transform_stream(source_batches(lake, spec, args, stats, skipped), spec, args, stats, rejects)
    rejects.extend(skipped.rows)
    stats.rows_rejected += len(skipped.rows)
    stats.rows_read += len(skipped.rows)


def transform_stream(
    raws: Iterable[RawBatch], spec: Spec, args: JobArgs, stats: Stats, rejects: list[dict]
) -> Iterator[pa.RecordBatch]:
    """Raw batches transformed (the same for the whole table in process and for an executor's share on Spark)."""
    for raw in raws:
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


def check_expected_rows(spec: Spec, stats: Stats) -> None:
    if spec.expected_rows is not None and stats.rows_read != spec.expected_rows:
        raise JobError(
            f"{spec.source_name}: the raw files hold {stats.rows_read} rows but DMS loaded "
            f"{spec.expected_rows}: files are missing or truncated"
        )


class TableLoad:
    """One table's run. The data streams once: raw files → transform → the transformed zone's temporary
    prefix and the COPY streams into the staging table. Then keys, checks and indexes are built, Aurora is
    swapped in one transaction, and only then the transformed prefix is swapped: a failure anywhere leaves
    both the transformed zone and Aurora as they were. With `--swap deferred` both swaps are left to the batch's
    publish run (`consorcio_glue.publish`): the finished staging table and transformed prefix are recorded."""

    def __init__(self, args: JobArgs, spec: Spec, lake: LakeFiles, control: psycopg.Connection | None, dsn: str | None):
        self.args, self.spec, self.lake, self.control, self.dsn = args, spec, lake, control, dsn
        self.aurora = "aurora" in args.stages
        self.transforming = "transformed" in args.stages
        self.stats, self.skipped = Stats(), RawRejects()
        self.rejects: list[dict] = []
        self.writer: TransformedWriter | None = None
        self.copier: IngestStreams | None = None

    def run(self, pipes) -> dict:
        if self.transforming:
            clean_leftovers(self.lake, self.spec)
            self.writer = TransformedWriter(self.lake, self.spec, self.args.part_rows)
        try:
            self.stream()
            result: dict[str, Any] = {"table": self.spec.target}
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
        LOG.info(
            "%s: %d rows read, transformed and copied in %.2fs",
            self.spec.target,
            self.stats.rows_read,
            self.stats.stream_seconds,
        )

    def load_aurora(self) -> dict:
        spec, control, args = self.spec, self.control, self.args
        if not self.transforming:
            self.rejects = read_transformed_rejects(self.lake, spec)
        mark = time.perf_counter()
        rows = self.copier.rows - finish_staging(control, spec, args, self.rejects)
        deferred = args.swap == "deferred"
        batch = args.batch_tables if deferred else frozenset()
        # the batch's parents may still be loading (their runs start together with this one): the keys wait for them
        waited = wait_for_parents(control, spec, batch, args.run_id, args.parent_grace_seconds) if deferred else 0.0
        if deferred and args.on_invalid == "reject":
            rows -= reject_orphans(control, spec, batch, self.rejects)
        add_foreign_keys(control, spec, batch)
        build = time.perf_counter() - mark - waited
        LOG.info("%s: keys, checks and indexes built in %.2fs", spec.target, build)
        mark = time.perf_counter()
        if deferred:  # the batch's publish run swaps it, with the batch's other tables
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
        return {
            "rows_written": rows,
            "rows_rejected": len(self.rejects),
            "rows_read": self.stats.rows_read,
            "bytes_copied": self.copier.bytes,
            "copy_streams": args.copy_streams,
            "seconds": round(seconds, 3),
            "stream_seconds": round(self.stats.stream_seconds, 3),
            "build_seconds": round(build, 3),
            "swap_seconds": round(swapped, 3),
            "parents_wait_seconds": round(waited, 3),
            "rows_per_s": round(rows / seconds) if seconds else None,
            "database": control.info.dbname,
            "foreign_keys_not_valid": len(touched),
        }

    def publish_transformed(self) -> dict:
        out = self.writer.commit(swap=self.args.swap != "deferred" or not self.aurora)
        return {
            **out,
            "rows_read": self.stats.rows_read,
            "rows_rejected": self.stats.rows_rejected,
            "files_read": self.stats.files_read,
            "bytes_read": self.stats.bytes_read,
            "seconds": round(self.stats.seconds(), 3),
        }


def load_table(args: JobArgs, pipes, table_load: Callable[..., TableLoad] | None = None) -> dict:
    """One table's run; `table_load` makes its `TableLoad` (the Spark path passes its own)."""
    spec = Spec(load_spec(args.spec_source))
    try:
        return _load_table(args, pipes, spec, table_load or TableLoad)
    except (psycopg.Error, OSError) as err:  # a failure no step named (a dropped connection, a lost file): the table
        raise JobError(f"{spec.target}: {type(err).__name__}: {pg_error(err)}") from None


def _load_table(args: JobArgs, pipes, spec: Spec, table_load: Callable[..., TableLoad]) -> dict:
    lake = LakeFiles.at(args.lake)
    if "aurora" not in args.stages:
        return table_load(args, spec, lake, None, None).run(pipes)
    dsn = conninfo(args)
    with connect(dsn, spec.target) as control, table_lock(control, spec.target):
        return table_load(args, spec, lake, control, dsn).run(pipes)


def validate_batch(args: JobArgs, pipes) -> dict:
    tables = [t for t in args.tables.split(",") if t]
    with connect(conninfo(args), "validate") as conn:
        pending = pending_foreign_keys(conn, args.schema, tables)
        LOG.info("validating %d foreign key(s) left NOT VALID by the swaps", len(pending))
        failures = validate_constraints(conn, pending)
    if failures:
        raise JobError("foreign keys do not hold after loading the batch: " + "; ".join(failures))
    return {"validated": [f"{t}.{n}" for t, n in pending]}
