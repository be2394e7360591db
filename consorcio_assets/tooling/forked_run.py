"""A run's process forked from the command that created the run (`launch.run_and_follow`)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

from consorcio_assets.common.quick_exit import flush_std_streams


class ForkedRun:
    """The process executing a run, forked from this one rather than started afresh: a fresh interpreter imports
    Dagster and builds the definitions again (about 3 s of CPU, most of a small run's wall time), a fork already
    has them (`create_run` built them). The child takes what `subprocess.Popen` gave the `-m` form: its own
    session, death with this process (PR_SET_PDEATHSIG, and the owner watchdog), the environment `env`, its output
    to `sink`. It opens its own instance and exits with `os._exit`, so it never touches (or closes) this process's
    connections. Only forked from a single-threaded process: a lock held by another thread would stay held in
    the child. `poll`, `wait`, `send_signal` and `kill` as `subprocess.Popen`'s."""

    def __init__(self, run_id: str, env: Mapping[str, str], sink):
        flush_std_streams()
        self.returncode: int | None = None
        self.pid = os.fork()
        if self.pid == 0:
            self._child(run_id, env, sink)

    @staticmethod
    def _child(run_id: str, env: Mapping[str, str], sink) -> None:
        code = 1
        try:
            from consorcio_assets.orchestration.runs import die_with_parent, start_owner_watchdog
            from consorcio_assets.tooling.launch import execute

            os.setsid()
            die_with_parent()
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            os.environ.clear()
            os.environ.update(env)
            start_owner_watchdog()
            with dg.DagsterInstance.get() as instance:
                code = 0 if execute(instance, run_id) else 1
        except BaseException:  # noqa: BLE001 - reported in the run's log, then the exit code says it
            import traceback

            traceback.print_exc()
        finally:
            flush_std_streams()
            os._exit(code)

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        import subprocess
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"run process {self.pid}", timeout or 0.0)
            time.sleep(0.05)
        return code

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        import signal

        self.send_signal(signal.SIGKILL)
