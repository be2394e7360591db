"""The warm server runs a command as the command itself would (same output, exit status, terminal, signals, run
owner), refuses a command whose files or settings differ (it runs cold, a fresh server follows), and ends on
`consorcio stop`. Real processes: the server, the `consorcio` command, their Unix socket."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from consorcio_assets.tooling import warm

CLI = [sys.executable, "-m", "consorcio_assets.tooling.cli"]
START_SECONDS = 120  # the warm-up imports and builds the definitions: seconds on a busy 2-core machine


def command_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != warm.SWITCH_ENV}  # the tests' default is cold
    return {**env, **(extra or {})}


def wait_for(predicate, what: str, seconds: float = START_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def log_text(home: Path) -> str:
    log = home / "logs" / "warm.log"
    return log.read_text() if log.exists() else ""


def start(home: Path, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    (home / "logs").mkdir(parents=True, exist_ok=True)
    with open(home / "logs" / "warm.log", "ab") as log:
        server = subprocess.Popen(argv, env=env, stdout=log, stderr=log, start_new_session=True)
    wait_for(lambda: warm.socket_path(home).exists() or server.poll() is not None, "the server's socket")
    assert server.poll() is None, log_text(home)
    return server


@pytest.fixture
def server(local_env):
    """The home's warm server, as `consorcio` starts it; stopped (and reaped) afterwards."""
    process = start(local_env, [sys.executable, "-m", "consorcio_assets.tooling.warm", "serve"], command_env())
    yield process
    warm.stop_server(local_env)
    process.wait(30)


def consorcio(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], env=env or command_env(), cwd=cwd, capture_output=True, text=True, timeout=300)


def without_switch(text: str) -> list[str]:
    return [line for line in text.splitlines() if warm.SWITCH_ENV not in line]


def test_a_command_runs_in_the_server_as_it_runs_cold(server, local_env):
    cold = consorcio("settings", env={**command_env(), warm.SWITCH_ENV: "0"})
    served = consorcio("settings")
    assert served.returncode == cold.returncode == 0
    assert without_switch(served.stdout) == without_switch(cold.stdout) and "CONSORCIO_HOME" in served.stdout
    assert "`settings` of pid" in log_text(local_env)  # it ran in a child of the server, not cold
    refused = consorcio("run", "--simulacoes", "many")  # a usage error: its message and exit status come back
    assert refused.returncode == 2 and "many" in refused.stderr
    assert log_text(local_env).count(" runs in pid ") == 2


def test_a_command_with_other_settings_runs_cold_and_a_fresh_server_follows(server, local_env):
    other = command_env({"CONSORCIO_GLUE_COPY_STREAMS": "3"})
    served = consorcio("settings", env=other)
    assert served.returncode == 0 and "CONSORCIO_GLUE_COPY_STREAMS" in served.stdout
    assert "stale" in log_text(local_env)
    assert "started this home's warm server" in served.stderr  # what it left running is said
    server.wait(30)  # the stale server left; the command started a fresh one with its own settings
    wait_for(lambda: log_text(local_env).count("serving ") == 2, "the fresh server")
    assert consorcio("settings", env=other).returncode == 0
    assert " runs in pid " in log_text(local_env).split("serving ")[-1]


def test_consorcio_stop_ends_the_server(server, local_env):
    stopped = consorcio("stop")
    assert stopped.returncode == 0 and "warm server" in stopped.stdout
    server.wait(30)
    assert not warm.socket_path(local_env).exists()


def test_consorcio_stop_ends_a_server_still_warming_up(local_env):
    """`make run` then `consorcio stop` at once: the server the first command started has no socket yet."""
    warm.start_server(local_env, command_env())
    pid = int(warm.pid_path(local_env).read_text().split()[0])
    assert warm.stop_server(local_env) == f"warm server of {local_env} stopped while warming up"
    deadline = time.monotonic() + 30
    while os.waitpid(pid, os.WNOHANG) == (0, 0):  # the test started it: reap it here
        assert time.monotonic() < deadline, "the warming server did not end"
        time.sleep(0.05)
    assert not warm.socket_path(local_env).exists()
    assert warm.stop_server(local_env) is None  # nothing left to stop, and the pid is not signalled again
    warm.pid_path(local_env).write_text(f"{os.getpid()} 1")  # a pid file whose process is gone, the pid reused
    assert warm.stop_server(local_env) is None  # (by this test: it would not survive a SIGTERM)


ENTRY = textwrap.dedent("""
    import sys, time
    from consorcio_assets.orchestration import runs
    from consorcio_assets.tooling import warm

    def entry(argv):
        print(runs.command_identity(), flush=True)
        time.sleep(120)  # until the command's Ctrl-C reaches this child as KeyboardInterrupt
        return 0

    sys.exit(warm.serve(entry))
""")


def test_ctrl_c_reaches_the_child_and_the_command_owns_its_runs(local_env):
    from consorcio_assets.orchestration.runs import identity

    server = start(local_env, [sys.executable, "-c", ENTRY], command_env())
    try:
        command = subprocess.Popen([*CLI, "summary"], env=command_env(), stdout=subprocess.PIPE, text=True)
        owner = command.stdout.readline().strip()  # written by the child straight to the command's stdout
        assert owner == identity(command.pid)  # runs it starts end with the command, not with the child
        command.send_signal(signal.SIGINT)
        assert command.wait(30) == 130
    finally:
        warm.stop_server(local_env)
        server.wait(30)
