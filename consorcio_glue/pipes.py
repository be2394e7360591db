"""Dagster Pipes: the asset materializations and the `no_rejected_rows` check the job reports, and its log
forwarded to Dagster. S3 context and messages on AWS, temporary files locally, chosen from the Pipes parameters."""

from __future__ import annotations

import contextlib
import logging

from consorcio_core.names import NO_REJECTED_ROWS, REJECTS_TABLE
from consorcio_glue.errors import LOG
from consorcio_glue.spec import Spec


def report_transformed(pipes, spec: Spec, out: dict) -> None:
    if pipes is None:
        return
    seconds = out["seconds"] or 0
    pipes.report_asset_materialization(
        asset_key=spec.asset_key("transformed"),
        metadata={
            "dagster/row_count": out["rows"],
            "rows_read": out["rows_read"],
            "rows_written": out["rows"],
            "rows_rejected": out["rows_rejected"],
            "files_read": out["files_read"],
            "bytes_read": out["bytes_read"],
            "files_written": out["files"],
            "bytes_written": out["bytes"],
            "uri": {"raw_value": out["uri"], "type": "text"},
            "duration_s": float(seconds),
            "rows_per_s": float(round(out["rows"] / seconds)) if seconds else 0.0,
        },
    )


def report_aurora(pipes, spec: Spec, out: dict, report_checks: bool) -> None:
    if pipes is None:
        return
    pipes.report_asset_materialization(
        asset_key=spec.asset_key("aurora"),
        metadata={
            "dagster/row_count": out["rows_written"],
            "rows_read": out["rows_read"],
            "rows_written": out["rows_written"],
            "rows_rejected": out["rows_rejected"],
            "bytes_copied": out["bytes_copied"],
            "copy_streams": out["copy_streams"],
            "duration_s": float(out["seconds"]),
            "rows_per_s": float(out["rows_per_s"] or 0),
            "stream_s": float(out["stream_seconds"]),
            "build_s": float(out["build_seconds"]),
            "swap_s": float(out["swap_seconds"]),
            "parents_wait_s": float(out.get("parents_wait_seconds", 0.0)),
            "dagster/table_name": f"{out['database']}.{spec.qualified}",
            "foreign_keys_not_valid": out["foreign_keys_not_valid"],
        },
    )
    if report_checks:
        pipes.report_asset_check(
            check_name=NO_REJECTED_ROWS,
            asset_key=spec.asset_key("aurora"),
            passed=out["rows_rejected"] == 0,
            severity="ERROR",
            metadata={
                "rejected_rows": out["rows_rejected"],
                "where": {"raw_value": f"{spec.schema}.{REJECTS_TABLE}", "type": "text"},
            },
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
    from dagster_pipes import (
        PipesCliArgsParamsLoader,
        PipesContextLoader,
        PipesDefaultContextLoader,
        PipesDefaultMessageWriter,
        PipesMessageWriter,
        PipesS3ContextLoader,
        PipesS3MessageWriter,
        open_dagster_pipes,
    )

    loader = PipesCliArgsParamsLoader()
    if not loader.is_dagster_pipes_process():
        yield None
        return
    context_loader: PipesContextLoader
    writer: PipesMessageWriter
    if "bucket" in loader.load_context_params():
        from consorcio_glue.aurora import aws_client

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
