"""The job's entry point: parse the arguments, open Pipes, run the action, print the figures as one JSON line.
Errors go to stderr as one `ERROR: ...` line (naming table, file, column and key, never a value) and a non-zero
exit; AWS Glue reads the same from the run's logs."""

from __future__ import annotations

import json
import logging
import signal
import sys
import traceback

from consorcio_glue.args import JobArgs, parse_args
from consorcio_glue.errors import JobError, no_values
from consorcio_glue.pipes import open_pipes


def run(args: JobArgs, pipes) -> dict:
    """The action, on Spark when there is a Spark runtime (or `--spark on`), else in this process."""
    from consorcio_glue import load, publish, spark

    if args.action == "validate":
        return load.validate_batch(args, pipes)
    if args.action == "publish":
        return publish.publish_batch(args, pipes)
    if spark.wanted(args):
        return spark.load_table(args, pipes)
    return load.load_table(args, pipes)


def _stop(signum, _frame) -> None:
    signal.signal(signum, signal.SIG_IGN)  # once: a repeated stop must not interrupt the clean-up
    raise JobError(f"stopped ({signal.Signals(signum).name}): the run was asked to stop")


def stop_cleanly_on_sigterm() -> None:
    """A stopped run (Glue's BatchStopJobRun, or the orchestrator stopping a load whose parent failed) unwinds
    like a failed one: its staging table and temporary transformed parts are removed, not left behind."""
    signal.signal(signal.SIGTERM, _stop)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        with open_pipes() as pipes:
            result = run(args, pipes)
    except JobError as err:
        print(f"ERROR: {err}", file=sys.stderr, flush=True)
        return 1
    except Exception as err:  # noqa: BLE001 - reported, then a non-zero exit
        traceback.print_exc()
        print(f"ERROR: {type(err).__name__}: {no_values(str(err))}", file=sys.stderr, flush=True)
        return 1
    print(json.dumps(result), flush=True)
    return 0
