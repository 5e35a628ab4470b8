"""A loopback HTTP receiver for tests: records every POST and wakes waiters.

Used as a notification endpoint and as an OTLP/HTTP trace collector. It runs
in a thread of the test process on 127.0.0.1 with a free port; ``close``
stops exactly that server.
"""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    """One POST as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A started server, what it received, and a condition to wait on."""

    server: ThreadingHTTPServer
    status: int = 200
    received: list[Received] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, predicate: Any, timeout: float = 60.0) -> list[Received]:
        """Wait until ``predicate(received)`` holds (generous timeout); return what came."""
        with self.changed:
            ok = self.changed.wait_for(lambda: predicate(self.received), timeout)
        assert ok, f"receiver: condition not met; received {len(self.received)} requests"
        return list(self.received)

    def close(self) -> None:
        """Stop the server thread."""
        self.server.shutdown()
        self.server.server_close()


def start_receiver(status: int = 200) -> Receiver:
    """Start a receiver answering every POST with ``status``."""
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            receiver = holder["r"]
            self.send_response(receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            with receiver.changed:
                receiver.received.append(Received(self.path, dict(self.headers), body))
                receiver.changed.notify_all()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["r"] = receiver = Receiver(server, status)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver


def closed_port_url() -> str:
    """A loopback URL nothing listens on (the port was bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"
