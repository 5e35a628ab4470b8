"""Redaction, the retention floor and legal holds.

Owns the one path that deletes data: :func:`redact` deletes a payload's
content (keeping its digest, so the chain and tree still verify) and appends a
``redaction`` tombstone naming the entry, who redacted it, why, and the
digest, in the same transaction. Entries themselves are never deleted.

Refusals (:class:`~audit.errors.RetentionError`): payloads younger than the
retention floor (default 180 days, never less) and payloads of subjects under
a legal hold. Holds are log entries (``legal_hold`` / ``legal_hold_release``)
mirrored in the holds table so a redaction checks them in its transaction.

Imports only downwards (errors, records, store): :mod:`audit.log` calls in
here, and every write goes through the log's public
:meth:`~audit.log.AuditLog.append_within`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from audit.errors import InputError, RetentionError
from audit.records import AppendResult
from audit.store import HOLDS, PAYLOADS, Head, Store

__all__ = ["AUDIT_TYPES", "active_holds", "hold", "redact", "release"]

AUDIT_TYPES = frozenset({"redaction", "legal_hold", "legal_hold_release", "key_transition"})
"""Entry types only the audit package itself writes."""


class _Log(Protocol):
    """What retention needs of :class:`audit.log.AuditLog`."""

    store: Store
    retention_days: int

    def get(self, seq: int) -> Any: ...

    def append_within(
        self, type: str, subject: dict[str, str], actor: str, payload: Any,
        inside: Callable[[Connection, Head], None],
    ) -> AppendResult: ...


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{what}: expected a non-empty string, got {value!r}")
    return value


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _holding(conn: Connection, name: str, version: str | None) -> list[int]:
    """Seqs of active holds that cover subject (name, version)."""
    versions = ["", version] if version else [""]
    q = sa.select(HOLDS.c.hold_seq).where(
        HOLDS.c.subject_name == name,
        HOLDS.c.subject_version.in_(versions),
        HOLDS.c.release_seq.is_(None),
    )
    return [s for (s,) in conn.execute(q)]


def redact(
    log: _Log, seq: int, by: str, reason: str, *, now: datetime | None = None
) -> AppendResult:
    """Delete the payload content of entry ``seq`` and log a tombstone.

    Args:
        log: the audit log.
        seq: the entry whose payload to redact.
        by: who redacts (the tombstone's actor).
        reason: why (for example an erasure request id).
        now: the current time (default: the clock), for the retention floor.

    Returns:
        The tombstone's append result.

    Raises:
        InputError: no such entry, empty ``by``/``reason``, or an entry the
            audit log wrote itself.
        RetentionError: the payload is younger than the retention floor, the
            subject is under a legal hold, or it is already redacted.
    """
    by, reason = _text(by, "by"), _text(reason, "reason")
    entry = log.get(seq)
    env = entry.envelope
    if env["type"] in AUDIT_TYPES:
        raise InputError(f"entry {seq} is an audit {env['type']!r} entry; its payload is kept")
    now = now or datetime.now(UTC)
    floor = timedelta(days=log.retention_days)
    written = _parse_time(env["time"])
    if now - written < floor:
        raise RetentionError(
            f"entry {seq} is within the retention floor: written {env['time']}, "
            f"redactable after {(written + floor).strftime('%Y-%m-%dT%H:%M:%SZ')} "
            f"({log.retention_days} days)"
        )
    digest = env["payload_digest"]
    tomb = {"seq": seq, "by": by, "reason": reason, "digest": digest}

    def inside(conn: Connection, _head: Head) -> None:
        held = _holding(conn, env["subject"]["name"], env["subject"].get("version"))
        if held:
            raise RetentionError(
                f"entry {seq} is under legal hold (hold entry {held[0]}); release it first"
            )
        done = conn.execute(
            sa.update(PAYLOADS)
            .where(PAYLOADS.c.seq == seq, PAYLOADS.c.content.is_not(None))
            .values(content=None, redacted=True)
        )
        if done.rowcount != 1:
            raise RetentionError(f"entry {seq} payload is already redacted")

    return log.append_within("redaction", env["subject"], by, tomb, inside)


def hold(
    log: _Log, name: str, version: str | None = None, *, by: str, reason: str
) -> AppendResult:
    """Place a legal hold on subject ``name`` (one ``version``, or all when None).

    Returns:
        The ``legal_hold`` entry's append result; its seq identifies the hold.

    Raises:
        InputError: empty name, by or reason.
    """
    name, by, reason = _text(name, "name"), _text(by, "by"), _text(reason, "reason")
    subject = {"name": name} if version is None else {"name": name, "version": version}
    payload = {"by": by, "reason": reason}

    def inside(conn: Connection, head: Head) -> None:
        conn.execute(sa.insert(HOLDS).values(
            hold_seq=head.size, subject_name=name, subject_version=version or ""))

    return log.append_within("legal_hold", subject, by, payload, inside)


def release(
    log: _Log, name: str, version: str | None = None, *, by: str, reason: str
) -> AppendResult:
    """Release the active legal holds on exactly (``name``, ``version``).

    Raises:
        InputError: empty name, by or reason.
        RetentionError: no active hold on that subject.
    """
    name, by, reason = _text(name, "name"), _text(by, "by"), _text(reason, "reason")
    subject = {"name": name} if version is None else {"name": name, "version": version}
    with log.store.engine.connect() as conn:
        seqs = _exact_holds(conn, name, version)
    if not seqs:
        raise RetentionError(f"no active legal hold on {name} {version or '(all versions)'}")
    payload = {"by": by, "reason": reason, "holds": seqs}

    def inside(conn: Connection, head: Head) -> None:
        if _exact_holds(conn, name, version) != seqs:
            raise RetentionError(f"legal holds on {name} changed concurrently; retry")
        conn.execute(
            sa.update(HOLDS).where(HOLDS.c.hold_seq.in_(seqs)).values(release_seq=head.size)
        )

    return log.append_within("legal_hold_release", subject, by, payload, inside)


def _exact_holds(conn: Connection, name: str, version: str | None) -> list[int]:
    q = sa.select(HOLDS.c.hold_seq).where(
        HOLDS.c.subject_name == name,
        HOLDS.c.subject_version == (version or ""),
        HOLDS.c.release_seq.is_(None),
    ).order_by(HOLDS.c.hold_seq)
    return [s for (s,) in conn.execute(q)]


def active_holds(log: _Log) -> list[dict[str, Any]]:
    """Return the active legal holds: ``{"seq", "name", "version"}`` each."""
    q = sa.select(HOLDS).where(HOLDS.c.release_seq.is_(None)).order_by(HOLDS.c.hold_seq)
    with log.store.engine.connect() as conn:
        return [
            {"seq": r.hold_seq, "name": r.subject_name, "version": r.subject_version or None}
            for r in conn.execute(q)
        ]
