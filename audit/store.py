"""Durable storage of the audit log: SQLModel tables on SQLite or PostgreSQL.

Owns the tables, opening a database by URL, the write transaction that
serialises appends (one sequencer, so any number of processes produce one
linear chain), persisting entries with their Merkle nodes, PostgreSQL triggers
that refuse rewriting history, and streaming reads.

It does not build envelopes or hashes (:mod:`audit.log`), compute tree nodes
(:mod:`audit.tree`) or decide what may be redacted (:mod:`audit.retention`).
The hot path uses SQLAlchemy Core statements on these tables, not ORM sessions.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: rely on SQLite's busy handler
    fcntl = None  # type: ignore[assignment]

from audit.errors import LogUnavailableError, StorageError
from audit.records import StoredCheckpoint, StoredEntry
from audit.tree import Coord, TreeReader, extend, pack_frontier, unpack_frontier

__all__ = [
    "CheckpointRow",
    "EntryRow",
    "Head",
    "HoldRow",
    "KeyRow",
    "NewRow",
    "NodeRow",
    "PayloadRow",
    "Store",
    "StoredCheckpoint",
    "StoredEntry",
    "mask_url",
    "open_store",
]

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # rowid alias on SQLite
_BATCH = 2000
_SCAN_BATCH = 10000
# The verifier's scan; integers only are formatted in (see iter_entries).
_SCAN = (
    "SELECT e.seq, e.envelope, e.leaf_hash, p.content, p.redacted FROM audit_entries e "
    "LEFT JOIN audit_payloads p ON p.seq = e.seq WHERE e.seq > {after:d} "
    "ORDER BY e.seq LIMIT {limit:d}"
)


class _Base(SQLModel, registry=registry()):
    """Own metadata, so creating the audit tables touches no other table."""


class EntryRow(_Base, table=True):
    """One log entry: the envelope bytes exactly as hashed, plus query columns."""

    __tablename__ = "audit_entries"
    seq: int = Field(sa_type=_SEQ, primary_key=True, sa_column_kwargs={"autoincrement": False})
    leaf_hash: bytes = Field(sa_type=sa.LargeBinary)
    envelope: bytes = Field(sa_type=sa.LargeBinary)
    type: str = Field(index=True)
    subject_name: str = Field(index=True)
    subject_version: str | None = Field(default=None, index=True)
    subject_digest: str | None = Field(default=None, index=True)
    actor: str = Field(index=True)
    time: str = Field(index=True)  # RFC 3339, fixed width: sorts as it compares


class PayloadRow(_Base, table=True):
    """The payload bound to an entry by digest; content is NULL once redacted."""

    __tablename__ = "audit_payloads"
    seq: int = Field(sa_type=_SEQ, primary_key=True, sa_column_kwargs={"autoincrement": False})
    digest: str
    content: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    redacted: bool = False


class CheckpointRow(_Base, table=True):
    """A signed checkpoint (C2SP signed note) of the tree at ``size``."""

    __tablename__ = "audit_checkpoints"
    size: int = Field(sa_type=_SEQ, primary_key=True, sa_column_kwargs={"autoincrement": False})
    root: bytes = Field(sa_type=sa.LargeBinary)
    note: str


class NodeRow(_Base, table=True):
    """A perfect Merkle subtree of level >= 1 (level 0 is the entry's leaf hash)."""

    __tablename__ = "audit_nodes"
    level: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    idx: int = Field(
        sa_type=sa.BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    hash: bytes = Field(sa_type=sa.LargeBinary)


class HoldRow(_Base, table=True):
    """A legal hold on a subject name (all versions when version is empty)."""

    __tablename__ = "audit_holds"
    hold_seq: int = Field(sa_type=_SEQ, primary_key=True, sa_column_kwargs={"autoincrement": False})
    subject_name: str = Field(index=True)
    subject_version: str = ""
    release_seq: int | None = Field(default=None, sa_type=sa.BigInteger)


class KeyRow(_Base, table=True):
    """A verifier key (signed-note vkey) that signed at least one checkpoint."""

    __tablename__ = "audit_keys"
    vkey: str = Field(primary_key=True)
    first_size: int = Field(sa_type=sa.BigInteger)


class HeadRow(_Base, table=True):
    """The single sequencer row: size, last leaf hash and compact range."""

    __tablename__ = "audit_head"
    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    origin: str
    size: int = Field(sa_type=sa.BigInteger)
    last_leaf: bytes = Field(sa_type=sa.LargeBinary)
    frontier: bytes = Field(sa_type=sa.LargeBinary)


_E = EntryRow.__table__  # type: ignore[attr-defined]
_P = PayloadRow.__table__  # type: ignore[attr-defined]
_C = CheckpointRow.__table__  # type: ignore[attr-defined]
_N = NodeRow.__table__  # type: ignore[attr-defined]
_H = HeadRow.__table__  # type: ignore[attr-defined]
_HOLDS = HoldRow.__table__  # type: ignore[attr-defined]
_K = KeyRow.__table__  # type: ignore[attr-defined]
_TABLES = [_E, _P, _C, _N, _HOLDS, _K, _H]


class _Compiled:
    """The hot-path Core statements of these tables, compiled once per dialect."""

    def __init__(self, dialect: sa.engine.Dialect) -> None:
        if dialect.name == "sqlite":
            from sqlalchemy.dialects import sqlite

            dialect = sqlite.dialect(paramstyle="named")  # sqlite3 binds dicts by :name

        def text(stmt: Any) -> str:
            return str(stmt.compile(dialect=dialect))

        head = sa.select(_H.c.origin, _H.c.size, _H.c.last_leaf, _H.c.frontier).where(
            _H.c.id == sa.literal_column("1"))
        if dialect.name == "postgresql":
            head = head.with_for_update()  # the sequencer: one appender at a time
        self.head = text(head)
        self.entry = text(sa.insert(_E))
        self.payload = text(sa.insert(_P))
        self.node = text(sa.insert(_N))
        self.move = text(
            sa.update(_H).where(_H.c.id == sa.literal_column("1")).values(
                size=sa.bindparam("size"), last_leaf=sa.bindparam("last_leaf"),
                frontier=sa.bindparam("frontier")))


@dataclass(frozen=True)
class Head:
    """The log's state read inside a write transaction."""

    origin: str
    """Log origin every envelope names."""
    size: int
    """Entries in the log; the next seq."""
    last_leaf: bytes
    """Leaf hash of entry ``size - 1`` (32 zero bytes when empty)."""
    frontier: list[bytes]
    """Compact range of the tree (RFC 9162 perfect subtrees, largest first)."""


@dataclass(frozen=True)
class NewRow:
    """An entry ready to persist: envelope built and hashed by the log."""

    seq: int
    leaf_hash: bytes
    envelope: bytes
    type: str
    subject: dict[str, str]
    actor: str
    time: str
    payload_digest: str
    payload: bytes


# Database-level protection (PostgreSQL): history is append-only. Entries,
# checkpoints and nodes refuse UPDATE, DELETE and TRUNCATE; a payload may only
# lose its content (content -> NULL with redacted = true, digest unchanged),
# which is the redaction path of audit.retention; the head only grows.
_PG_GUARDS = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE OR REPLACE FUNCTION audit_payload_redact_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.seq = OLD.seq AND NEW.digest = OLD.digest
     AND NEW.content IS NULL AND NEW.redacted AND OLD.content IS NOT NULL THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit payloads only allow redaction (content -> NULL): % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE OR REPLACE FUNCTION audit_head_grow_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND NEW.size >= OLD.size THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit head only grows: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE OR REPLACE TRIGGER audit_entries_guard BEFORE UPDATE OR DELETE ON audit_entries
  FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE OR REPLACE TRIGGER audit_entries_truncate BEFORE TRUNCATE ON audit_entries
  FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE OR REPLACE TRIGGER audit_checkpoints_guard BEFORE UPDATE OR DELETE ON audit_checkpoints
  FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE OR REPLACE TRIGGER audit_checkpoints_truncate BEFORE TRUNCATE ON audit_checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE OR REPLACE TRIGGER audit_nodes_guard BEFORE UPDATE OR DELETE ON audit_nodes
  FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE OR REPLACE TRIGGER audit_payloads_guard BEFORE UPDATE OR DELETE ON audit_payloads
  FOR EACH ROW EXECUTE FUNCTION audit_payload_redact_only();
CREATE OR REPLACE TRIGGER audit_payloads_truncate BEFORE TRUNCATE ON audit_payloads
  FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE OR REPLACE TRIGGER audit_head_guard BEFORE UPDATE OR DELETE ON audit_head
  FOR EACH ROW EXECUTE FUNCTION audit_head_grow_only();
"""


# PostgreSQL group commit for appends. The sequencer row lock is held until the
# append transaction ends; with a synchronous commit it would be held across
# the WAL fsync and appends could never share one. So the append transaction
# commits asynchronously (releasing the lock at once) and the caller is only
# answered after a second, synchronous commit of a transaction with an xid:
# its commit flushes the WAL up to its own record (PostgreSQL
# RecordTransactionCommit -> XLogFlush), which includes the append, and
# concurrent writers' barriers share fsyncs. WAL is replayed in order, so a
# crash can only lose a suffix of unacknowledged appends, never leave a hole.
# Without EXECUTE on pg_logical_emit_message the store commits synchronously.
_PG_ASYNC_COMMIT = "SET LOCAL synchronous_commit = off"
# A transactional WAL record (an empty logical message) so the commit writes
# WAL and must flush it; a bare xid assignment writes none and would not wait.
_PG_FLUSH_BARRIER = "SELECT pg_logical_emit_message(true, 'policyengine.audit', '')"


def _install_guards(conn: Connection, dialect: str) -> None:
    if dialect == "postgresql":
        # On the driver cursor without parameters, so '%' in RAISE is literal.
        conn.connection.dbapi_connection.cursor().execute(_PG_GUARDS)  # type: ignore[union-attr]


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _unavailable(url: str, why: str, fix: str) -> LogUnavailableError:
    return LogUnavailableError(f"audit log unavailable at {mask_url(url)}: {why}; {fix}")


def _sqlite_engine(url: str, create: bool) -> Engine:
    raw = url.split(":///", 1)[1] if ":///" in url else ""
    if not raw or raw == ":memory:":
        raise _unavailable(url, "expected a file path", "use sqlite:///path/to/audit.db")
    path = Path(raw)
    if not create and not path.is_file():
        raise _unavailable(url, f"no log file at {path}", "check --log or POLICYENGINE_LOG_URL")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _unavailable(
            url, f"cannot create {path.parent}: {e.strerror}", "check the path") from e
    engine = sa.create_engine(url, connect_args={"timeout": 60.0})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # synchronous=FULL: a commit that returned survives power loss.
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # BEGIN IMMEDIATE takes the write lock before reading the head, so the
        # seq and prev read in this transaction are still current at commit.
        mode = "IMMEDIATE" if conn.get_execution_options().get("write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def open_store(url: str, *, create: bool = True) -> Store:
    """Open (creating tables if needed) the log database at ``url``.

    Args:
        url: ``sqlite:///path`` or ``postgresql+psycopg://user:pw@host/db``.
        create: create the file and tables when missing; when False a missing
            log is an error (for commands that only read).

    Raises:
        LogUnavailableError: bad URL, unreachable server, unreadable or
            unwritable file; the message names the URL with the password masked.
    """
    if url.startswith("sqlite:"):
        engine = _sqlite_engine(url, create)
    elif url.startswith(("postgresql:", "postgresql+psycopg:", "postgres:")):
        if url.startswith("postgres:") or url.startswith("postgresql:"):
            url = "postgresql+psycopg:" + url.split(":", 1)[1]
        try:
            engine = sa.create_engine(url, pool_pre_ping=True)
        except Exception as e:
            raise _unavailable(url, str(e).splitlines()[0], "check the URL") from e
    else:
        raise _unavailable(
            url,
            "expected a sqlite:/// or postgresql+psycopg:// URL",
            "set --log or POLICYENGINE_LOG_URL",
        )
    store = Store(engine, url)
    store.ensure_schema(create=create)
    return store


class Store:
    """The audit tables in one database; appends are serialised by the database."""

    def __init__(self, engine: Engine, url: str) -> None:
        """Wrap an engine; use :func:`open_store`, which also creates the schema."""
        self.engine = engine
        self.url = url
        self.dialect = engine.dialect.name
        self.tree = TreeReader(self.fetch_nodes)
        self._sql = _Compiled(engine.dialect)
        self._group_commit = False
        self._thread_lock = threading.Lock()
        self._lock_fd: int | None = None
        self._lock_pid = 0
        self._lock_path: str | None = None
        if self.dialect == "sqlite" and engine.url.database:
            self._lock_path = engine.url.database + "-appendlock"

    def close(self) -> None:
        """Release pooled connections and the append queue file."""
        self.engine.dispose()
        if self._lock_fd is not None and self._lock_pid == os.getpid():
            os.close(self._lock_fd)
        self._lock_fd = None

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn driver and SQLAlchemy errors into audit errors naming the log."""
        dbapi = self.engine.dialect.dbapi
        try:
            yield
        except (exc.OperationalError, dbapi.OperationalError) as e:  # type: ignore[union-attr]
            raise self._wrap(e, unavailable=True) from e
        except (exc.DatabaseError, dbapi.DatabaseError) as e:  # type: ignore[union-attr]
            raise self._wrap(e, unavailable=False) from e

    def _wrap(self, e: Exception, *, unavailable: bool) -> StorageError:
        orig = getattr(e, "orig", None) or e
        msg = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
        where = mask_url(self.url)
        if "locked" in msg or "busy" in msg:
            return StorageError(f"audit log at {where} is busy: {msg}; retry")
        if unavailable and "syntax" not in msg:
            fix = ("check the server is running and the URL, "
                   "or that the file is readable and writable")
            return _unavailable(self.url, msg, fix)
        return StorageError(f"audit log at {where}: {msg}")

    def _initialised(self) -> bool:
        """True when every table and the head row exist (read only, no write lock)."""
        with self._errors(), self.engine.connect() as conn:
            names = set(sa.inspect(conn).get_table_names())
            if not {t.name for t in _TABLES} <= names:
                return False
            return conn.execute(sa.select(_H.c.id)).first() is not None

    def ensure_schema(
        self, origin: str = "policyengine.local/audit", *, create: bool = True
    ) -> None:
        """Create tables, guards and the head row once, safely under concurrency.

        An initialised log is only read, so opening it needs no write access
        (an auditor's read-only copy) and does not queue behind appenders.
        """
        if not self._initialised():
            if not create:
                raise _unavailable(self.url, "no audit log in this database",
                                   "check --log or POLICYENGINE_LOG_URL")
            self._create_schema(origin)
        if self.dialect == "postgresql":
            self._group_commit = self._can_group_commit()

    def _create_schema(self, origin: str) -> None:
        with self._errors(), self.write() as conn:
            if self.dialect == "postgresql":
                # Serialises schema creation between processes (DDL is transactional).
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7254119)")
            _Base.metadata.create_all(conn, tables=_TABLES)
            _install_guards(conn, self.dialect)
            if conn.execute(sa.select(_H.c.id)).first() is None:
                conn.execute(
                    sa.insert(_H).values(
                        id=1, origin=origin, size=0, last_leaf=bytes(32), frontier=b""
                    )
                )

    def _can_group_commit(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql(_PG_FLUSH_BARRIER)
                conn.rollback()
        except exc.DBAPIError:
            return False
        return True

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (SQLite BEGIN IMMEDIATE, queued like appends); commits on success."""
        with self._errors(), self._queue(), self.engine.connect() as conn:
            conn = conn.execution_options(write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def locked(self) -> Iterator[tuple[Connection, Head]]:
        """A write transaction holding the sequencer, with the head read inside it."""
        with self.write() as conn:
            cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            yield conn, self._read_locked_head(cur)

    @contextmanager
    def appending(self) -> Iterator[tuple[Any, Head]]:
        """The hot append transaction on a pooled DBAPI connection: (cursor, head).

        Statements are the Core statements of these tables compiled once
        (:class:`_Compiled`); executing them on the driver cursor skips
        SQLAlchemy's per-call overhead, which costs more than SQLite's commit.
        Returns only once the transaction is durable.
        """
        with self._errors():
            raw = self.engine.raw_connection()
            try:
                if self.dialect == "sqlite":
                    with self._sqlite_append(raw) as pair:
                        yield pair
                else:
                    with self._pg_append(raw) as pair:
                        yield pair
            finally:
                raw.close()

    @contextmanager
    def _sqlite_append(self, raw: Any) -> Iterator[tuple[Any, Head]]:
        with self._queue():
            cur = raw.cursor()
            cur.execute("BEGIN IMMEDIATE")  # take the write lock before reading the head
            try:
                yield cur, self._read_locked_head(cur)
            except BaseException:
                raw.rollback()
                raise
            raw.commit()

    @contextmanager
    def _queue(self) -> Iterator[None]:
        """Queue appenders on a blocking file lock beside the database.

        SQLite's busy handler polls with growing sleeps (up to 100 ms), so
        contending writers idle while the lock is free. A blocking flock hands
        the turn over at once; BEGIN IMMEDIATE still serialises everyone else.
        """
        if self._lock_path is None or fcntl is None:
            yield
            return
        with self._thread_lock:
            if self._lock_fd is None or self._lock_pid != os.getpid():
                self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
                self._lock_pid = os.getpid()
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @contextmanager
    def _pg_append(self, raw: Any) -> Iterator[tuple[Any, Head]]:
        cur = raw.cursor()
        try:
            if self._group_commit:
                cur.execute(_PG_ASYNC_COMMIT)
            head = self._read_locked_head(cur)  # SELECT ... FOR UPDATE: the sequencer
            # Pipeline the writes and the commit: one round trip under the lock.
            with raw.driver_connection.pipeline():
                yield cur, head
                raw.commit()
        except BaseException:
            raw.rollback()
            raise
        if self._group_commit:
            cur.execute(_PG_FLUSH_BARRIER)
            raw.commit()

    def _read_locked_head(self, cur: Any) -> Head:
        cur.execute(self._sql.head)
        origin, size, last, frontier = cur.fetchone()
        return Head(origin, size, bytes(last), unpack_frontier(bytes(frontier), size))

    def set_origin(self, conn: Connection, origin: str) -> None:
        """Name the log (only while it is empty)."""
        conn.execute(sa.update(_H).where(_H.c.id == 1).values(origin=origin))

    def insert_entries(self, cur: Any, head: Head, rows: list[NewRow]) -> Head:
        """Persist rows (seq head.size..), their payloads and completed nodes; move the head.

        ``cur`` is a DBAPI cursor inside a transaction from :meth:`appending`
        or :meth:`locked` (``conn.connection.dbapi_connection.cursor()``).
        """
        frontier, nodes = extend(head.size, head.frontier, [r.leaf_hash for r in rows])
        sql = self._sql
        if len(rows) == 1:
            cur.execute(sql.entry, _entry_params(rows[0]))
            cur.execute(sql.payload, _payload_params(rows[0]))
        else:
            cur.executemany(sql.entry, [_entry_params(r) for r in rows])
            cur.executemany(sql.payload, [_payload_params(r) for r in rows])
        if nodes:
            cur.executemany(sql.node, [{"level": lv, "idx": i, "hash": h} for lv, i, h in nodes])
        size = head.size + len(rows)
        last = rows[-1].leaf_hash
        cur.execute(
            sql.move, {"size": size, "last_leaf": last, "frontier": pack_frontier(frontier)})
        return Head(head.origin, size, last, frontier)

    def read_head(self) -> Head:
        """Return the current head without taking the write lock."""
        with self._errors(), self.engine.connect() as conn:
            row = conn.execute(sa.select(_H).where(_H.c.id == 1)).one()
        return Head(row.origin, row.size, row.last_leaf, unpack_frontier(row.frontier, row.size))

    def size(self) -> int:
        """Return the number of entries."""
        with self._errors(), self.engine.connect() as conn:
            return int(conn.execute(sa.select(_H.c.size).where(_H.c.id == 1)).scalar_one())

    def fetch_nodes(self, coords: set[Coord]) -> dict[Coord, bytes]:
        """Read node hashes by (level, index) in one round trip; level 0 is the leaf hash.

        The coordinates are integers computed by :mod:`audit.tree`, written
        into the SQL as literals (``int()``-checked) so the statement needs no
        per-call compilation; each level is an indexed primary-key lookup.
        """
        by_level: dict[int, list[str]] = {}
        for level, index in coords:
            by_level.setdefault(int(level), []).append(str(int(index)))
        parts = []
        if 0 in by_level:
            parts.append("SELECT 0, seq, leaf_hash FROM audit_entries "
                         f"WHERE seq IN ({','.join(by_level.pop(0))})")
        if by_level:
            match = " OR ".join(f"(level = {lv} AND idx IN ({','.join(ix)}))"
                                for lv, ix in sorted(by_level.items()))
            parts.append(f"SELECT level, idx, hash FROM audit_nodes WHERE {match}")
        if not parts:
            return {}
        with self._errors():
            raw = self.engine.raw_connection()
            try:
                cur = raw.cursor()
                cur.execute(" UNION ALL ".join(parts))
                rows = cur.fetchall()
                raw.rollback()
            finally:
                raw.close()
        return {(lv, i): _blob(h) for lv, i, h in rows}

    def get_node(self, level: int, index: int) -> bytes | None:
        """Return the hash of stored node (level, index), or None."""
        return self.fetch_nodes({(level, index)}).get((level, index))

    def iter_rows(
        self, where: list[Any] | None = None, *, start: int = 0, descending: bool = False,
        before: int | None = None,
    ) -> Iterator[sa.Row[Any]]:
        """Stream entry rows joined with payloads in seq order, in batches (flat memory)."""
        cols = [*_E.c, _P.c.content, _P.c.redacted, _P.c.digest]
        base = sa.select(*cols).select_from(_E.outerjoin(_P, _P.c.seq == _E.c.seq))
        for clause in where or []:
            base = base.where(clause)
        cursor: int | None = before if descending else start - 1
        while True:
            q = base
            if cursor is not None:
                q = q.where(_E.c.seq < cursor if descending else _E.c.seq > cursor)
            order = _E.c.seq.desc() if descending else _E.c.seq
            with self._errors(), self.engine.connect() as conn:
                rows = conn.execute(q.order_by(order).limit(_BATCH)).all()
            yield from rows
            if len(rows) < _BATCH:
                return
            cursor = rows[-1].seq

    def iter_entries(self, start: int = 0) -> Iterator[StoredEntry]:
        """Stream every entry from ``start`` as :class:`StoredEntry`, in seq order.

        Keyset batches of :data:`_SCAN_BATCH` rows on the driver cursor: memory
        stays flat and no SQLAlchemy row objects are built (this feeds the
        verifier, which reads every entry).
        """
        after = int(start) - 1
        while True:
            with self._errors():
                raw = self.engine.raw_connection()
                try:
                    cur = raw.cursor()
                    cur.execute(_SCAN.format(after=after, limit=_SCAN_BATCH))
                    rows = cur.fetchall()
                    raw.rollback()
                finally:
                    raw.close()
            for seq, envelope, leaf, content, redacted in rows:
                yield StoredEntry(seq, _blob(envelope), _blob(leaf),
                                  None if content is None else _blob(content), bool(redacted))
            if len(rows) < _SCAN_BATCH:
                return
            after = rows[-1][0]

    def iter_checkpoints(self) -> Iterator[StoredCheckpoint]:
        """Stream every stored checkpoint by size."""
        with self._errors(), self.engine.connect() as conn:
            rows = conn.execute(sa.select(_C.c.size, _C.c.note).order_by(_C.c.size)).all()
        for size, note in rows:
            yield StoredCheckpoint(size=size, note=note)

    def latest_checkpoint(self, conn: Connection | None = None) -> sa.Row[Any] | None:
        """Return the checkpoint row of the largest size, or None."""
        q = sa.select(_C).order_by(_C.c.size.desc()).limit(1)
        if conn is not None:
            return conn.execute(q).first()
        with self._errors(), self.engine.connect() as c:
            return c.execute(q).first()

    def first_checkpoint_covering(self, seq: int) -> sa.Row[Any] | None:
        """Return the latest checkpoint row whose size exceeds ``seq``, or None."""
        q = sa.select(_C).where(_C.c.size > seq).order_by(_C.c.size.desc()).limit(1)
        with self._errors(), self.engine.connect() as conn:
            return conn.execute(q).first()

    def insert_checkpoint(
        self, conn: Connection, size: int, root: bytes, note: str, vkeys: list[str]
    ) -> None:
        """Persist a signed checkpoint and its signers' vkeys in the caller's transaction."""
        conn.execute(sa.insert(_C).values(size=size, root=root, note=note))
        known = {k for (k,) in conn.execute(sa.select(_K.c.vkey).where(_K.c.vkey.in_(vkeys)))}
        for vkey in vkeys:
            if vkey not in known:
                conn.execute(sa.insert(_K).values(vkey=vkey, first_size=size))

    def vkeys(self) -> list[str]:
        """Return the verifier keys that signed checkpoints, oldest first."""
        with self._errors(), self.engine.connect() as conn:
            q = sa.select(_K.c.vkey).order_by(_K.c.first_size, _K.c.vkey)
            return [k for (k,) in conn.execute(q)]


def _blob(value: Any) -> bytes:
    """Bytes of a stored blob (a row edited by hand may hold text instead)."""
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _payload_params(r: NewRow) -> dict[str, Any]:
    return {"seq": r.seq, "digest": r.payload_digest, "content": r.payload, "redacted": False}


def _entry_params(r: NewRow) -> dict[str, Any]:
    return {
        "seq": r.seq,
        "leaf_hash": r.leaf_hash,
        "envelope": r.envelope,
        "type": r.type,
        "subject_name": r.subject["name"],
        "subject_version": r.subject.get("version"),
        "subject_digest": r.subject.get("digest"),
        "actor": r.actor,
        "time": r.time,
    }


ENTRIES = _E
PAYLOADS = _P
CHECKPOINTS = _C
NODES = _N
HOLDS = _HOLDS
HEAD = _H
