"""Runs whose process died: detected, reported failed, and unable to go on changing the target.

A SIGKILL, a closed terminal or a crash leaves a run STARTED in Dagster's storage forever, and four of them fill
the run queue (`max_concurrent_runs: 4`). Every run records the host it runs on (tag `consorcio/host`) and every
Dagster event its process id, so a run whose process is gone from this host is known dead:
- `consorcio run` fails such runs when it starts (`mark_dead_runs`);
- the daemon's run monitoring does the same for UI and sensor runs (`LocalRunLauncher.check_run_worker_health`).
What a dead run had started stops with it: the CLI exports its own identity (CONSORCIO_RUN_OWNER) to the run and
all its step processes, whose watchdog kills the process when the owner is gone; Glue subprocesses die with the
process that started them (PR_SET_PDEATHSIG), and the job checks the owner once more before its swap.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import threading
import time
from pathlib import Path

HOST_TAG = "consorcio/host"
OWNER_ENV = "CONSORCIO_RUN_OWNER"  # "<pid>:<start ticks>" of the process that owns the run
WATCH_SECONDS = 0.2
_PR_SET_PDEATHSIG = 1


def hostname() -> str:
    return socket.gethostname()


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # after the command name, which may hold spaces


def start_ticks(pid: int) -> str | None:
    """When the process started (clock ticks since boot): with the pid, it names one process, not a reused pid."""
    fields = _stat_fields(pid)
    return fields[19] if fields else None  # field 22 of /proc/<pid>/stat


def started_at(pid: int) -> float | None:
    """The process's start as a Unix time (None when there is no such process)."""
    ticks = start_ticks(pid)
    if ticks is None:
        return None
    boot = next(
        float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime ")
    )
    return boot + int(ticks) / os.sysconf("SC_CLK_TCK")


def alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"  # a zombie has finished


def identity(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{start_ticks(pid)}"


#: the command a warm server's child runs for (`tooling/warm.py`): that command, not the child, owns its runs
COMMAND_OWNER: str | None = None


def command_identity() -> str:
    """The identity of the `consorcio` command this process runs: its own, or its warm server client's."""
    return COMMAND_OWNER or identity()


def owner_alive(owner: str) -> bool:
    pid, _, ticks = owner.partition(":")
    return alive(int(pid)) and start_ticks(int(pid)) == ticks


# -- the run's process ------------------------------------------------------------------------------------------


def run_process(instance, run) -> int | None:
    """The pid of the process that started executing `run` (its RUN_START event's)."""
    import dagster as dg

    records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_START, limit=1).records
    event = records[0].event_log_entry.dagster_event if records else None
    return event.pid if event is not None else None


def dead_because(instance, record) -> str | None:
    """Why the run of `record` (STARTED or CANCELING) cannot be running any more, or None when it may be: its
    process is gone from this host, or the pid now belongs to a process that started after the run."""
    run = record.dagster_run
    if run.tags.get(HOST_TAG) != hostname():
        return None  # another host's run (or one from before the tag): not ours to judge
    pid = run_process(instance, run)
    if pid is None:
        return None
    began = started_at(pid)
    if began is not None and alive(pid) and (record.start_time is None or began <= record.start_time + 1):
        return None
    return f"its process {pid} on {hostname()} is gone (killed or crashed)"


def mark_dead_runs(instance) -> list[str]:
    """Report every run left STARTED/CANCELING by a dead process as FAILED/CANCELED; one line per run."""
    import dagster as dg

    lines = []
    statuses = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=statuses)):
        why = dead_because(instance, record)
        if why is None:
            continue
        run = record.dagster_run
        if run.status == dg.DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, message=f"Run canceled: {why}")
            verdict = "CANCELED"
        else:
            instance.report_run_failed(run, message=f"Run failed: {why}")
            verdict = "FAILED"
        lines.append(f"run {run.run_id[:8]} ({run.job_name}) was left {run.status.value}: {why}; marked {verdict}")
    return lines


# -- nothing outlives the run's owner ---------------------------------------------------------------------------


_prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here: the forked child only calls it


def die_with_parent() -> None:
    """For `preexec_fn`: the child gets SIGKILL when the thread that started it ends (its process killed)."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


_watchdog: threading.Thread | None = None


def start_owner_watchdog(environ=os.environ) -> None:
    """In every process of a CLI-owned run: SIGKILL this process once the owner is gone (its Glue subprocesses,
    started with `die_with_parent`, go with it), so an orphaned step cannot go on loading the target."""
    global _watchdog
    owner = environ.get(OWNER_ENV)
    if not owner or _watchdog is not None or str(os.getpid()) == owner.partition(":")[0]:
        return

    def watch() -> None:
        while owner_alive(owner):
            time.sleep(WATCH_SECONDS)
        os.kill(os.getpid(), signal.SIGKILL)

    _watchdog = threading.Thread(target=watch, daemon=True, name="consorcio-owner-watchdog")
    _watchdog.start()


# -- `consorcio run`: a run owned by this process (see `launch.run_and_follow`) ----------------------------------

CANCEL_GRACE_SECONDS = 60.0  # how long a canceled run may take to stop its steps and Glue runs
