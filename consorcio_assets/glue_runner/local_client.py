"""A local stand-in for boto3's Glue client: the same job-run API, served by running the Glue job as a
subprocess (`python -m consorcio_glue`, or a given script) with the very arguments Glue would pass, so one
Pipes protocol drives local and AWS runs alike (`local_pipes.LocalPipesGlueClient`, dagster_aws's `PipesGlueClient`).

A job dies with the process that started it (PR_SET_PDEATHSIG): a killed run leaves no job to swap tables.
Runs beyond `max_concurrent_runs` wait in state WAITING, as Glue queues runs over a job's maximum
concurrency. `get_job_run` waits up to `poll_wait` seconds for a run to finish before answering, so a Pipes
client polling it neither spins nor adds a fixed poll interval to every local run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from consorcio_assets.orchestration.runs import die_with_parent

JOB_MODULE = "consorcio_glue"
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR")


@dataclass
class LocalJobRun:
    id: str
    job_name: str
    arguments: dict[str, str]
    state: str = "WAITING"
    started_on: datetime | None = None
    completed_on: datetime | None = None
    error_message: str | None = None
    process: subprocess.Popen | None = None
    stop_requested: bool = False
    log_dir: Path | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def describe(self) -> dict:
        run = {
            "Id": self.id,
            "JobName": self.job_name,
            "JobRunState": self.state,
            "Arguments": dict(self.arguments),
            "Attempt": 0,
            "GlueVersion": "5.0",
        }
        if self.started_on:
            run["StartedOn"] = self.started_on
            end = self.completed_on or datetime.now(UTC)
            run["ExecutionTime"] = int((end - self.started_on).total_seconds())
        if self.completed_on:
            run["CompletedOn"] = self.completed_on
        if self.error_message:
            run["ErrorMessage"] = self.error_message
        return run


def argv_of(arguments: dict[str, str]) -> list[str]:
    """Glue job arguments as the script's command line (`--name value`)."""
    out: list[str] = []
    for key, value in arguments.items():
        out += [key if key.startswith("--") else f"--{key}", str(value)]
    return out


def _not_found(run_id: str, op: str) -> Exception:
    """The error boto3's Glue client raises for an unknown run (botocore imported only then: ~0.15 s)."""
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": "EntityNotFoundException", "Message": f"job run {run_id} not found"}}, op)


class LocalGlueClient:
    """`start_job_run`, `get_job_run` and `batch_stop_job_run` of boto3's Glue client, run locally."""

    def __init__(
        self,
        script: str | Path | None = None,
        *,
        module: str = JOB_MODULE,
        python: str | None = None,
        max_concurrent_runs: int = 4,
        env: dict[str, str] | None = None,
        log_dir: str | Path | None = None,
        poll_wait: float = 10.0,
        stop_grace: float = 10.0,
    ):
        self.python = python or sys.executable
        self.script = Path(script) if script else None
        if self.script and not self.script.is_file():
            raise FileNotFoundError(f"Glue job script {self.script} does not exist")
        #: the job as installed (no path outside the package), or a script given for tests and faults
        self.command = [self.python, str(self.script)] if self.script else [self.python, "-m", module]
        self.max_concurrent_runs = max(1, max_concurrent_runs)
        self.env = dict(env or {})
        self.log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="consorcio-glue-"))
        self.poll_wait = poll_wait
        self.stop_grace = stop_grace
        self.meta = SimpleNamespace(region_name="local")
        self._runs: dict[str, LocalJobRun] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the boto3 API

    def start_job_run(self, *, JobName: str, Arguments: dict[str, str] | None = None, **_settings) -> dict:  # noqa: N803
        run = LocalJobRun(id=f"jr_{uuid.uuid4().hex}", job_name=JobName, arguments=dict(Arguments or {}))
        with self._lock:
            self._runs[run.id] = run
        self._schedule()
        return {"JobRunId": run.id}

    def get_job_run(self, *, JobName: str, RunId: str, **_options) -> dict:  # noqa: N803
        run = self._run(RunId, "GetJobRun")
        if run.state not in TERMINAL:
            run.done.wait(self.poll_wait)
        return {"JobRun": run.describe()}

    def batch_stop_job_run(self, *, JobName: str, JobRunIds: list[str]) -> dict:  # noqa: N803
        ok, errors = [], []
        for run_id in JobRunIds:
            with self._lock:
                run = self._runs.get(run_id)
            if run is None or run.state in TERMINAL:
                errors.append(
                    {
                        "JobName": JobName,
                        "JobRunId": run_id,
                        "ErrorDetail": {"ErrorCode": "InvalidInputException", "ErrorMessage": "not running"},
                    }
                )
                continue
            self._stop(run)
            ok.append({"JobName": JobName, "JobRunId": run_id})
        return {"SuccessfulSubmissions": ok, "Errors": errors}

    # ------------------------------------------------------------------ running

    def _run(self, run_id: str, op: str) -> LocalJobRun:
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            raise _not_found(run_id, op)
        return run

    def _schedule(self) -> None:
        with self._lock:
            running = sum(1 for r in self._runs.values() if r.state == "RUNNING")
            waiting = [r for r in self._runs.values() if r.state == "WAITING"]
            to_start = waiting[: max(0, self.max_concurrent_runs - running)]
            for run in to_start:
                run.state = "RUNNING"
                run.started_on = datetime.now(UTC)
        for run in to_start:
            threading.Thread(target=self._execute, args=(run,), daemon=True, name=f"glue-{run.id[:12]}").start()

    def _execute(self, run: LocalJobRun) -> None:
        run.log_dir = self.log_dir / run.job_name / run.id
        run.log_dir.mkdir(parents=True, exist_ok=True)
        argv = [*self.command, "--JOB_NAME", run.job_name, "--JOB_RUN_ID", run.id, *argv_of(run.arguments)]
        code = None
        try:
            with open(run.log_dir / "stdout", "wb") as out, open(run.log_dir / "stderr", "wb") as err:
                run.process = subprocess.Popen(
                    argv,
                    stdout=out,
                    stderr=err,
                    env={**os.environ, **self.env},
                    start_new_session=True,
                    preexec_fn=die_with_parent,
                )
                if run.stop_requested:
                    self._stop(run)
                code = run.process.wait()
        except OSError as exc:
            run.error_message = f"cannot start the job script: {exc}"
        self._finish(run, code)

    def _finish(self, run: LocalJobRun, code: int | None) -> None:
        with self._lock:
            if run.stop_requested:
                run.state = "STOPPED"
            elif code == 0:
                run.state = "SUCCEEDED"
            else:
                run.state = "FAILED"
                run.error_message = run.error_message or self._error_from_logs(run, code)
            run.completed_on = datetime.now(UTC)
        run.done.set()
        self._schedule()

    @staticmethod
    def _error_from_logs(run: LocalJobRun, code: int | None) -> str:
        """The job's own `ERROR: ...` line, else how it ended and the tail of its stderr (as Glue's ErrorMessage)."""
        text = (run.log_dir / "stderr").read_text(errors="replace") if run.log_dir else ""
        errors = [line[len("ERROR: ") :] for line in text.splitlines() if line.startswith("ERROR: ")]
        if errors:
            return errors[-1]
        ended = f"exit code {code}"
        if code is not None and code < 0:
            ended = f"killed by {signal.Signals(-code).name} ({ended})"
        tail = text.strip().splitlines()[-5:]
        return f"{ended}: " + " | ".join(tail) if tail else ended

    def _stop(self, run: LocalJobRun) -> None:
        with self._lock:
            run.stop_requested = True
            process = run.process
            if run.state == "WAITING":
                run.state = "STOPPED"
                run.completed_on = datetime.now(UTC)
                run.done.set()
                return
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)

        def escalate() -> None:
            try:
                process.wait(self.stop_grace)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

        threading.Thread(target=escalate, daemon=True).start()

    def log_path(self, run_id: str, stream: str = "stderr") -> Path | None:
        run = self._run(run_id, "GetJobRun")
        return run.log_dir / stream if run.log_dir else None
