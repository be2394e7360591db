"""The local Glue client: boto3's job-run API over a real subprocess, with Glue's run states and queueing."""

from __future__ import annotations

import sys
import time

import pytest
from botocore.exceptions import ClientError

from consorcio_assets.glue_runner.local_client import LocalGlueClient

SCRIPT = """
import argparse, sys, time
p = argparse.ArgumentParser()
p.add_argument("--sleep", type=float, default=0)
p.add_argument("--fail", default="")
args, _ = p.parse_known_args()
time.sleep(args.sleep)
if args.fail:
    print("a traceback line", file=sys.stderr)
    print(f"ERROR: {args.fail}", file=sys.stderr)
    sys.exit(1)
print(" ".join(sys.argv[1:]))
"""


@pytest.fixture
def client(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    return LocalGlueClient(script, max_concurrent_runs=1, log_dir=tmp_path / "logs", poll_wait=0.2, stop_grace=2)


def _state(client, run_id):
    return client.get_job_run(JobName="j", RunId=run_id)["JobRun"]


def _wait(client, run_id, timeout=20):
    deadline = time.monotonic() + timeout
    while (run := _state(client, run_id))["JobRunState"] not in ("SUCCEEDED", "FAILED", "STOPPED"):
        assert time.monotonic() < deadline
    return run


def test_runs_the_script_with_glue_style_arguments(client):
    run_id = client.start_job_run(JobName="j", Arguments={"--table": "segmento", "--stages": "aurora"})["JobRunId"]
    run = _wait(client, run_id)
    assert run["JobRunState"] == "SUCCEEDED" and run["Arguments"] == {"--table": "segmento", "--stages": "aurora"}
    out = client.log_path(run_id, "stdout").read_text()
    assert "--JOB_NAME j --JOB_RUN_ID " in out and "--table segmento --stages aurora" in out


def test_failure_carries_the_jobs_error_line(client):
    run = _wait(client, client.start_job_run(JobName="j", Arguments={"--fail": "segmento: bad row"})["JobRunId"])
    assert run["JobRunState"] == "FAILED" and run["ErrorMessage"] == "segmento: bad row"


def test_concurrency_is_bounded_and_runs_can_be_stopped(client):
    first = client.start_job_run(JobName="j", Arguments={"--sleep": "30"})["JobRunId"]
    queued = client.start_job_run(JobName="j", Arguments={})["JobRunId"]
    assert _state(client, first)["JobRunState"] == "RUNNING"
    assert _state(client, queued)["JobRunState"] == "WAITING"  # like Glue over MaxConcurrentRuns
    stopped = client.batch_stop_job_run(JobName="j", JobRunIds=[first, "jr_unknown"])
    assert [s["JobRunId"] for s in stopped["SuccessfulSubmissions"]] == [first]
    assert stopped["Errors"][0]["JobRunId"] == "jr_unknown"
    assert _wait(client, first)["JobRunState"] == "STOPPED"
    assert _wait(client, queued)["JobRunState"] == "SUCCEEDED"  # started once the slot was free


def test_unknown_run_is_glues_error(client):
    with pytest.raises(ClientError, match="EntityNotFoundException"):
        client.get_job_run(JobName="j", RunId="jr_nope")


def test_missing_script_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError):
        LocalGlueClient(tmp_path / "nope.py", python=sys.executable)
