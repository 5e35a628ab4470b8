"""Durable storage of the audit log on SQLite or PostgreSQL.

Owns opening a database by URL, the write transaction that serialises appends
(one sequencer, so any number of processes produce one linear chain),
persisting entries with their Merkle nodes, and streaming reads. The tables
are defined in :mod:`audit._tables` (re-exported here); SQLite's engine and
append queue in :mod:`audit._sqlite`; PostgreSQL's append-only triggers and
group commit in :mod:`audit._postgres`.

It does not build envelopes or hashes (:mod:`audit.log`), compute tree nodes
(:mod:`audit.tree`) or decide what may be redacted (:mod:`audit.retention`).
The hot path uses SQLAlchemy Core statements on these tables, not ORM sessions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Connection, Engine

from audit import _postgres
from audit._sqlite import AppendQueue, sqlite_engine
from audit._tables import (
    CHECKPOINTS,
    ENTRIES,
    HEAD,
    HISTORY_INDEXES,
    HOLDS,
    KEYS,
    MOVE_PARAMS,
    NODE_PARAMS,
    NODES,
    PAYLOADS,
    TABLES,
    CheckpointRow,
    CompiledStatements,
    EntryRow,
    HoldRow,
    KeyRow,
    NodeRow,
    PayloadRow,
    metadata,
)
from audit.errors import LogUnavailableError, StorageError
from audit.records import EntryStream, EntryTuple, StoredCheckpoint, StoredEntry
from audit.tree import Coord, TreeReader, extend, pack_frontier, unpack_frontier

__all__ = [
    "CHECKPOINTS",
    "ENTRIES",
    "HEAD",
    "HOLDS",
    "NODES",
    "PAYLOADS",
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

_BATCH = 2000
_SCAN_BATCH = 10000
# The verifier's scan; integers only are formatted in (see iter_entries).
_SCAN = (
    "SELECT e.seq, e.envelope, e.leaf_hash, p.content, p.redacted FROM audit_entries e "
    "LEFT JOIN audit_payloads p ON p.seq = e.seq WHERE e.seq > {after:d} "
    "ORDER BY e.seq LIMIT {limit:d}"
)
# SQLite: a row edited by hand may hold text; CAST(text AS BLOB) gives its
# UTF-8 bytes, so the scan yields bytes without a Python call per value.
_SQLITE_SCAN = _SCAN.replace("e.envelope, e.leaf_hash, p.content", "CAST(e.envelope AS BLOB), "
                             "CAST(e.leaf_hash AS BLOB), CAST(p.content AS BLOB)")

_E, _P, _C, _H, _K = ENTRIES, PAYLOADS, CHECKPOINTS, HEAD, KEYS


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


class NewRow(NamedTuple):
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



def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _unavailable(url: str, why: str, fix: str) -> LogUnavailableError:
    return LogUnavailableError(f"audit log unavailable at {mask_url(url)}: {why}; {fix}")


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
        engine = sqlite_engine(url, create, _unavailable)
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
        self._sql = CompiledStatements(engine.dialect)
        self._group_commit = False
        lock_path = None
        if self.dialect == "sqlite" and engine.url.database:
            lock_path = engine.url.database + "-appendlock"
        self._queue = AppendQueue(lock_path, engine.url.database)

    def close(self) -> None:
        """Release pooled connections and the append queue file."""
        self.engine.dispose()
        self._queue.close()

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
            if not {t.name for t in TABLES} <= names:
                return False
            return conn.execute(sa.select(_H.c.id)).first() is not None

    def _missing_indexes(self) -> list[sa.Index]:
        """History indexes a log made before them lacks (one catalog query)."""
        wanted = [str(ix.name) for ix in HISTORY_INDEXES]
        if self.dialect == "sqlite":
            listing = sa.text("SELECT name FROM sqlite_master WHERE type = 'index' "
                              "AND name IN :names")
        else:
            listing = sa.text("SELECT indexname FROM pg_indexes WHERE "
                              "schemaname = current_schema() AND indexname IN :names")
        listing = listing.bindparams(sa.bindparam("names", expanding=True))
        with self._errors(), self.engine.connect() as conn:
            found = set(conn.execute(listing, {"names": wanted}).scalars())
        return [ix for ix in HISTORY_INDEXES if ix.name not in found]

    def ensure_schema(
        self, origin: str = "policyengine.local/audit", *, create: bool = True
    ) -> None:
        """Create tables, guards and the head row once, safely under concurrency.

        An initialised log is only read, so opening it needs no write access
        (an auditor's read-only copy) and does not queue behind appenders. A
        log made before the history indexes gains them when opened to write.
        """
        if not self._initialised():
            if not create:
                raise _unavailable(self.url, "no audit log in this database",
                                   "check --log or POLICYENGINE_LOG_URL")
            self._create_schema(origin)
        elif create:
            missing = self._missing_indexes()
            if missing:
                try:
                    with self.write() as conn:
                        for index in missing:
                            index.create(conn, checkfirst=True)
                except StorageError:  # a read-only copy: queries stay right, only slower
                    pass
        if self.dialect == "postgresql":
            self._group_commit = _postgres.can_group_commit(self.engine)

    def _create_schema(self, origin: str) -> None:
        with self._errors(), self.write() as conn:
            if self.dialect == "postgresql":
                # Serialises schema creation between processes (DDL is transactional).
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7254119)")
            metadata.create_all(conn, tables=TABLES)
            if self.dialect == "postgresql":
                _postgres.install_guards(conn)
            if conn.execute(sa.select(_H.c.id)).first() is None:
                conn.execute(
                    sa.insert(_H).values(
                        id=1, origin=origin, size=0, last_leaf=bytes(32), frontier=b""
                    )
                )

    @contextmanager
    def write(self, *, barrier: bool = False) -> Iterator[Connection]:
        """A write transaction (SQLite BEGIN IMMEDIATE, queued like appends); commits on success.

        Returns once the commit is durable. With ``barrier`` on PostgreSQL (when
        the role may, see :mod:`audit._postgres`) the transaction commits
        asynchronously, releasing the sequencer at once, and durability comes
        from the flush barrier after it: appends share WAL flushes.
        """
        group = barrier and self._group_commit
        with self._errors(), self._queue.turn(), self.engine.connect() as conn:
            conn = conn.execution_options(write=True)
            with conn.begin():
                if group:
                    _postgres.make_async(conn)
                elif self.dialect == "postgresql":
                    _postgres.make_durable(conn)
                yield conn
            if group:
                _postgres.flush_barrier(conn)

    @contextmanager
    def locked(self, *, barrier: bool = False) -> Iterator[tuple[Connection, Head]]:
        """A write transaction holding the sequencer, with the head read inside it."""
        with self.write(barrier=barrier) as conn:
            cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            yield conn, self._read_locked_head(cur)

    @contextmanager
    def appending(self) -> Iterator[tuple[Any, Head]]:
        """The hot append transaction on a DBAPI connection: (cursor, head).

        On SQLite the process's kept append connection (:mod:`audit._sqlite`),
        elsewhere a pooled one.

        Statements are the Core statements of these tables compiled once
        (:class:`audit._tables.CompiledStatements`); executing them on the driver cursor skips
        SQLAlchemy's per-call overhead, which costs more than SQLite's commit.
        Returns only once the transaction is durable.
        """
        if self.dialect == "sqlite":
            with self._errors(), self._sqlite_append() as pair:
                yield pair
            return
        with self._errors():
            raw = self.engine.raw_connection()
            try:
                with _postgres.append_transaction(
                        raw, self._sql.head, group_commit=self._group_commit) as (cur, row):
                    yield cur, self._head(row)
            finally:
                raw.close()

    @contextmanager
    def _sqlite_append(self) -> Iterator[tuple[Any, Head]]:
        """On the process's kept append connection, which only the queue's holder uses."""
        with self._queue.turn():
            raw = self._queue.connection()
            try:
                cur = raw.cursor()
                cur.execute("BEGIN IMMEDIATE")  # take the write lock before reading the head
                try:
                    yield cur, self._read_locked_head(cur)
                except BaseException:
                    raw.rollback()
                    raise
                raw.commit()
            except BaseException:
                self._queue.discard()  # a failed connection is not reused
                raise

    def _read_locked_head(self, cur: Any) -> Head:
        cur.execute(self._sql.head)
        return self._head(cur.fetchone())

    @staticmethod
    def _head(row: tuple[Any, ...]) -> Head:
        origin, size, last, frontier = row
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
        size = head.size + len(rows)
        last = rows[-1].leaf_hash
        move: Any = (size, last, pack_frontier(frontier))
        node_params: list[Any] = nodes
        entry: Callable[[NewRow], Any] = _entry_tuple
        payload: Callable[[NewRow], Any] = _payload_tuple
        if not sql.positional:
            entry, payload = _entry_params, _payload_params
            node_params = [dict(zip(NODE_PARAMS, n, strict=True)) for n in nodes]
            move = dict(zip(MOVE_PARAMS, move, strict=True))
        if len(rows) == 1:
            cur.execute(sql.entry, entry(rows[0]))
            cur.execute(sql.payload, payload(rows[0]))
        else:
            cur.executemany(sql.entry, [entry(r) for r in rows])
            cur.executemany(sql.payload, [payload(r) for r in rows])
        if node_params:
            cur.executemany(sql.node, node_params)
        cur.execute(sql.move, move)
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

    def iter_entries(self, start: int = 0) -> EntryStream:
        """Stream every entry from ``start`` as :class:`StoredEntry`, in seq order.

        Keyset batches of :data:`_SCAN_BATCH` rows on the driver cursor: memory
        stays flat and no SQLAlchemy row objects are built. The verifier,
        which reads every entry, takes the rows as plain tuples
        (:meth:`EntryStream.rows`).
        """
        return EntryStream(lambda: self._scan(int(start)))

    def _scan(self, start: int) -> Iterator[EntryTuple]:
        """Keyset batches of :data:`_SCAN_BATCH` rows in seq order (flat memory)."""
        after = start - 1
        while True:
            rows = self._scan_batch(after)
            yield from rows
            if len(rows) < _SCAN_BATCH:
                return
            after = rows[-1][0]

    def _scan_batch(self, after: int) -> list[EntryTuple]:
        sqlite = self.dialect == "sqlite"
        with self._errors():
            raw = self.engine.raw_connection()
            try:
                cur = raw.cursor()
                cur.execute((_SQLITE_SCAN if sqlite else _SCAN).format(
                    after=int(after), limit=_SCAN_BATCH))
                rows = cur.fetchall()
                raw.rollback()
            finally:
                raw.close()
        if sqlite:  # CAST(... AS BLOB) already made every value bytes
            return cast(list[tuple[int, bytes, bytes, bytes | None, Any]], rows)
        return [(s, _blob(e), _blob(h), None if c is None else _blob(c), r)
                for s, e, h, c, r in rows]

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


def _payload_tuple(r: NewRow) -> tuple[Any, ...]:
    """Payload bind values in ``PAYLOAD_PARAMS`` order."""
    return (r.seq, r.payload_digest, r.payload, False)


def _entry_tuple(r: NewRow) -> tuple[Any, ...]:
    """Entry bind values in ``ENTRY_PARAMS`` order."""
    subject = r.subject
    return (r.seq, r.leaf_hash, r.envelope, r.type, subject["name"], subject.get("version"),
            subject.get("digest"), r.actor, r.time)


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


