"""A warm `consorcio`: one resident process per home that has imported Dagster and built the definitions, and
forks a child per command.

Why: a command started afresh spends about 2 s importing Dagster, DuckDB, SQLAlchemy and the project and
building the definitions before it does anything; that is most of a one-table reload and a third of a verify.
The first command of a home runs cold and then starts this process (`serve`); later commands hand it their
arguments, working directory, environment and terminal (stdin, stdout and stderr travel as file descriptors over
a Unix socket in the private home), and a forked child runs the very same `cli.main` on them. The child writes to
the command's own terminal; Ctrl-C (SIGINT), SIGTERM and SIGHUP given to the command are passed to it, and the
runs it starts are owned by the command (`runs.COMMAND_OWNER`): killing the command ends them as it does cold.

The server answers only a command whose fingerprint matches its own: the project's files (code, contract), the
interpreter and its site-packages, and the CONSORCIO_/DAGSTER_/AWS_/PG/PYTHON variables. Anything else (an edited
module, another setting) and it says "stale" and exits: that command runs cold and starts a fresh server. It also
exits after IDLE_SECONDS without a command, when its home goes, on `consorcio stop`, and when forking would be
unsafe (a thread besides the main one after the warm-up). CONSORCIO_WARM=0 makes every command cold.

    python -m consorcio_assets.tooling.warm serve     (started by the CLI, detached; its log: <home>/logs/warm.log)
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from consorcio_assets.common.quick_exit import flush_std_streams

SWITCH_ENV = "CONSORCIO_WARM"
#: commands that always start cold: `stop` ends the server, `ui` is long-lived anyway
COLD_COMMANDS = frozenset({"stop", "ui", "-h", "--help"})
IDLE_SECONDS = 15 * 60
TICK_SECONDS = 5.0  # how often an idle server looks at its home and its socket
FINGERPRINT_ENV_PREFIXES = ("CONSORCIO_", "DAGSTER_", "AWS_", "PG", "PYTHON")
PACKAGES = ("consorcio_assets", "consorcio_core", "consorcio_glue")
#: imported by the server before it serves, so a command's child does not (the runs' own lazy imports)
WARM_MODULES = (
    "consorcio_assets.tooling.verify",
    "consorcio_assets.tooling.summary",
    "consorcio_assets.tooling.progress",
    "consorcio_assets.tooling.forked_run",
    "consorcio_assets.orchestration.event_storage",
    "dagster._core.execution.api",
    "dagster._core.execution.plan.active",
    "duckdb",
    "duckdb_engine",
    "psycopg2",
    "pyarrow.parquet",
)
MAX_MESSAGE = 1 << 20
_CRED = "3i"  # struct ucred: pid, uid, gid (SO_PEERCRED)


def enabled(environ=os.environ) -> bool:
    return environ.get(SWITCH_ENV, "1") != "0"


def socket_path(home: Path) -> Path:
    """<home>/run/warm.sock, or a per-home name in a private temporary folder when that path is too long for a
    Unix socket (108 bytes)."""
    path = home / "run" / "warm.sock"
    if len(os.fsencode(path)) < 100:
        return path
    digest = hashlib.sha256(os.fsencode(home)).hexdigest()[:20]
    return Path(f"/tmp/consorcio-warm-{os.getuid()}") / f"{digest}.sock"


def _private_dir(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)


def fingerprint(environ=os.environ) -> str:
    """What the definitions a server built depend on: the packages' files, the interpreter, its site-packages,
    and the settings' variables (hashed: secrets never leave the process in the clear)."""
    digest = hashlib.sha256()
    digest.update(f"{sys.executable}\0{sys.version}\0".encode())
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        for folder in spec.submodule_search_locations:
            for root, dirs, files in os.walk(folder):
                dirs[:] = sorted(d for d in dirs if d != "__pycache__")
                for file in sorted(files):
                    stat = os.stat(os.path.join(root, file))
                    digest.update(f"{root}/{file}\0{stat.st_mtime_ns}\0{stat.st_size}\0".encode())
    for folder in sorted({p for p in sys.path if p.endswith("site-packages")}):
        with contextlib.suppress(OSError):
            digest.update(f"{folder}\0{os.stat(folder).st_mtime_ns}\0".encode())
    for key in sorted(k for k in environ if k.startswith(FINGERPRINT_ENV_PREFIXES) and k != SWITCH_ENV):
        digest.update(f"{key}\0{environ[key]}\0".encode())
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------ the command's side


class _Forwarder:
    """The signals a terminal or a supervisor gives the command, passed on to the child once its pid is known
    (one that comes before is passed on then): Ctrl-C may come at any moment."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self):
        self.pid: int | None = None
        self.received: list[int] = []
        self._previous = {signum: signal.signal(signum, self) for signum in self.SIGNALS}

    def __call__(self, signum, _frame) -> None:
        self.received.append(signum)
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def to(self, pid: int) -> None:
        self.pid = pid
        for signum in list(self.received):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def run_through_server(home: Path, argv: Sequence[str]) -> int | None:
    """Run the command in the home's warm server; None when there is none (or it is stale): run it cold."""
    path = socket_path(home)
    if not path.exists():
        return None
    forwarder = _Forwarder()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        conn.connect(str(path))
        request = {"fingerprint": fingerprint(), "argv": list(argv), "cwd": os.getcwd(), "env": dict(os.environ)}
        socket.send_fds(conn, [json.dumps(request).encode()], [0, 1, 2])
        reply = json.loads(conn.recv(MAX_MESSAGE) or b"{}")
    except OSError:
        reply = {}
    if "pid" not in reply:  # no server answered, or a stale one (it is leaving)
        conn.close()
        forwarder.restore()
        return 128 + forwarder.received[-1] if forwarder.received else None  # interrupted before it began
    forwarder.to(reply["pid"])
    return _exit_status(conn, forwarder)


def _exit_status(conn: socket.socket, forwarder: _Forwarder) -> int:
    """The child's exit status, as it sends it; 128 + the signal that ended it when it could not."""
    with conn:
        while True:
            try:
                message = conn.recv(MAX_MESSAGE)
            except InterruptedError:
                continue
            if not message:  # the child ended without saying how: killed
                return 128 + (forwarder.received[-1] if forwarder.received else signal.SIGKILL)
            return int(json.loads(message)["exit"])


def pid_path(home: Path) -> Path:
    """<home>/run/warm.pid: the server's pid from its start, so `consorcio stop` also ends one still warming up."""
    return home / "run" / "warm.pid"


def start_server(home: Path, environ: dict[str, str]) -> None:
    """Start the home's server in the background, detached, with the command's environment as it was given."""
    log_dir = home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / "warm.log", "ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "consorcio_assets.tooling.warm", "serve"],
            env={k: v for k, v in environ.items() if k != SWITCH_ENV},
            cwd=os.getcwd(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    _private_dir(pid_path(home).parent)
    pid_path(home).write_text(f"{server.pid} {_start_time(server.pid)}")


def _start_time(pid: int) -> str:
    """When the process started (clock ticks since boot): with the pid, names one process, never a reused pid."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()[19].decode()


def stop_server(home: Path) -> str | None:
    """Ask the home's server to end; what was done, or None when none was running. A server still warming up
    (its socket not yet there: the command that started it has just ended) is ended by its pid."""
    path = socket_path(home)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        conn.connect(str(path))
        conn.send(json.dumps({"stop": True}).encode())
        conn.recv(MAX_MESSAGE)
    except OSError:
        return _end_warming(home)
    finally:
        conn.close()
    return f"warm server of {home} stopped"


def _end_warming(home: Path) -> str | None:
    try:
        pid_text, started = pid_path(home).read_text().split()
        pid = int(pid_text)
        if _start_time(pid) != started:  # gone, and the pid reused by another process
            return None
    except (OSError, ValueError, IndexError):
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    with contextlib.suppress(FileNotFoundError):
        pid_path(home).unlink()
    return f"warm server of {home} stopped while warming up"


# ------------------------------------------------------------------------------------------ the server's side


class Stale(Exception):
    """A command whose fingerprint is not this server's: the server leaves."""


class Stopped(Exception):
    """`consorcio stop` asked the server to end."""


def warm_up() -> None:
    """What every command would do first: find the home, import, build the definitions (never a connection)."""
    import importlib

    from consorcio_assets.tooling import cli, launch

    cli.use_home(quiet=True)
    launch.repository_definition()
    launch.location_origin()
    for module in WARM_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)


def serve(entry: Callable[[list[str]], int] | None = None) -> int:
    """Warm up, then fork a child per command until idle, stale, stopped or the home is gone."""
    import threading

    warnings.simplefilter("ignore")  # as the CLI: Dagster's beta notes are for developers
    own = fingerprint()  # of the environment this process was given, before the warm-up changes it
    started = time.monotonic()
    warm_up()
    from consorcio_assets.settings import get_settings
    from consorcio_assets.tooling import cli

    if threading.active_count() != 1:
        print(f"not serving: {threading.active_count()} threads after the warm-up make forking unsafe")
        return 1
    home = get_settings().home
    path = socket_path(home)
    _private_dir(path.parent)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    if probe.connect_ex(str(path)) == 0:
        print(f"another server answers on {path}")
        return 0
    probe.close()
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(str(path))
    os.chmod(path, 0o600)
    listener.listen(16)
    listener.settimeout(TICK_SECONDS)
    inode = path.stat().st_ino
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    print(f"serving {home} on {path} (warm in {time.monotonic() - started:.1f} s)", flush=True)
    last = time.monotonic()
    try:
        while time.monotonic() - last < IDLE_SECONDS and home.is_dir() and _still_ours(path, inode):
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            last = time.monotonic()
            try:
                _answer(conn, listener, own, entry or cli.main)
            except Stale as why:
                print(f"stale: {why}; leaving", flush=True)
                return 0
            except Stopped:
                print("stopped", flush=True)
                return 0
            except Exception as err:  # noqa: BLE001 - one bad request does not end the server
                print(f"request refused: {type(err).__name__}: {err}", flush=True)
        print("idle, or the home or the socket is gone; leaving", flush=True)
    finally:
        if _still_ours(path, inode):
            path.unlink()
        listener.close()
        with contextlib.suppress(OSError, ValueError):
            if int(pid_path(home).read_text().split()[0]) == os.getpid():
                pid_path(home).unlink()
    return 0


def _still_ours(path: Path, inode: int) -> bool:
    try:
        return path.stat().st_ino == inode
    except FileNotFoundError:
        return False


def _answer(conn: socket.socket, listener: socket.socket, own: str, entry: Callable[[list[str]], int]) -> None:
    import struct

    with conn:
        conn.settimeout(10)
        client_pid, uid, _gid = struct.unpack(_CRED, conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        if uid != os.getuid():
            raise PermissionError(f"a command of uid {uid} is not served")
        data, fds, _flags, _addr = socket.recv_fds(conn, MAX_MESSAGE, 3)
        try:
            request = json.loads(data)
            if request.get("stop"):
                conn.send(b"{}")
                raise Stopped
            if request.get("fingerprint") != own:
                conn.send(json.dumps({"stale": True}).encode())
                raise Stale("the command's files, interpreter or settings differ from this server's")
            if len(fds) != 3:
                raise ValueError(f"expected stdin, stdout and stderr, got {len(fds)} descriptors")
            child = os.fork()
            if child == 0:
                listener.close()
                _child(conn, request, fds, client_pid, entry)
            print(f"`{' '.join(request['argv'][:1])}` of pid {client_pid} runs in pid {child}", flush=True)
        finally:
            for fd in fds:
                os.close(fd)


def _child(conn: socket.socket, request: dict, fds: list[int], client_pid: int, entry) -> None:
    """The command, in this fork: its terminal, directory and environment; its exit status back to it."""
    code = 1
    try:
        from consorcio_assets.orchestration import runs

        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the command's own descriptors, left open
        sys.stdout = open(1, "w", buffering=1 if os.isatty(1) else -1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        runs.COMMAND_OWNER = runs.identity(client_pid)
        conn.settimeout(None)
        conn.send(json.dumps({"pid": os.getpid()}).encode())
        code = entry(list(request["argv"])) or 0
    except SystemExit as done:
        if isinstance(done.code, str):  # what the interpreter prints for `sys.exit("message")`
            print(done.code, file=sys.stderr)
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # noqa: BLE001 - said on the command's stderr, then its exit status says it
        import traceback

        traceback.print_exc()
    finally:
        flush_std_streams()
        with contextlib.suppress(OSError):
            conn.send(json.dumps({"exit": code}).encode())
        os._exit(code)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] != ["serve"]:
        print(__doc__, file=sys.stderr)
        return 2
    return serve()


if __name__ == "__main__":
    sys.exit(main())
