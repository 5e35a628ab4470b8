"""Durable storage of the audit log on SQLite or PostgreSQL.

Owns opening a database by URL, the write transaction that serialises appends
(one sequencer, so any number of processes produce one linear chain),
persisting entries with their Merkle nodes, and streaming reads. Every
statement runs on the driver's DB-API cursor (:mod:`audit._sql`); the tables
are declared once in :mod:`audit._tables` (SQLModel), which creates them.
SQLite's connections and append queue live in :mod:`audit._sqlite`;
PostgreSQL's pool, append-only triggers and group commit in :mod:`audit._postgres`.

It does not build envelopes or hashes (:mod:`audit.log`), compute tree nodes
(:mod:`audit.tree`) or decide what may be redacted (:mod:`audit.retention`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, cast

from audit._sql import (
    HISTORY_INDEX_NAMES,
    SQLITE_STATEMENTS,
    TABLE_NAMES,
    Condition,
    Tx,
    entry_params,
    entry_tuple,
    payload_params,
    payload_tuple,
)
from audit._sqlite import SqliteDatabase, sqlite_path
from audit.errors import LogUnavailableError, StorageError
from audit.records import (
    CheckpointRecord,
    EntryRecord,
    EntryStream,
    EntryTuple,
    Head,
    NewRow,
    StoredCheckpoint,
    StoredEntry,
)
from audit.tree import Coord, TreeReader, extend, pack_frontier, unpack_frontier

if TYPE_CHECKING:
    from audit._postgres import PostgresDatabase

__all__ = [
    "CheckpointRecord",
    "Condition",
    "EntryRecord",
    "Head",
    "NewRow",
    "Store",
    "StoredCheckpoint",
    "StoredEntry",
    "Tx",
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
_ROWS = ("SELECT e.seq, e.leaf_hash, e.envelope, e.type, e.subject_name, e.subject_version, "
         "e.subject_digest, e.actor, e.time, p.content, p.redacted, p.digest "
         "FROM audit_entries e LEFT OUTER JOIN audit_payloads p ON p.seq = e.seq")
_HEAD = "SELECT origin, size, last_leaf, frontier FROM audit_head WHERE id = 1"
_CHECKPOINT = "SELECT size, root, note FROM audit_checkpoints"


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
    db: Any
    if url.startswith("sqlite:"):
        db = SqliteDatabase(sqlite_path(url, create, _unavailable))
    elif url.startswith(("postgresql:", "postgresql+psycopg:", "postgres:")):
        if url.startswith("postgres:") or url.startswith("postgresql:"):
            url = "postgresql+psycopg:" + url.split(":", 1)[1]
        try:
            import sqlalchemy as sa

            from audit._postgres import PostgresDatabase

            db = PostgresDatabase(sa.create_engine(url, pool_pre_ping=True))
        except Exception as e:
            raise _unavailable(url, str(e).splitlines()[0], "check the URL") from e
    else:
        raise _unavailable(
            url,
            "expected a sqlite:/// or postgresql+psycopg:// URL",
            "set --log or POLICYENGINE_LOG_URL",
        )
    store = Store(db, url)
    store.ensure_schema(create=create)
    return store


class Store:
    """The audit tables in one database; appends are serialised by the database.

    Every statement runs on the driver (DB-API) cursor; SQLAlchemy is
    imported only to create the schema, on PostgreSQL, or when :attr:`engine`
    is asked for.
    """

    def __init__(self, db: SqliteDatabase | PostgresDatabase, url: str) -> None:
        """Wrap an opened database; use :func:`open_store`, which also creates the schema."""
        self.db = db
        self.url = url
        self.dialect = db.dialect
        self.tree = TreeReader(self.fetch_nodes)
        self._snapshots = threading.local()
        """``cursor``: this thread's open :meth:`snapshot` read, if any."""
        self._sql: Any = SQLITE_STATEMENTS
        self._engine: Any = None
        if not isinstance(db, SqliteDatabase):
            from audit._tables import CompiledStatements

            self._sql = CompiledStatements(db.engine.dialect)
            self._engine = db.engine

    @property
    def engine(self) -> Any:
        """A SQLAlchemy engine on this database (built on first use on SQLite)."""
        if self._engine is None:
            from audit._sqlite import sqlite_engine

            assert isinstance(self.db, SqliteDatabase)
            self._engine = sqlite_engine(self.db.path)
        return self._engine

    def close(self) -> None:
        """Release connections and the append queue file."""
        if self._engine is not None and isinstance(self.db, SqliteDatabase):
            self._engine.dispose()
        self.db.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn driver and pool errors into audit errors naming the log."""
        try:
            yield
        except Exception as e:
            # A driver error, raised by the driver or wrapped by SQLAlchemy (schema creation).
            cause = getattr(e, "orig", None)
            for errors, unavailable in ((self.db.operational_errors, True),
                                        (self.db.database_errors, False)):
                if isinstance(e, errors) or isinstance(cause, errors):
                    raise self._wrap(e, unavailable=unavailable) from e
            raise

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

    def rows(self, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Rows of one query (``?`` placeholders), in its own read transaction or in
        this thread's :meth:`snapshot`."""
        pinned = getattr(self._snapshots, "cursor", None)
        reading = self.db.reading() if pinned is None else nullcontext(pinned)
        with self._errors(), reading as cur:
            cur.execute(self.db.sql(statement), params)
            return list(cur.fetchall())

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads of this thread inside the block run in one read transaction: one
        snapshot of the log, one connection (on PostgreSQL one pool checkout
        instead of one per query). A nested block joins the outer one.
        """
        if getattr(self._snapshots, "cursor", None) is not None:
            yield
            return
        with self._errors(), self.db.reading(snapshot=True) as cur:
            self._snapshots.cursor = cur
            try:
                yield
            finally:
                self._snapshots.cursor = None

    def existing(self, names: tuple[str, ...]) -> set[str]:
        """Which of ``names`` are tables or indexes of this database (one read)."""
        marks = ", ".join("?" * len(names))
        if self.dialect == "sqlite":
            return {n for (n,) in self.rows(
                f"SELECT name FROM sqlite_master WHERE name IN ({marks})", names)}
        return {n for (n,) in self.rows(
            f"SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            f"AND tablename IN ({marks}) UNION ALL SELECT indexname FROM pg_indexes "
            f"WHERE schemaname = current_schema() AND indexname IN ({marks})", names + names)}

    def _schema(self) -> tuple[bool, list[str]]:
        """(every table and the head row exist, history indexes missing); read only."""
        found = self.existing(TABLE_NAMES + HISTORY_INDEX_NAMES)
        initialised = set(TABLE_NAMES) <= found and bool(self.rows("SELECT id FROM audit_head"))
        return initialised, [n for n in HISTORY_INDEX_NAMES if n not in found]

    def ensure_schema(
        self, origin: str = "policyengine.local/audit", *, create: bool = True
    ) -> None:
        """Create tables, guards and the head row once, safely under concurrency.

        An initialised log is only read, so opening it needs no write access
        (an auditor's read-only copy) and does not queue behind appenders. A
        log made before the history indexes gains them when opened to write.
        """
        initialised, missing = self._schema()
        if not initialised:
            if not create:
                raise _unavailable(self.url, "no audit log in this database",
                                   "check --log or POLICYENGINE_LOG_URL")
            from audit._tables import create_schema

            with self._errors():
                create_schema(self, origin)
        elif create and missing:
            from audit._tables import create_indexes

            try:
                with self._errors():
                    create_indexes(self, missing)
            except StorageError:  # a read-only copy: queries stay right, only slower
                pass
        if not isinstance(self.db, SqliteDatabase):
            self.db.settle_group_commit()

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """A write transaction (SQLite BEGIN IMMEDIATE, queued like appends); commits on
        success and returns once the commit is durable."""
        db = self.db
        with self._errors(), db.writing() as cur:
            yield Tx(cur, db.sql)

    @contextmanager
    def locked(self, *, barrier: bool = False) -> Iterator[tuple[Tx, Head]]:
        """A write transaction holding the sequencer, with the head read inside it.

        With ``barrier`` on PostgreSQL (the signed append): reads run at once,
        every write goes in one message with the COMMIT and the barrier
        (:class:`audit._postgres.DeferredWrites`), so the sequencer is held
        for the reads' round trips and one more, not one per statement.
        """
        db = self.db
        if not barrier or isinstance(db, SqliteDatabase):
            with self.write() as tx:
                yield tx, self._read_locked_head(tx.cursor)
            return
        with self._errors(), db.sequenced(self._sql.head) as (batch, row):
            yield cast(Tx, db.deferred(batch)), self._head(row)

    @contextmanager
    def appending(self) -> Iterator[tuple[Any, Head]]:
        """The hot append transaction on a driver cursor: (cursor, head).

        On SQLite the process's kept append connection (:mod:`audit._sqlite`)
        with the statements of :mod:`audit._sql`; on PostgreSQL a pooled one
        with the statements compiled from the tables
        (:class:`audit._tables.CompiledStatements`), in two round trips.
        Returns only once the transaction is durable.
        """
        db = self.db
        if isinstance(db, SqliteDatabase):
            with self._errors(), db.writing() as cur:
                yield cur, self._read_locked_head(cur)
            return
        with self._errors(), db.sequenced(self._sql.head) as (batch, row):
            yield batch, self._head(row)

    def _read_locked_head(self, cur: Any) -> Head:
        cur.execute(self._sql.head)
        return self._head(cur.fetchone())

    @staticmethod
    def _head(row: tuple[Any, ...]) -> Head:
        origin, size, last, frontier = row
        return Head(origin, size, bytes(last), unpack_frontier(bytes(frontier), size))

    def set_origin(self, tx: Tx, origin: str) -> None:
        """Name the log (only while it is empty)."""
        tx.execute("UPDATE audit_head SET origin = ? WHERE id = 1", (origin,))

    def insert_entries(self, cur: Any, head: Head, rows: list[NewRow]) -> Head:
        """Persist rows (seq head.size..), their payloads and completed nodes; move the head.

        ``cur`` is the driver cursor of :meth:`appending`, or ``tx.cursor`` of
        :meth:`locked`, inside its transaction.
        """
        frontier, nodes = extend(head.size, head.frontier, [r.leaf_hash for r in rows])
        sql = self._sql
        size = head.size + len(rows)
        last = rows[-1].leaf_hash
        move: Any = (size, last, pack_frontier(frontier))
        node_params: list[Any] = nodes
        entry: Callable[[NewRow], Any] = entry_tuple
        payload: Callable[[NewRow], Any] = payload_tuple
        if not sql.positional:
            from audit._tables import MOVE_PARAMS, NODE_PARAMS

            entry, payload = entry_params, payload_params
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
        (row,) = self.rows(_HEAD)
        return self._head(row)

    def size(self) -> int:
        """Return the number of entries."""
        ((size,),) = self.rows("SELECT size FROM audit_head WHERE id = 1")
        return int(size)

    def fetch_nodes(self, coords: set[Coord], tx: Tx | None = None) -> dict[Coord, bytes]:
        """Read node hashes by (level, index) in one round trip; level 0 is the leaf hash.

        The coordinates are integers computed by :mod:`audit.tree`, written
        into the SQL as literals (``int()``-checked) so the statement needs no
        per-call compilation; each level is an indexed primary-key lookup.
        With ``tx`` the read runs in the caller's transaction (its snapshot,
        its connection), else in a read transaction of its own.
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
        query = " UNION ALL ".join(parts)
        rows = self.rows(query) if tx is None else tx.rows(query)
        return {(lv, i): _blob(h) for lv, i, h in rows}

    def tree_in(self, tx: Tx) -> TreeReader:
        """The tree as the caller's transaction sees it (the append's checks read it so)."""
        return TreeReader(lambda coords: self.fetch_nodes(coords, tx))

    def iter_rows(
        self, where: Iterable[Condition] = (), *, start: int = 0, descending: bool = False,
        before: int | None = None,
    ) -> Iterator[EntryRecord]:
        """Stream entry rows joined with payloads in seq order, in batches (flat memory)."""
        base = list(where)
        cursor: int | None = before if descending else start - 1
        order = "DESC" if descending else "ASC"
        while True:
            conditions = list(base)
            if cursor is not None:
                conditions.append(Condition("e.seq < ?" if descending else "e.seq > ?",
                                            (cursor,)))
            clause = Condition.all_of(conditions)
            rows = self.rows(f"{_ROWS} WHERE {clause.sql} ORDER BY e.seq {order} "
                              f"LIMIT {_BATCH:d}", clause.params)
            yield from map(EntryRecord._make, rows)
            if len(rows) < _BATCH:
                return
            cursor = rows[-1][0]

    def count(self, where: Iterable[Condition] = ()) -> int:
        """How many entries match every condition."""
        clause = Condition.all_of(where)
        ((n,),) = self.rows(f"SELECT count(*) FROM audit_entries e WHERE {clause.sql}",
                             clause.params)
        return int(n)

    def subject_names(self) -> list[str]:
        """Every subject name the log holds, sorted."""
        rows = self.rows("SELECT DISTINCT subject_name FROM audit_entries "
                          "ORDER BY subject_name")
        return [name for (name,) in rows]

    def iter_entries(self, start: int = 0) -> EntryStream:
        """Stream every entry from ``start`` as :class:`StoredEntry`, in seq order.

        Keyset batches of :data:`_SCAN_BATCH` rows on the driver cursor: memory
        stays flat and no row objects are built. The verifier, which reads
        every entry, takes the rows as plain tuples (:meth:`EntryStream.rows`).
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
        rows = self.rows((_SQLITE_SCAN if sqlite else _SCAN).format(
            after=int(after), limit=_SCAN_BATCH))
        if sqlite:  # CAST(... AS BLOB) already made every value bytes
            return cast(list[tuple[int, bytes, bytes, bytes | None, Any]], rows)
        return [(s, _blob(e), _blob(h), None if c is None else _blob(c), r)
                for s, e, h, c, r in rows]

    def iter_checkpoints(self) -> Iterator[StoredCheckpoint]:
        """Stream every stored checkpoint by size."""
        for size, note in self.rows("SELECT size, note FROM audit_checkpoints ORDER BY size"):
            yield StoredCheckpoint(size=size, note=note)

    def latest_checkpoint(self, tx: Tx | None = None) -> CheckpointRecord | None:
        """Return the checkpoint row of the largest size, or None."""
        q = f"{_CHECKPOINT} ORDER BY size DESC LIMIT 1"
        rows = self.rows(q) if tx is None else tx.rows(q)
        return CheckpointRecord(rows[0][0], _blob(rows[0][1]), rows[0][2]) if rows else None

    def first_checkpoint_covering(self, seq: int) -> CheckpointRecord | None:
        """Return the latest checkpoint row whose size exceeds ``seq``, or None."""
        rows = self.rows(f"{_CHECKPOINT} WHERE size > ? ORDER BY size DESC LIMIT 1",
                          (int(seq),))
        return CheckpointRecord(rows[0][0], _blob(rows[0][1]), rows[0][2]) if rows else None

    def insert_checkpoint(
        self, tx: Tx, size: int, root: bytes, note: str, vkeys: list[str]
    ) -> None:
        """Persist a signed checkpoint and its signers' vkeys in the caller's transaction."""
        tx.execute("INSERT INTO audit_checkpoints (size, root, note) VALUES (?, ?, ?)",
                   (size, root, note))
        marks = ", ".join("?" * len(vkeys))
        known = {k for (k,) in tx.rows(f"SELECT vkey FROM audit_keys WHERE vkey IN ({marks})",
                                       tuple(vkeys))}
        for vkey in vkeys:
            if vkey not in known:
                tx.execute("INSERT INTO audit_keys (vkey, first_size) VALUES (?, ?)",
                           (vkey, size))

    def vkeys(self) -> list[str]:
        """Return the verifier keys that signed checkpoints, oldest first."""
        return [k for (k,) in self.rows(
            "SELECT vkey FROM audit_keys ORDER BY first_size, vkey")]


def _blob(value: Any) -> bytes:
    """Bytes of a stored blob (a row edited by hand may hold text instead)."""
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)
