"""SQLite specifics of the audit store: the engine settings and the append queue.

Owns how a SQLite log file is opened (WAL, synchronous=FULL, BEGIN IMMEDIATE
for writers), the file lock that queues writers and the one connection per
process that appends. Tables, transactions and reads live in :mod:`audit.store`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: rely on SQLite's busy handler
    fcntl = None  # type: ignore[assignment]

from audit.errors import LogUnavailableError

__all__ = ["AppendQueue", "sqlite_engine"]


def sqlite_engine(
    url: str, create: bool, unavailable: Callable[[str, str, str], LogUnavailableError]
) -> Engine:
    """Return an engine on the SQLite file of ``url`` (WAL, durable commits).

    Raises:
        LogUnavailableError: no file path, a missing file when ``create`` is
            False, or a directory that cannot be created.
    """
    raw = url.split(":///", 1)[1] if ":///" in url else ""
    if not raw or raw == ":memory:":
        raise unavailable(url, "expected a file path", "use sqlite:///path/to/audit.db")
    path = Path(raw)
    if not create and not path.is_file():
        raise unavailable(url, f"no log file at {path}", "check --log or POLICYENGINE_LOG_URL")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise unavailable(
            url, f"cannot create {path.parent}: {e.strerror}", "check the path") from e
    engine = sa.create_engine(url, connect_args={"timeout": 60.0})
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)
    return engine


def _on_connect(dbapi_conn: Any, _record: Any = None) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # synchronous=FULL: a commit that returned survives power loss
    # (sqlite.org/pragma.html#pragma_synchronous, WAL mode).
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.close()


def _on_begin(conn: Connection) -> None:
    # BEGIN IMMEDIATE takes the write lock before reading the head, so the
    # seq and prev read in this transaction are still current at commit.
    mode = "IMMEDIATE" if conn.get_execution_options().get("write") else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


class AppendQueue:
    """Queue writers on a blocking file lock beside the database.

    SQLite's busy handler polls with growing sleeps (up to 100 ms), so
    contending writers idle while the lock is free. A blocking flock hands
    the turn over at once; BEGIN IMMEDIATE still serialises everyone else.
    """

    def __init__(self, path: str | None, database: str | None = None) -> None:
        """Queue on ``path`` (None: no queue, SQLite's busy handler only).

        ``database`` is the log file :meth:`connection` appends to.
        """
        self._path = path
        self._database = database
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        self._pid = 0
        self._conn: sqlite3.Connection | None = None
        self._conn_pid = 0
        # Connections inherited across fork are kept open, never used: closing
        # one may checkpoint and delete the parent's WAL (sqlite.org/howtocorrupt.html §2.6).
        self._inherited: list[sqlite3.Connection] = []

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the queue's lock (exclusive between threads and processes)."""
        if self._path is None:
            yield
            return
        with self._thread_lock:
            if fcntl is None:  # one thread at a time still (the append connection)
                yield
                return
            if self._fd is None or self._pid != os.getpid():
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
                self._pid = os.getpid()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def connection(self) -> sqlite3.Connection:
        """This process's append connection (opened once, settings as :func:`sqlite_engine`).

        Use it only inside :meth:`turn`, whose thread lock makes one thread at
        a time its user: a kept connection saves a pool checkout and the
        pool's reset per append.
        """
        if self._conn is None or self._conn_pid != os.getpid():
            if self._conn is not None:
                self._inherited.append(self._conn)
            assert self._database is not None
            conn = sqlite3.connect(
                self._database, timeout=60.0, isolation_level=None, check_same_thread=False)
            _on_connect(conn)
            self._conn, self._conn_pid = conn, os.getpid()
        return self._conn

    def discard(self) -> None:
        """Drop the append connection (after an error: its state is not trusted)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._conn_pid != os.getpid():
            self._inherited.append(conn)
            return
        with suppress(sqlite3.Error):
            conn.close()

    def close(self) -> None:
        """Close the lock file descriptor and append connection opened by this process."""
        self.discard()
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None
