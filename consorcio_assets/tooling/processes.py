"""Long-lived processes a user starts and stops: the embedded PostgreSQL and the Dagster UI.

The embedded server stays up between commands (every command and the UI share it over its Unix socket) until
`consorcio stop`. The UI is `dagster dev` (webserver and daemon) in a process group of its own, so that when
it ends — Ctrl-C, a signal, or its webserver failing — no daemon is left running beside another UI.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

STOP_SECONDS = 30


def postmaster_status(pgdata: Path) -> str:
    """The server's status line in postmaster.pid (`starting`, `ready`, ...; PostgreSQL pads it), '' before it is
    written."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        return ""
    return lines[7].strip() if len(lines) > 7 else ""


def postmaster_pid(pgdata: Path) -> int | None:
    """The pid of the server running on `pgdata`, from its postmaster.pid, when that process is alive."""
    import psutil

    pid_file = pgdata / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        process = psutil.Process(pid)
        return pid if process.is_running() and process.status() != psutil.STATUS_ZOMBIE else None
    except psutil.Error:
        return None


def stop_embedded_postgres(pgdata: Path) -> str:
    """Fast shutdown (SIGINT: sessions rolled back, a clean checkpoint) of the server on `pgdata`; what was done."""
    import psutil

    pid = postmaster_pid(pgdata)
    if pid is None:
        return f"the embedded PostgreSQL ({pgdata}) is not running"
    process = psutil.Process(pid)
    process.send_signal(signal.SIGINT)
    try:
        process.wait(STOP_SECONDS)
    except psutil.TimeoutExpired:
        process.kill()
        return f"the embedded PostgreSQL ({pgdata}, pid {pid}) did not stop within {STOP_SECONDS}s: killed"
    return f"stopped the embedded PostgreSQL ({pgdata}, pid {pid})"


def port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as err:
            if err.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def serve_ui(host: str, port: int, env: dict[str, str]) -> int:
    """`dagster dev` on host:port after checking the port is free; its whole process group ends with it."""
    from consorcio_assets.tooling.launch import WORKSPACE

    if port_taken(host, port):
        print(
            f"consorcio ui: error: port {port} on {host} is taken (another UI?): stop it, or pick another "
            f"port: make ui PORT={port + 1}",
            file=sys.stderr,
        )
        return 1
    print(f"Dagster UI on http://{host}:{port} (Ctrl-C stops it)", file=sys.stderr)
    child = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-w", str(WORKSPACE), "-h", host, "-p", str(port)],
        env=env,
        start_new_session=True,
    )

    def stop(signum=None, frame=None):
        _kill_group(child)

    previous = signal.signal(signal.SIGTERM, lambda *a: (stop(), sys.exit(143)))
    try:
        return child.wait()
    except KeyboardInterrupt:
        return 130
    finally:
        stop()
        signal.signal(signal.SIGTERM, previous)


def _kill_group(child: subprocess.Popen) -> None:
    """SIGTERM to the UI's process group (dagster dev stops its webserver and daemon), SIGKILL what remains."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        # the leader is gone; its group may still hold the webserver or daemon
        try:
            os.killpg(child.pid, 0)
        except ProcessLookupError:
            return
