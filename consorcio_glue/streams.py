"""Worker threads around a bounded queue: the binary COPY streams into the staging table, and the transformed
zone's Parquet encoding overlapping them."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable

import psycopg
import pyarrow as pa
from psycopg import sql

from consorcio_glue.aurora import connect, keys_sql, pg_error
from consorcio_glue.copy_binary import COPY_HEADER, COPY_TRAILER, copy_rows
from consorcio_glue.errors import JobError
from consorcio_glue.spec import Spec
from consorcio_glue.transformed import TransformedWriter


class Workers:
    """Threads consuming a bounded queue (memory stays flat); a worker's error reaches the producer at its
    next `put` or at `close`, and `abort` makes the workers stop without committing anything."""

    def __init__(self, n: int, name: str):
        self.queue: queue.Queue = queue.Queue(maxsize=2 * n)
        self.errors: list[BaseException] = []
        self.aborted = False
        self.threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True, name=f"{name}-{i}") for i in range(n)
        ]
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
        rows = copy_stream(self.dsn, self.spec, f"{index}", batches, self._sent)
        with self._lock:
            self.rows += rows

    def _sent(self, nbytes: int) -> None:
        with self._lock:
            self.bytes += nbytes


def copy_stream(
    dsn: str,
    spec: Spec,
    stream: str,
    batches: Iterable[pa.RecordBatch],
    sent: Callable[[int], None] = lambda nbytes: None,
) -> int:
    """`batches` into the staging table as one binary COPY over its own connection, committed once all are in;
    returns the rows copied. A refused value fails naming the table, the stream and the column, never the value."""
    columns = spec.copy_columns()  # generated columns are PostgreSQL's to compute
    statement = sql.SQL("COPY {}.{} ({}) FROM STDIN (FORMAT binary)").format(
        sql.Identifier(spec.staging_schema), sql.Identifier(spec.target), keys_sql(columns)
    )
    select = len(columns) != len(spec.target_columns())
    try:
        with connect(dsn, f"{spec.target}#{stream}", autocommit=False) as conn:
            with conn.cursor() as cur:
                with cur.copy(statement) as copy:
                    copy.write(COPY_HEADER)
                    for batch in batches:
                        data = copy_rows(batch.select(columns) if select else batch)
                        copy.write(data)
                        sent(data.nbytes)
                    copy.write(COPY_TRAILER)
                rows = cur.rowcount
            conn.commit()
    except psycopg.Error as err:
        state = f" [SQLSTATE {err.sqlstate}]" if err.sqlstate else ""
        raise JobError(
            f"{spec.target}: COPY stream {stream} into the staging table failed: {pg_error(err)}{state}"
        ) from None
    return rows


class BackgroundWriter(Workers):
    """The transformed zone's Parquet encoding on its own thread, overlapping the COPY."""

    def __init__(self, writer: TransformedWriter):
        self.writer = writer
        super().__init__(1, f"parquet-{writer.spec.target}")

    def work(self, index: int, batches) -> None:
        for batch in batches:
            self.writer.write(batch)
