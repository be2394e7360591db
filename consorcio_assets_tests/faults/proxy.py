"""A TCP front for the embedded PostgreSQL (which listens on a Unix socket only) that misbehaves on purpose:
it refuses connections until it is opened (a server still starting), or drops the first few connections it
accepts (a load balancer or a server restarting). Real sockets: libpq sees real refusals and resets."""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import parse_qs, urlparse


def socket_path(libpq_url: str) -> str:
    """The Unix socket of a `postgresql://...?host=/dir` URL."""
    parsed = urlparse(libpq_url)
    directory = parse_qs(parsed.query)["host"][0]
    return f"{directory}/.s.PGSQL.{parsed.port or 5432}"


class FlakyFront:
    """127.0.0.1:<port> → the server's Unix socket. Bound but not listening until `open()`: connecting is
    refused (ECONNREFUSED). Once open, the first `drop` accepted connections are closed at once."""

    def __init__(self, libpq_url: str, drop: int = 0):
        self.upstream = socket_path(libpq_url)
        self.drop, self.accepted = drop, 0
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = threading.Event()

    def url(self, database: str, password: str | None = None) -> str:
        user = "postgres" + (f":{password}" if password else "")
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def open(self) -> None:
        self._listener.listen(16)
        threading.Thread(target=self._accept, daemon=True, name="flaky-front").start()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.accepted <= self.drop:
                client.close()
                continue
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.connect(self.upstream)
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
