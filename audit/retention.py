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

from audit.errors import InputError, RetentionError
from audit.records import AppendResult, Head
from audit.store import Store, Tx

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
        inside: Callable[[Tx, Head], None],
    ) -> AppendResult: ...


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{what}: expected a non-empty string, got {value!r}")
    return value


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _holding(tx: Tx, name: str, version: str | None) -> list[int]:
    """Seqs of active holds that cover subject (name, version)."""
    versions = ("", version) if version else ("",)
    marks = ", ".join("?" * len(versions))
    return [s for (s,) in tx.rows(
        f"SELECT hold_seq FROM audit_holds WHERE subject_name = ? AND subject_version IN "
        f"({marks}) AND release_seq IS NULL", (name, *versions))]


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

    def inside(tx: Tx, _head: Head) -> None:
        held = _holding(tx, env["subject"]["name"], env["subject"].get("version"))
        if held:
            raise RetentionError(
                f"entry {seq} is under legal hold (hold entry {held[0]}); release it first"
            )
        done = tx.execute("UPDATE audit_payloads SET content = NULL, redacted = ? "
                          "WHERE seq = ? AND content IS NOT NULL", (True, seq))
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

    def inside(tx: Tx, head: Head) -> None:
        tx.execute("INSERT INTO audit_holds (hold_seq, subject_name, subject_version) "
                   "VALUES (?, ?, ?)", (head.size, name, version or ""))

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
    seqs = _exact_holds(log.store, name, version)
    if not seqs:
        raise RetentionError(f"no active legal hold on {name} {version or '(all versions)'}")
    payload = {"by": by, "reason": reason, "holds": seqs}

    def inside(tx: Tx, head: Head) -> None:
        if _exact_holds(tx, name, version) != seqs:
            raise RetentionError(f"legal holds on {name} changed concurrently; retry")
        marks = ", ".join("?" * len(seqs))
        tx.execute(f"UPDATE audit_holds SET release_seq = ? WHERE hold_seq IN ({marks})",
                   (head.size, *seqs))

    return log.append_within("legal_hold_release", subject, by, payload, inside)


def _exact_holds(reader: Tx | Store, name: str, version: str | None) -> list[int]:
    """Seqs of the active holds on exactly (name, version), in a transaction or not."""
    return [s for (s,) in reader.rows(
        "SELECT hold_seq FROM audit_holds WHERE subject_name = ? AND subject_version = ? "
        "AND release_seq IS NULL ORDER BY hold_seq", (name, version or ""))]


def active_holds(log: _Log) -> list[dict[str, Any]]:
    """Return the active legal holds: ``{"seq", "name", "version"}`` each."""
    rows = log.store.rows("SELECT hold_seq, subject_name, subject_version FROM audit_holds "
                          "WHERE release_seq IS NULL ORDER BY hold_seq")
    return [{"seq": seq, "name": name, "version": version or None}
            for seq, name, version in rows]
