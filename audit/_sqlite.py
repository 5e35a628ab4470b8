"""SQLite specifics of the audit store, on the DB-API alone.

Owns how a SQLite log file is opened (WAL, synchronous=FULL, BEGIN IMMEDIATE
for writers), the file lock that queues writers, the one connection per
process that writes and the per-thread connections that read
(:class:`SqliteDatabase`). No SQLAlchemy here: a CLI process that opens a log,
reads a history and appends never imports it. Statements and reads live in
:mod:`audit.store`; the SQLAlchemy engine for schema creation and tests is
built on demand by :func:`sqlite_engine`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: rely on SQLite's busy handler
    fcntl = None  # type: ignore[assignment]

from audit.errors import LogUnavailableError

__all__ = ["AppendQueue", "SqliteDatabase", "sqlite_engine", "sqlite_path"]

_TIMEOUT = 60.0


def sqlite_path(
    url: str, create: bool, unavailable: Callable[[str, str, str], LogUnavailableError]
) -> str:
    """The log file of a ``sqlite:///`` URL, its directory created when ``create``.

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
    return raw


def sqlite_engine(path: str) -> Any:
    """A SQLAlchemy engine on the log file ``path``, with the settings of :func:`configure`.

    For creating the schema (SQLModel's ``create_all``) and for tests; the
    store's own reads and writes use :class:`SqliteDatabase`.
    """
    import sqlalchemy as sa
    from sqlalchemy import event

    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": _TIMEOUT})
    event.listen(engine, "connect", lambda dbapi_conn, _record: configure(dbapi_conn))
    event.listen(engine, "begin", _on_begin)
    return engine


def connect(path: str) -> sqlite3.Connection:
    """A new connection on the log file with the settings of :func:`configure`."""
    conn = sqlite3.connect(path, timeout=_TIMEOUT, isolation_level=None,
                           check_same_thread=False)
    configure(conn)
    return conn


def configure(dbapi_conn: Any) -> None:
    """WAL, durable commits, a long busy wait; transactions begun explicitly."""
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # synchronous=FULL: a commit that returned survives power loss
    # (sqlite.org/pragma.html#pragma_synchronous, WAL mode).
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.close()


def _on_begin(conn: Any) -> None:
    # BEGIN IMMEDIATE takes the write lock before reading the head, so the
    # seq and prev read in this transaction are still current at commit.
    mode = "IMMEDIATE" if conn.get_execution_options().get("write") else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


class SqliteDatabase:
    """A SQLite log file: queued write transactions and per-thread read transactions.

    Writes run on the process's one append connection (:class:`AppendQueue`)
    inside ``BEGIN IMMEDIATE``; reads on a connection kept per thread, each
    read one ``BEGIN DEFERRED`` transaction, so its statements see one
    snapshot. Connections are per process: one inherited through ``fork`` is
    kept open and never used (closing it could checkpoint and delete the
    parent's WAL, sqlite.org/howtocorrupt.html §2.6).
    """

    dialect = "sqlite"
    operational_errors: tuple[type[Exception], ...] = (sqlite3.OperationalError,)
    database_errors: tuple[type[Exception], ...] = (sqlite3.DatabaseError,)

    def __init__(self, path: str) -> None:
        """Open nothing yet: connections are made on first use."""
        self.path = path
        self.queue = AppendQueue(path + "-appendlock", path)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._readers: list[tuple[int, sqlite3.Connection]] = []

    @staticmethod
    def sql(statement: str) -> str:
        """``statement`` for this driver (qmark placeholders, as written)."""
        return statement

    def reader(self) -> sqlite3.Connection:
        """This thread's read connection (opened on first use, per process)."""
        pid = os.getpid()
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != pid:
            conn = connect(self.path)
            self._local.conn, self._local.pid = conn, pid
            with self._lock:
                self._readers.append((pid, conn))
        return conn

    @contextmanager
    def reading(self, *, snapshot: bool = True) -> Iterator[sqlite3.Cursor]:
        """A cursor in a read transaction (one snapshot), ended when the block ends.

        Every SQLite read transaction is one snapshot (in WAL mode it is taken
        at the first read), so ``snapshot`` changes nothing here.
        """
        conn = self.reader()
        cur = conn.cursor()
        try:
            cur.execute("BEGIN DEFERRED")
            yield cur
        except sqlite3.Error:
            cur.close()
            self._drop_reader(conn)  # the connection may be broken: the next read opens anew
            raise
        except BaseException:
            # The caller's own error inside the block: end the read, keep the
            # connection, and let that error (not a cleanup one) propagate.
            with suppress(sqlite3.Error):
                cur.close()
                conn.rollback()
            raise
        cur.close()
        conn.rollback()

    def _drop_reader(self, conn: sqlite3.Connection) -> None:
        """Forget a reader after an error: the next read opens a fresh one."""
        self._local.conn = None
        with self._lock:
            self._readers = [(p, c) for p, c in self._readers if c is not conn]
        with suppress(sqlite3.Error):
            conn.close()

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Cursor]:
        """A write transaction (BEGIN IMMEDIATE) in the queue's turn; committed, durable, on exit.

        The write lock is taken before anything is read, so the head read
        inside is still current at commit. Every SQLite commit is synchronous.
        """
        with self.queue.turn():
            raw = self.queue.connection()
            try:
                cur = raw.cursor()
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield cur
                except BaseException:
                    raw.rollback()
                    raise
                raw.commit()
            except BaseException:
                self.queue.discard()  # a failed connection is not reused
                raise

    def close(self) -> None:
        """Close the connections this process opened, and the queue's file."""
        pid = os.getpid()
        with self._lock:
            mine = [c for p, c in self._readers if p == pid]
            self._readers = [(p, c) for p, c in self._readers if p != pid]
        for conn in mine:
            with suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()
        self.queue.close()


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
        """This process's append connection (opened once, settings as :func:`configure`).

        Use it only inside :meth:`turn`, whose thread lock makes one thread at
        a time its user: a kept connection saves a pool checkout and the
        pool's reset per append.
        """
        if self._conn is None or self._conn_pid != os.getpid():
            if self._conn is not None:
                self._inherited.append(self._conn)
            assert self._database is not None
            conn = connect(self._database)
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
