"""Entries as read back from a log: the :class:`Entry` record and the filters that select them.

Owns turning a stored row (entry joined with its payload) into an
:class:`Entry` with its envelope and payload parsed, and the query filters on
the entries table (:func:`entry_filters`) that ``AuditLog.query``, exports and
replay share. Reading the rows is :mod:`audit.store`'s job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from audit._rows import format_time
from audit._sql import Condition

__all__ = ["Entry", "entry_filters", "entry_from_row"]


@dataclass(frozen=True)
class Entry:
    """One stored entry as read back."""

    seq: int
    """Position in the log."""
    envelope: dict[str, Any]
    """The parsed envelope."""
    envelope_bytes: bytes
    """The envelope bytes as stored and hashed."""
    leaf_hash: str
    """Hex leaf hash."""
    payload: Any | None
    """The parsed payload, None when redacted."""
    redacted: bool
    """True when the payload content was redacted."""
    payload_bytes: bytes | None = field(default=None, repr=False, compare=False)
    """The payload bytes as stored (hashed to ``payload_digest``), None when redacted."""


def entry_from_row(row: Any) -> Entry:
    """The :class:`Entry` of a row of the entries table joined with its payload."""
    envelope_bytes = bytes(row.envelope)
    raw = None if row.content is None else bytes(row.content)
    return Entry(
        seq=row.seq,
        envelope=json.loads(envelope_bytes),
        envelope_bytes=envelope_bytes,
        leaf_hash=bytes(row.leaf_hash).hex(),
        payload=None if raw is None else json.loads(raw),
        redacted=bool(row.redacted),
        payload_bytes=raw,
    )


def entry_filters(
    *, name: str | None = None, version: str | None = None, digest: str | None = None,
    types: list[str] | None = None, actor: str | None = None,
    since: datetime | None = None, until: datetime | None = None,
) -> list[Condition]:
    """Return conditions on the entries table for the given filters (all must hold)."""
    where: list[Condition] = []
    for column, value in (("subject_name", name), ("subject_version", version),
                          ("subject_digest", digest), ("actor", actor)):
        if value is not None:
            where.append(Condition.equals(column, value))
    if types is not None:
        where.append(Condition.one_of("type", types))
    if since is not None:
        where.append(Condition("e.time >= ?", (format_time(since),)))
    if until is not None:
        where.append(Condition("e.time < ?", (format_time(until),)))
    return where
