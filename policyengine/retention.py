"""Redaction and legal holds as operations: the CLI's and the service's one path to them.

Owns turning an operator's request (redact entry SEQ, hold a model, a version
or the subject of entry SEQ, release hold HOLD_ID) into calls of
:mod:`audit.retention`, which enforces the retention floor and the holds inside
the append transaction and writes the ``redaction`` / ``legal_hold`` /
``legal_hold_release`` entries. After each write a checkpoint is signed, so
the new entry is covered by a signature like every other.

Refusals become policyengine errors: :class:`RetentionRefusedError` (inside
the floor, under hold, already redacted, nothing held: exit 2, HTTP 409) and
:class:`InputError` (no such entry, an entry the log wrote itself, a policy
bundle, which replay needs: exit 2, HTTP 422). Nothing is written when either is raised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from policyengine.errors import InputError, RetentionRefusedError
from policyengine.ledger import log_errors

if TYPE_CHECKING:
    from policyengine.engine import Engine

__all__ = ["RetentionResult", "hold", "redact", "release"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetentionResult:
    """The entry a redaction, hold or release wrote."""

    seq: int
    """Seq of the ``redaction`` / ``legal_hold`` / ``legal_hold_release`` entry."""
    type: str
    """Its entry type."""
    subject: dict[str, str]
    """The subject it concerns (model, version)."""
    checkpoint_size: int
    """Size of the signed checkpoint that covers it."""
    holds: tuple[int, ...] = ()
    """For a release: the hold ids (seqs) it released."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"seq": self.seq, "type": self.type, "subject": self.subject,
                "checkpoint_size": self.checkpoint_size, "holds": list(self.holds)}


def _text(value: str | None, what: str) -> str:
    if not value or not value.strip():
        raise InputError(f"{what}: expected a non-empty reason, e.g. --reason 'erasure request 42'")
    return value.strip()


@contextmanager
def _refusals() -> Iterator[None]:
    """audit's refusals as policyengine errors (one line, nothing written)."""
    from audit.errors import InputError as AuditInputError
    from audit.errors import RetentionError

    try:
        yield
    except RetentionError as exc:
        raise RetentionRefusedError(str(exc)) from exc
    except AuditInputError as exc:
        raise InputError(str(exc)) from exc


def _write(engine: Engine, fn: Callable[[], Any]) -> tuple[Any, int]:
    with log_errors(engine.config), _refusals():
        appended = fn()
        size = engine.log.checkpoint().size
    return appended, size


def _entry(engine: Engine, seq: int) -> Any:
    with log_errors(engine.config), _refusals():
        return engine.log.get(seq)


def redact(
    engine: Engine, seq: int, *, reason: str, actor: str | None = None,
    now: datetime | None = None,
) -> RetentionResult:
    """Redact the payload of entry ``seq`` (its digest stays; a tombstone is logged).

    Raises:
        RetentionRefusedError: inside the retention floor, under legal hold, or
            already redacted.
        InputError: no such entry, an empty reason, an entry the log wrote
            itself, or a policy bundle (kept for replay).
        LogUnavailableError, KeyUnavailableError: exit 3.
    """
    from audit.retention import redact as audit_redact
    from policyengine.bundles import BUNDLE_TYPE

    reason, by = _text(reason, "reason"), engine.actor(actor)
    envelope = _entry(engine, seq).envelope
    if envelope.get("type") == BUNDLE_TYPE:
        # Decisions are replayed from the bundle's policy text (bundles.py); it
        # is policy, not personal data, so erasing it would only break replay.
        raise InputError(
            f"entry {seq} is a policy_bundle entry: decisions made under it are replayed "
            "from its policy text, so it is kept; redact the decision or card entry instead")
    subject = dict(envelope.get("subject") or {})
    appended, size = _write(engine, lambda: audit_redact(engine.log, seq, by, reason, now=now))
    return RetentionResult(appended.seq, "redaction", subject, size)


def hold(
    engine: Engine, *, reason: str, model: str | None = None, version: str | None = None,
    seq: int | None = None, actor: str | None = None,
) -> RetentionResult:
    """Place a legal hold on ``model`` (one ``version`` or all), or on entry ``seq``'s subject.

    A hold on an entry holds its model version (or its model, for model-wide
    entries): holds are per subject, so the entry's siblings are held too.

    Raises:
        InputError: neither or both of model and seq, an empty reason, no such entry.
    """
    from audit.retention import hold as audit_hold

    reason, by = _text(reason, "reason"), engine.actor(actor)
    if (model is None) == (seq is None):
        raise InputError("hold: give a model (with an optional version) or an entry seq")
    if seq is not None:
        if version is not None:
            raise InputError("hold: --version applies to a model, not to an entry seq")
        subject = _entry(engine, seq).envelope.get("subject") or {}
        model, version = str(subject.get("name")), subject.get("version")
    assert model is not None
    appended, size = _write(
        engine, lambda: audit_hold(engine.log, model, version, by=by, reason=reason))
    held = {"name": model} | ({"version": version} if version else {})
    return RetentionResult(appended.seq, "legal_hold", held, size)


def release(
    engine: Engine, hold_id: int, *, reason: str, actor: str | None = None
) -> RetentionResult:
    """Release legal hold ``hold_id`` (the seq of its ``legal_hold`` entry).

    Every active hold on exactly the same subject is released with it
    (``audit.retention.release`` works per subject); the result lists them.

    Raises:
        InputError: ``hold_id`` is not a ``legal_hold`` entry.
        RetentionRefusedError: that hold is no longer active.
    """
    from audit.retention import active_holds
    from audit.retention import release as audit_release

    reason, by = _text(reason, "reason"), engine.actor(actor)
    entry = _entry(engine, hold_id)
    if entry.envelope.get("type") != "legal_hold":
        raise InputError(
            f"hold {hold_id}: entry {hold_id} is a {entry.envelope.get('type')!r} entry, "
            "not a legal_hold; see `policyengine audit query --type legal_hold`")
    with log_errors(engine.config):
        active = {h["seq"] for h in active_holds(engine.log)}
    if hold_id not in active:
        raise RetentionRefusedError(f"hold {hold_id} is not active (already released)")
    subject = dict(entry.envelope.get("subject") or {})
    name, version = str(subject["name"]), subject.get("version")
    appended, size = _write(
        engine, lambda: audit_release(engine.log, name, version, by=by, reason=reason))
    released = _entry(engine, appended.seq).payload or {}
    return RetentionResult(appended.seq, "legal_hold_release", subject, size,
                           tuple(released.get("holds") or ()))
