"""The Spark path (AWS Glue 5.x: Spark 3.5, Python 3.11): one table's raw files spread over the executors.

The driver lists the raw files' row groups and cuts them into work items of about `--part-rows` rows (a CSV file,
which cannot be split by row group, is one item). Spark spreads the items over as many partitions as it has
executor cores; each partition transforms its items with the same code as the in-process path
(`load.transform_stream`), writes one transformed part per item under the driver's temporary prefix
(`part-<item>.parquet`: a retried task overwrites its own) and binary-COPYs its rows into the staging table over
its own connection, committed once its share is in. The driver prepared the staging table before and, after
every partition succeeded, finishes it (keys, foreign keys, VACUUM (ANALYZE)) and swaps it in one transaction,
exactly as the in-process path (`load.TableLoad`), or with `--swap deferred` records the staged table (and the
temporary prefix) for the batch's publish run. The COPY leaves generated columns to PostgreSQL
(`Spec.copy_columns`). Any executor's failure fails the run: the staging table is
dropped and the temporary prefix deleted, so the previous table and transformed zone stay.

Executors resolve the target themselves (`--target-secret-id` or `--target-url-env`): no password travels in a
Spark closure. Data values never leave an executor except as rows into PostgreSQL and Parquet; what comes back
to the driver is counts, part names and reject records (keys, never values of PII columns).
"""

from __future__ import annotations

import functools
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from consorcio_core.lake import LakeFiles
from consorcio_glue import load
from consorcio_glue.args import JobArgs
from consorcio_glue.aurora import conninfo, prepare_staging
from consorcio_glue.errors import LOG, JobError, no_values
from consorcio_glue.load import Stats, TableLoad, check_expected_rows, transform_stream
from consorcio_glue.raw import RawRejects, raw_files, read_csv, read_parquet
from consorcio_glue.spec import Spec
from consorcio_glue.streams import copy_stream
from consorcio_glue.transformed import TransformedWriter

#: a Spark master URL for runs outside spark-submit (local[2] in tests and the benchmark)
MASTER_ENV = "CONSORCIO_SPARK_MASTER"
LOCAL_MASTER = "local[2]"
#: spark-submit (and so every Glue Spark job) starts the Python driver with this variable set
GATEWAY_ENV = "PYSPARK_GATEWAY_PORT"


def wanted(args: JobArgs) -> bool:
    """Spark when asked (`--spark on`), or by default when spark-submit started the job (a Glue Spark job)."""
    if args.spark == "off":
        return False
    return args.spark == "on" or GATEWAY_ENV in os.environ


@dataclass(frozen=True)
class WorkItem:
    """An executor's unit of work: row groups of one raw file (or a whole CSV file)."""

    index: int  # its transformed part's number
    path: str  # in the lake's filesystem
    groups: tuple[int, ...] | None  # Parquet row groups; None: the whole file
    first_row: int  # the file's row number of its first row (0-based)
    rows: int  # from the Parquet footer; 0 for CSV (unknown before parsing)


def work_items(lake: LakeFiles, spec: Spec, args: JobArgs, stats: Stats) -> list[WorkItem]:
    """The raw files' row groups in items of about `--part-rows` rows, in file and row order."""
    items: list[WorkItem] = []
    for info in raw_files(lake, args, spec):
        stats.files_read += 1
        stats.bytes_read += info.size or 0
        if args.raw_format != "parquet":
            items.append(WorkItem(len(items), info.path, None, 0, 0))
            continue
        sizes = _row_groups(lake, spec, info.path)
        groups: list[int] = []
        first = row = rows = 0
        for group, size in enumerate(sizes):
            if groups and rows + size > args.part_rows:
                items.append(WorkItem(len(items), info.path, tuple(groups), first, rows))
                groups, first, rows = [], row, 0
            groups.append(group)
            rows += size
            row += size
        if groups:
            items.append(WorkItem(len(items), info.path, tuple(groups), first, rows))
    return items


def _row_groups(lake: LakeFiles, spec: Spec, path: str) -> list[int]:
    try:
        meta = pq.read_metadata(lake.fs.open_input_file(path))
    except (pa.ArrowException, OSError) as err:
        raise JobError(
            f"{spec.source_name}: cannot read {lake.relative(path)}: {type(err).__name__}: {no_values(str(err))}"
        ) from None
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


# ---------------------------------------------------------------------------------------------- on an executor


def run_partition(context: dict, partition: int, items: Iterable[WorkItem]) -> Iterator[dict]:
    """One partition's items: transformed, written as parts, copied as one COPY stream. A `JobError` (bad data,
    a refused COPY) comes back as a result, so Spark does not retry what would fail again."""
    items = list(items)
    if not items:
        return iter([])
    args: JobArgs = context["args"]
    spec, lake = Spec(context["spec"]), LakeFiles.at(args.lake)
    out: dict[str, Any] = {"partition": partition, "parts": [], "rows": 0, "rows_copied": 0, "bytes": 0, "rejects": []}
    stats, skipped = Stats(), RawRejects()
    sent: list[int] = []
    batches = _item_batches(items, context, spec, lake, args, stats, skipped, out)
    try:
        if "aurora" in args.stages:
            out["rows_copied"] = copy_stream(conninfo(args), spec, f"spark-{partition}", batches, sent.append)
        else:
            for _ in batches:
                pass
    except JobError as err:
        return iter([{"partition": partition, "error": str(err)}])
    out["rejects"].extend(skipped.rows)
    out.update(
        rows_read=stats.rows_read + len(skipped.rows),
        rows_rejected=stats.rows_rejected + len(skipped.rows),
        bytes=sum(sent),
    )
    return iter([out])


def _item_batches(
    items: list[WorkItem],
    context: dict,
    spec: Spec,
    lake: LakeFiles,
    args: JobArgs,
    stats: Stats,
    skipped: RawRejects,
    out: dict,
) -> Iterator[pa.RecordBatch]:
    for item in items:
        info = lake.fs.get_file_info(item.path)
        if item.groups is None:
            raws = read_csv(lake, info, spec, args, skipped)
        else:
            raws = read_parquet(lake, info, spec, args, list(item.groups), item.first_row)
        writer = None
        if context["tmp"]:  # one part per item, whatever its size: its number is the item's
            writer = TransformedWriter(lake, spec, sys.maxsize, tmp=context["tmp"], first_part=item.index)
        for batch in transform_stream(raws, spec, args, stats, out["rejects"]):
            if writer:
                writer.write(batch)
            out["rows"] += batch.num_rows
            if batch.num_rows:
                yield batch
        if writer:
            writer.close_part()
            out["parts"].extend(writer.parts)


# ---------------------------------------------------------------------------------------------- on the driver


class SparkTableLoad(TableLoad):
    """`TableLoad` whose streaming step runs on the executors; everything before and after is the driver's."""

    def __init__(self, *args, session, **kwargs):
        super().__init__(*args, **kwargs)
        self.session = session

    def stream(self) -> None:
        if self.aurora:
            prepare_staging(self.control, self.spec)
        items = work_items(self.lake, self.spec, self.args, self.stats)
        results = self._run(items)
        errors = [r["error"] for r in sorted(results, key=lambda r: r["partition"]) if "error" in r]
        if errors:
            raise JobError(errors[0])
        results.sort(key=lambda r: r["partition"])
        self.stats.rows_read += sum(r["rows_read"] for r in results)
        self.stats.rows_rejected += sum(r["rows_rejected"] for r in results)
        self.rejects.extend(reject for r in results for reject in r["rejects"])
        check_expected_rows(self.spec, self.stats)
        if self.writer:
            self.writer.parts = [p for r in results for p in r["parts"]]
            self.writer.rows = sum(r["rows"] for r in results)
            self.writer.write_rejects(self.rejects)
        # load_aurora reads only the copier's rows and bytes
        self.copier = _Copied(sum(r["rows_copied"] for r in results), sum(r["bytes"] for r in results))  # type: ignore[assignment]
        self.stats.stream_seconds = self.stats.seconds()
        LOG.info(
            "%s: %d rows read, transformed and copied by %d Spark partition(s) in %.2fs",
            self.spec.target,
            self.stats.rows_read,
            len(results),
            self.stats.stream_seconds,
        )

    def _run(self, items: list[WorkItem]) -> list[dict]:
        if not items:
            LOG.warning(
                "%s: no LOAD files (DMS writes none for an empty table): loading an empty table", self.spec.source_name
            )
            return []
        sc = self.session.sparkContext
        partitions = min(len(items), max(1, sc.defaultParallelism))
        self.args = self.args.with_(copy_streams=partitions)  # what Aurora saw: one COPY stream per partition
        context = {"args": self.args, "spec": self.spec.raw, "tmp": self.writer.tmp if self.writer else None}
        LOG.info("%s: %d work item(s) over %d Spark partition(s)", self.spec.target, len(items), partitions)
        try:
            return (
                sc.parallelize(items, partitions)
                .mapPartitionsWithIndex(functools.partial(run_partition, context))
                .collect()
            )
        except Exception as err:  # noqa: BLE001 - a task Spark gave up on (a lost executor, a crash)
            raise JobError(f"{self.spec.target}: a Spark task failed: {_spark_error(err)}") from None


@dataclass
class _Copied:
    """What `TableLoad.load_aurora` reads of the COPY streams, summed over the partitions."""

    rows: int
    bytes: int


def _spark_error(err: Exception) -> str:
    """The Python exception a task ended with (its type and first line, no values), else Spark's first line."""
    found = re.findall(r"^(\w*(?:Error|Exception)): (.*)$", str(err), flags=re.MULTILINE)
    if found:
        kind, message = found[-1]
        return f"{kind}: {no_values(message)}"
    return no_values(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)


def spark_session():
    """The Spark session: Glue's (spark-submit's) when there is one, else a local one (`CONSORCIO_SPARK_MASTER`,
    default local[2]) whose Python workers run this interpreter."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("consorcio_glue")
    if GATEWAY_ENV not in os.environ:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.master(os.environ.get(MASTER_ENV) or LOCAL_MASTER).config("spark.ui.enabled", "false")
    return builder.getOrCreate()


def load_table(args: JobArgs, pipes) -> dict:
    """One table on Spark; an `aurora`-only run (from the transformed zone) streams in process as before."""
    if "transformed" not in args.stages:
        return load.load_table(args, pipes)
    from pyspark.sql import SparkSession

    ours = SparkSession.getActiveSession() is None and GATEWAY_ENV not in os.environ  # a local session we start
    started = time.perf_counter()
    session = spark_session()
    LOG.info("Spark session up in %.1fs (master %s)", time.perf_counter() - started, session.sparkContext.master)
    try:
        return load.load_table(args, pipes, functools.partial(SparkTableLoad, session=session))
    finally:
        if ours:
            session.stop()
