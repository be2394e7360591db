"""Run a command and record the peak RSS of every process in its tree, and the CPU time it and a server spent.

A thread polls the tree with psutil (which sees grandchildren such as Dagster's step processes and the Glue
subprocesses); `os.wait4` adds the kernel's own high-water mark of the direct child, which catches a peak
that fell between two polls. CPU time: the child's and every descendant it reaped (`wait4`), plus what a
server outside the tree (the embedded PostgreSQL) spent meanwhile, so "the run is CPU-bound" is a figure.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

POLL_SECONDS = 0.05
MB = 1024 * 1024


@dataclass
class ProcessPeak:
    pid: int
    label: str
    peak_rss_mb: float


@dataclass
class Measured:
    returncode: int
    wall_seconds: float
    stdout: str
    stderr: str
    processes: list[ProcessPeak] = field(default_factory=list)
    #: the kernel's high-water mark over the child and every descendant it reaped (one process's peak)
    kernel_max_rss_mb: float = 0.0
    #: user + system seconds of the child and every descendant it reaped
    cpu_seconds: float = 0.0
    #: user + system seconds the server given to `run_measured` spent during the run (0 without one)
    server_cpu_seconds: float = 0.0

    @property
    def peak_rss_mb(self) -> float:
        return max([self.kernel_max_rss_mb, *(p.peak_rss_mb for p in self.processes)])


def label_of(proc: psutil.Process) -> str:
    """A short, PII-free name for a process: its program and the module or script it runs."""
    try:
        argv = proc.cmdline()
    except (psutil.Error, OSError):
        return "?"
    if not argv:
        return proc.name() if proc.is_running() else "?"
    words = [os.path.basename(argv[0])]
    for i, arg in enumerate(argv[1:], start=1):
        if arg == "-m" and i + 1 < len(argv):
            words.append(argv[i + 1])
            words.extend(a for a in argv[i + 2 : i + 5] if not a.startswith("-"))
            break
        if arg.endswith(".py") or arg.startswith("from multiprocessing"):
            words.append(os.path.basename(arg) if arg.endswith(".py") else "multiprocessing")
            break
    return " ".join(words)


class TreeMonitor(threading.Thread):
    """Polls a process and its descendants; keeps each pid's highest RSS."""

    def __init__(self, root_pid: int):
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.peaks: dict[int, ProcessPeak] = {}
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def _sample(self, root: psutil.Process) -> None:
        for proc in [root, *root.children(recursive=True)]:
            try:
                rss = proc.memory_info().rss / MB
            except (psutil.Error, OSError):
                continue
            peak = self.peaks.get(proc.pid)
            if peak is None:
                peak = self.peaks[proc.pid] = ProcessPeak(proc.pid, label_of(proc), 0.0)
            peak.peak_rss_mb = max(peak.peak_rss_mb, rss)

    def run(self) -> None:
        try:
            root = psutil.Process(self.root_pid)
        except psutil.Error:
            return
        while not self._halt.is_set():
            try:
                self._sample(root)
            except psutil.Error:
                return
            self._halt.wait(POLL_SECONDS)


def server_cpu_seconds(data_dir: str | os.PathLike | None) -> float:
    """User + system seconds of the PostgreSQL server on `data_dir` so far: every live process of it plus what
    its postmaster collected from the backends and workers that ended (0 when none runs there)."""
    from consorcio_assets.tooling.processes import postmaster_pid

    pid = postmaster_pid(Path(data_dir)) if data_dir is not None else None
    if pid is None:
        return 0.0
    try:
        postmaster = psutil.Process(pid)
        processes = [postmaster, *postmaster.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for p in processes:
        try:
            t = p.cpu_times()
        except (psutil.Error, OSError):
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def run_measured(argv: list[str], env: dict[str, str] | None = None, server: os.PathLike | None = None) -> Measured:
    """Run `argv` to completion; wall time, per-process peak RSS of its whole tree and CPU time (the tree's, and
    the PostgreSQL server's on data directory `server`)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        server_before = server_cpu_seconds(server)
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err, text=True)
        monitor = TreeMonitor(proc.pid)
        monitor.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            monitor.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        server_used = server_cpu_seconds(server) - server_before
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    processes = sorted(monitor.peaks.values(), key=lambda p: p.pid)
    return Measured(
        proc.returncode,
        wall,
        stdout,
        stderr,
        processes,
        usage.ru_maxrss * 1024 / MB,
        usage.ru_utime + usage.ru_stime,
        max(server_used, 0.0),
    )
