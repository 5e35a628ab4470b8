"""PostgreSQL specifics of the audit store: append-only triggers and group commit.

Owns the SQL that only PostgreSQL runs: the triggers that refuse rewriting
history, the durability settings of write transactions and the append
transaction with its commit barrier. Opening the database, the tables and the
rows written live in :mod:`audit.store` and :mod:`audit._tables`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Engine

__all__ = ["DeferredWrites", "PostgresDatabase", "append_transaction", "can_group_commit",
           "install_guards", "make_durable"]

# Database-level protection: history is append-only. Entries, checkpoints and
# nodes refuse UPDATE, DELETE and TRUNCATE; a payload may only lose its content
# (content -> NULL with redacted = true, digest unchanged), which is the
# redaction path of audit.retention; the head only grows.
_GUARDS = """
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

# Group commit for appends, and why an acknowledged append is durable.
#
# The sequencer row lock is held until the append transaction ends; with a
# synchronous commit it would be held across the WAL fsync and appends could
# never share one. So the append transaction commits asynchronously (releasing
# the lock at once) and the caller is answered only after a second,
# synchronous commit of a transaction that wrote WAL (the barrier).
#
# - PostgreSQL docs, "Asynchronous Commit" (wal-async-commit.html): an
#   asynchronous commit returns before its WAL is flushed; a crash in that
#   window loses that transaction (the state is as if it had aborted), and
#   the database stays consistent because WAL is written and replayed in order,
#   so a crash loses a suffix of unflushed commits, never leaves a hole.
# - Docs, synchronous_commit (runtime-config-wal.html): with any value but
#   "off" (local, remote_write, on, remote_apply) a commit waits until its WAL
#   records, up to and including its commit record, are flushed to local disk.
#   WAL is one sequential stream: flushing up to an LSN flushes every record
#   before it (RecordTransactionCommit -> XLogFlush(XactLastRecEnd)).
# - The append's commit record was inserted before the barrier started: the
#   barrier runs on the same backend after the append's COMMIT (in the same
#   Query message, or after its reply; one backend runs statements in order),
#   so it lies below the barrier's commit record; when the barrier's
#   synchronous commit returns, the append is on disk. A flush writes all WAL
#   inserted so far, so one fsync can serve several writers' barriers (group
#   commit; see also commit_delay).
# - The barrier must write WAL: a transaction without an xid writes no commit
#   record and does not wait. pg_logical_emit_message(transactional => true)
#   writes a WAL record in the transaction and assigns an xid (docs,
#   functions-admin.html, "Replication Management Functions").
# - The barrier must really be synchronous: SET LOCAL in the append
#   transaction ends with it, but a server, database or role default of
#   synchronous_commit = off (postgresql.conf, ALTER ROLE/DATABASE ... SET)
#   would make the barrier, and any plain commit, asynchronous too, and an
#   acknowledged append could be lost. So every write transaction and the
#   barrier raise an "off" setting to "on" for themselves (set_config with
#   is_local = true) and keep any other value (each of which flushes locally).
# Without EXECUTE on pg_logical_emit_message the store commits each append
# synchronously instead (made durable the same way).
_ASYNC_COMMIT = "SET LOCAL synchronous_commit = off"
_DURABLE_COMMIT = (
    "SELECT set_config('synchronous_commit', CASE current_setting('synchronous_commit') "
    "WHEN 'off' THEN 'on' ELSE current_setting('synchronous_commit') END, true)"
)
# A transactional WAL record (an empty logical message) so the commit writes
# WAL and must flush it; a bare xid assignment writes none and would not wait.
_FLUSH_BARRIER = "SELECT pg_logical_emit_message(true, 'policyengine.audit', '')"
_BEGIN, _COMMIT, _ROLLBACK = "BEGIN", "COMMIT", "ROLLBACK"
_SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"


def install_guards(conn: Connection) -> None:
    """Create or replace the append-only triggers in the caller's transaction."""
    # On the driver cursor without parameters, so '%' in RAISE is literal.
    conn.connection.dbapi_connection.cursor().execute(_GUARDS)  # type: ignore[union-attr]


def make_durable(conn: Connection) -> None:
    """Make the commit of the caller's transaction wait for the WAL flush."""
    conn.exec_driver_sql(_DURABLE_COMMIT)


def can_group_commit(engine: Engine) -> bool:
    """True when this role may write the barrier's WAL message."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(_FLUSH_BARRIER)
            conn.rollback()
    except exc.DBAPIError:
        return False
    return True


def _barrier_transaction() -> str:
    """The barrier as one transaction in one message (read at call time, for tests)."""
    return f"{_BEGIN}; {_DURABLE_COMMIT}; {_FLUSH_BARRIER}; {_COMMIT}"


class _Batch:
    """Stands in for the cursor while an append is built: collects its statements.

    Parameters are bound on the client (psycopg ``ClientCursor.mogrify``,
    which quotes every value), so the statements, the COMMIT and the barrier
    travel as one simple Query message: one round trip, one driver call.
    """

    def __init__(self, cur: Any) -> None:
        self._cur = cur
        self.statements: list[str] = []

    def execute(self, statement: str, params: Any = None) -> None:
        """Add one statement with its parameters bound."""
        self.statements.append(self._cur.mogrify(statement, params))

    def executemany(self, statement: str, params_seq: Iterable[Any]) -> None:
        """Add the statement once per parameter set."""
        for params in params_seq:
            self.execute(statement, params)


@contextmanager
def _simple_queries(conn: Any, invalidate: Callable[[], None]) -> Iterator[Any]:
    """A client-binding cursor on psycopg ``conn`` with transactions in explicit SQL.

    Statements, BEGIN and COMMIT included, are sent together as one simple
    Query message (docs, protocol-flow.html, "Multiple Statements in a Simple
    Query": after a failing statement the rest is not run). On an error the
    aborted transaction block is rolled back; a connection left in any other
    state is ``invalidate``d rather than returned to the pool.
    """
    from psycopg import ClientCursor  # only here: psycopg is the postgres extra
    from psycopg.pq import TransactionStatus

    conn.autocommit = True  # psycopg would otherwise begin transactions itself
    try:
        yield ClientCursor(conn)
    except BaseException:
        if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
            conn.execute(_ROLLBACK)
        raise
    finally:
        if conn.closed or conn.info.transaction_status != TransactionStatus.IDLE:
            invalidate()  # never hand a half-finished session back to the pool
        else:
            conn.autocommit = False


class DeferredWrites:
    """A write transaction's ``Tx`` inside :func:`append_transaction`: reads at once, writes last.

    ``rows`` runs on the transaction's cursor when called (the sequencer is
    held); ``execute`` and the ``cursor`` (the statement collector) only add
    the statement to the final message, which carries every write, the COMMIT
    and the barrier. So a caller's reads must not depend on its own writes in
    the same transaction: the signed append reads the key in force, the last
    checkpoint, the tree and the known keys before anything it writes.
    """

    __slots__ = ("_cur", "_sql", "cursor")

    def __init__(self, batch: _Batch, sql: Callable[[str], str]) -> None:
        self.cursor, self._cur, self._sql = batch, batch._cur, sql

    def execute(self, statement: str, params: tuple[Any, ...] = ()) -> None:
        """Add one write (``?`` placeholders) to the final message."""
        self.cursor.execute(self._sql(statement), params)

    def rows(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a query now, in the transaction, and return its rows."""
        self._cur.execute(self._sql(statement), params)
        return list(self._cur.fetchall())


@contextmanager
def append_transaction(
    raw: Any, head_sql: str, *, group_commit: bool
) -> Iterator[tuple[_Batch, tuple[Any, ...]]]:
    """The append transaction on a driver connection in two round trips; returns once durable.

    Yields a statement collector standing in for the cursor and the head row
    read with ``head_sql`` (SELECT ... FOR UPDATE: the sequencer). Round trip
    one is BEGIN, the commit setting and the head read; round trip two is
    the collected writes, COMMIT and, with group commit, the whole barrier
    transaction. So the lock is held for one client turn, and a barrier
    costs no round trip of its own: it may follow before the append's COMMIT
    is answered because the server runs the statements of one Query message
    in order, so the append's commit record is in WAL before the barrier
    transaction begins (see the comment above ``_ASYNC_COMMIT``).

    Errors (docs, protocol-flow.html, "Multiple Statements in a Simple
    Query"): the statements after a failing one are not run, so an append
    that fails commits nothing and writes no barrier; the transaction block
    it leaves aborted is rolled back here, and the error is raised: nothing
    is acknowledged. A COMMIT that is answered but whose barrier fails (the
    connection dropped) raises too: the entry may be stored, it was never
    acknowledged.

    Args:
        raw: a pooled DBAPI (psycopg) connection.
        head_sql: the head query, without parameters.
        group_commit: commit asynchronously, then wait on a flush barrier.
    """
    with _simple_queries(raw.driver_connection, raw.invalidate) as cur:
        setting = _ASYNC_COMMIT if group_commit else _DURABLE_COMMIT
        cur.execute(f"{_BEGIN}; {setting}; {head_sql}")
        while cur.nextset():  # to the last result: the head row
            pass
        head = cur.fetchone()
        if head is None:  # pragma: no cover - the schema always holds the head row
            raise RuntimeError("audit_head has no row")
        batch = _Batch(cur)
        yield batch, head
        tail = f"{_COMMIT}; {_barrier_transaction()}" if group_commit else _COMMIT
        cur.execute("; ".join([*batch.statements, tail]))


class PostgresDatabase:
    """A PostgreSQL log: pooled connections (SQLAlchemy's pool, pre-pinged) used on the driver.

    Statements are written with qmark placeholders and run on psycopg
    cursors as ``%s`` (:meth:`sql`); none of them holds a literal ``?`` or ``%``.
    """

    dialect = "postgresql"

    def __init__(self, engine: Engine) -> None:
        """Use ``engine``'s pool; group commit is settled by :meth:`settle_group_commit`."""
        self.engine = engine
        self.group_commit = False
        dbapi = engine.dialect.dbapi
        self.operational_errors: tuple[type[Exception], ...] = (
            exc.OperationalError, dbapi.OperationalError)  # type: ignore[union-attr]
        self.database_errors: tuple[type[Exception], ...] = (
            exc.DatabaseError, dbapi.DatabaseError)  # type: ignore[union-attr]
        self._converted: dict[str, str] = {}

    def sql(self, statement: str) -> str:
        """``statement`` with psycopg's ``%s`` placeholders."""
        text = self._converted.get(statement)
        if text is None:
            text = self._converted[statement] = statement.replace("?", "%s")
        return text

    def settle_group_commit(self) -> None:
        """Commit appends asynchronously behind a flush barrier when the role may."""
        self.group_commit = can_group_commit(self.engine)

    @contextmanager
    def reading(self, *, snapshot: bool = False) -> Iterator[Any]:
        """A cursor on a pooled connection, in one transaction rolled back at the end.

        With ``snapshot`` every statement of the transaction sees the same
        snapshot: READ COMMITTED (the default) takes one per statement, so the
        transaction is made REPEATABLE READ, READ ONLY (docs,
        transaction-iso.html: the snapshot is taken at its first query; a
        read-only transaction there never fails to serialize).
        """
        raw = self.engine.raw_connection()
        try:
            cur = raw.cursor()
            if snapshot:
                cur.execute(_SNAPSHOT)
            yield cur
            raw.rollback()
        finally:
            raw.close()

    @contextmanager
    def sequenced(self, head_sql: str) -> Iterator[tuple[_Batch, tuple[Any, ...]]]:
        """:func:`append_transaction` on a pooled connection: (statement collector, head row)."""
        raw = self.engine.raw_connection()
        try:
            with append_transaction(raw, head_sql, group_commit=self.group_commit) as pair:
                yield pair
        finally:
            raw.close()

    def deferred(self, batch: _Batch) -> DeferredWrites:
        """The ``Tx`` of a :meth:`sequenced` transaction (reads at once, writes last)."""
        return DeferredWrites(batch, self.sql)

    @contextmanager
    def writing(self) -> Iterator[Any]:
        """A write transaction; returns once its commit is durable (appends, which
        may share a flush barrier, go through :meth:`sequenced`)."""
        with self.engine.connect() as conn, conn.begin():
            make_durable(conn)
            yield conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()
