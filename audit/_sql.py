"""The SQL the store runs on the driver: statements, conditions, the transaction cursor.

Opening a SQLite log, reading its history and appending run on the DB-API
alone: SQLAlchemy's import is most of a CLI process's start-up. The tables are
still declared once, in :mod:`audit._tables` (SQLModel), which creates them and
compiles PostgreSQL's statements; ``tests/audit/test_sql.py`` proves the text
here equal to what SQLAlchemy compiles from those declarations for SQLite.
Placeholders are qmark (``?``), bound by position in the orders of
``audit._tables.ENTRY_PARAMS``, ``PAYLOAD_PARAMS``, ``NODE_PARAMS`` and
``MOVE_PARAMS``. Queries built at run time (:class:`Condition`) name fixed
columns only and bind every value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from audit.records import NewRow

__all__ = ["HISTORY_INDEX_NAMES", "SQLITE_STATEMENTS", "TABLE_NAMES", "Condition",
           "SqliteStatements", "Tx", "entry_params", "entry_tuple", "payload_params",
           "payload_tuple"]

TABLE_NAMES = ("audit_entries", "audit_payloads", "audit_checkpoints", "audit_nodes",
               "audit_holds", "audit_keys", "audit_head")
"""Every table of the log (``audit._tables.TABLES``)."""

HISTORY_INDEX_NAMES = ("ix_audit_entries_subject_type", "ix_audit_entries_version_type")
"""Indexes a log made before them gains when next opened for writing."""


class SqliteStatements:
    """The hot-path statements on SQLite, bound by position (tuples bind faster than dicts)."""

    positional = True
    head = ("SELECT audit_head.origin, audit_head.size, audit_head.last_leaf, "
            "audit_head.frontier \nFROM audit_head \nWHERE audit_head.id = 1")
    entry = ("INSERT INTO audit_entries (seq, leaf_hash, envelope, type, subject_name, "
             "subject_version, subject_digest, actor, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
    payload = "INSERT INTO audit_payloads (seq, digest, content, redacted) VALUES (?, ?, ?, ?)"
    node = "INSERT INTO audit_nodes (level, idx, hash) VALUES (?, ?, ?)"
    move = "UPDATE audit_head SET size=?, last_leaf=?, frontier=? WHERE audit_head.id = 1"


SQLITE_STATEMENTS = SqliteStatements()


class Condition(NamedTuple):
    """A condition on entry rows (``audit_entries`` as ``e``) with its bound values.

    The SQL names only fixed columns and ``?`` placeholders; values are always bound.
    """

    sql: str
    params: tuple[Any, ...] = ()

    @staticmethod
    def equals(column: str, value: Any) -> Condition:
        """``e.column = value``."""
        return Condition(f"e.{column} = ?", (value,))

    @staticmethod
    def one_of(column: str, values: Iterable[Any]) -> Condition:
        """``e.column IN (values)``; no values matches nothing."""
        values = tuple(values)
        if not values:
            return Condition("1 = 0")
        return Condition(f"e.{column} IN ({', '.join('?' * len(values))})", values)

    @staticmethod
    def all_of(conditions: Iterable[Condition]) -> Condition:
        """Every one of ``conditions`` (none: every row)."""
        parts = list(conditions)
        if not parts:
            return Condition("1 = 1")
        return Condition(" AND ".join(f"({c.sql})" for c in parts),
                         tuple(v for c in parts for v in c.params))

    @staticmethod
    def any_of(conditions: Iterable[Condition]) -> Condition:
        """At least one of ``conditions``."""
        parts = list(conditions)
        return Condition(" OR ".join(f"({c.sql})" for c in parts),
                         tuple(v for c in parts for v in c.params))


class Tx:
    """A write transaction's cursor: statements written with ``?``, run on the driver."""

    __slots__ = ("_sql", "cursor")

    def __init__(self, cursor: Any, sql: Callable[[str], str]) -> None:
        self.cursor = cursor
        self._sql = sql

    def execute(self, statement: str, params: tuple[Any, ...] = ()) -> Any:
        """Run one statement; returns the driver cursor (``fetchall``, ``rowcount``)."""
        self.cursor.execute(self._sql(statement), params)
        return self.cursor

    def rows(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a query and return its rows."""
        return list(self.execute(statement, params).fetchall())


def payload_tuple(r: NewRow) -> tuple[Any, ...]:
    """Payload bind values in ``PAYLOAD_PARAMS`` order."""
    return (r.seq, r.payload_digest, r.payload, False)


def entry_tuple(r: NewRow) -> tuple[Any, ...]:
    """Entry bind values in ``ENTRY_PARAMS`` order."""
    subject = r.subject
    return (r.seq, r.leaf_hash, r.envelope, r.type, subject["name"], subject.get("version"),
            subject.get("digest"), r.actor, r.time)


def payload_params(r: NewRow) -> dict[str, Any]:
    """Payload bind values by name (PostgreSQL's compiled statements)."""
    return {"seq": r.seq, "digest": r.payload_digest, "content": r.payload, "redacted": False}


def entry_params(r: NewRow) -> dict[str, Any]:
    """Entry bind values by name (PostgreSQL's compiled statements)."""
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
