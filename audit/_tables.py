"""The audit log's tables (SQLModel): their declaration, creation and compiled statements.

Owns the schema only: table definitions, their SQLAlchemy ``Table`` objects,
creating them in a new log (:func:`create_schema`, :func:`create_indexes`) and
the Core statements PostgreSQL's append path executes on a driver cursor
(SQLite's are written out in :mod:`audit._sql`, tested equal). Imported only
on those paths: opening databases, transactions and reads live in
:mod:`audit.store`, which runs on the DB-API.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

__all__ = [
    "CHECKPOINTS",
    "ENTRIES",
    "HEAD",
    "HISTORY_INDEXES",
    "HOLDS",
    "KEYS",
    "NODES",
    "PAYLOADS",
    "TABLES",
    "CheckpointRow",
    "CompiledStatements",
    "EntryRow",
    "HeadRow",
    "HoldRow",
    "KeyRow",
    "NodeRow",
    "PayloadRow",
    "metadata",
]

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # rowid alias on SQLite


class _Base(SQLModel, registry=registry()):
    """Own metadata, so creating the audit tables touches no other table."""


class EntryRow(_Base, table=True):
    """One log entry: the envelope bytes exactly as hashed, plus query columns."""

    __tablename__ = "audit_entries"
    # A version's history reads (name, version, type) and a model's waivers
    # (name, type) in seq order, one type per query: these indexes seek to
    # exactly those rows, already in seq order, however many other entries
    # (earlier decisions) the subject has. With `type IN (...)` SQLite prefers a
    # one-column index that yields seq order and filters every entry of the version.
    __table_args__ = (
        sa.Index("ix_audit_entries_subject_type", "subject_name", "type", "seq"),
        sa.Index("ix_audit_entries_version_type",
                 "subject_name", "subject_version", "type", "seq"),
    )
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


ENTRIES = EntryRow.__table__  # type: ignore[attr-defined]
PAYLOADS = PayloadRow.__table__  # type: ignore[attr-defined]
CHECKPOINTS = CheckpointRow.__table__  # type: ignore[attr-defined]
NODES = NodeRow.__table__  # type: ignore[attr-defined]
HEAD = HeadRow.__table__  # type: ignore[attr-defined]
HOLDS = HoldRow.__table__  # type: ignore[attr-defined]
KEYS = KeyRow.__table__  # type: ignore[attr-defined]
TABLES = [ENTRIES, PAYLOADS, CHECKPOINTS, NODES, HOLDS, KEYS, HEAD]
HISTORY_INDEXES: list[sa.Index] = sorted(
    (ix for ix in ENTRIES.indexes
     if ix.name in ("ix_audit_entries_subject_type", "ix_audit_entries_version_type")),
    key=lambda ix: str(ix.name))
"""Indexes a log made before them gains when next opened for writing."""
metadata = _Base.metadata
"""The metadata holding only the audit tables."""
_E, _P, _N, _H = ENTRIES, PAYLOADS, NODES, HEAD


ENTRY_PARAMS = ("seq", "leaf_hash", "envelope", "type", "subject_name", "subject_version",
                "subject_digest", "actor", "time")
PAYLOAD_PARAMS = ("seq", "digest", "content", "redacted")
NODE_PARAMS = ("level", "idx", "hash")
MOVE_PARAMS = ("size", "last_leaf", "frontier")


class CompiledStatements:
    """The hot-path Core statements of these tables, compiled once per dialect.

    On SQLite they bind by position (``?``), in the orders ``ENTRY_PARAMS``,
    ``PAYLOAD_PARAMS``, ``NODE_PARAMS`` and ``MOVE_PARAMS``: tuples bind
    faster than dicts looked up by name. Elsewhere they bind dicts by name.
    """

    def __init__(self, dialect: sa.engine.Dialect) -> None:
        self.positional = dialect.name == "sqlite"
        if self.positional:
            from sqlalchemy.dialects import sqlite

            dialect = sqlite.dialect(paramstyle="qmark")

        def text(stmt: Any, order: tuple[str, ...] = ()) -> str:
            compiled = stmt.compile(dialect=dialect)
            if self.positional and list(compiled.positiontup or ()) != list(order):
                raise AssertionError(f"bind order {compiled.positiontup} is not {order}")
            return str(compiled)

        head = sa.select(_H.c.origin, _H.c.size, _H.c.last_leaf, _H.c.frontier).where(
            _H.c.id == sa.literal_column("1"))
        if dialect.name == "postgresql":
            head = head.with_for_update()  # the sequencer: one appender at a time
        self.head = text(head)
        self.entry = text(sa.insert(_E), ENTRY_PARAMS)
        self.payload = text(sa.insert(_P), PAYLOAD_PARAMS)
        self.node = text(sa.insert(_N), NODE_PARAMS)
        self.move = text(
            sa.update(_H).where(_H.c.id == sa.literal_column("1")).values(
                size=sa.bindparam("size"), last_leaf=sa.bindparam("last_leaf"),
                frontier=sa.bindparam("frontier")), MOVE_PARAMS)


def create_schema(store: Any, origin: str) -> None:
    """Create the tables, PostgreSQL's guards and the head row, once, under concurrency.

    ``store`` is an :class:`audit.store.Store`; on SQLite this runs in the
    append queue's turn inside ``BEGIN IMMEDIATE``, on PostgreSQL under an
    advisory lock (DDL is transactional there).
    """
    from contextlib import nullcontext

    from audit import _postgres

    sqlite = store.dialect == "sqlite"
    with (store.db.queue.turn() if sqlite else nullcontext()), store.engine.connect() as conn:
        conn = conn.execution_options(write=True)
        with conn.begin():
            if not sqlite:
                _postgres.make_durable(conn)
                # Serialises schema creation between processes.
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7254119)")
            metadata.create_all(conn, tables=TABLES)
            if not sqlite:
                _postgres.install_guards(conn)
            if conn.execute(sa.select(_H.c.id)).first() is None:
                conn.execute(
                    sa.insert(_H).values(
                        id=1, origin=origin, size=0, last_leaf=bytes(32), frontier=b""
                    )
                )


def create_indexes(store: Any, names: list[str]) -> None:
    """Create the history indexes ``names`` a log made before them lacks."""
    with store.write() as tx:
        for index in HISTORY_INDEXES:
            if index.name in names:
                tx.cursor.execute(str(sa.schema.CreateIndex(index, if_not_exists=True).compile(
                    dialect=store.engine.dialect)))
