"""Promotion and lifecycle events: the log gates what reaches a stage.

Owns ``promote``: a ``promoted`` entry is appended only when the log holds an
``allow`` decision for exactly that model, version, artifact digest and stage,
made under the policy bundle currently configured, not followed by a deny for
the same artifact and stage, no older than the freshness limit, and covered by
a signed checkpoint. Otherwise :class:`PromotionRefusedError` (exit 1) says
what is missing, and nothing is written. Also owns ``record_event`` for the
other lifecycle events (registered, rolled_back, retired, drift_detected,
incident), validated against schemas/lifecycle-event.schema.json before they
are appended.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from policyengine.errors import InputError, PolicyEngineError
from policyengine.history import payload_problem
from policyengine.ledger import log_errors, record

if TYPE_CHECKING:
    from policyengine.engine import Engine

__all__ = [
    "RECORDABLE_EVENTS",
    "PromotionRefusedError",
    "RecordResult",
    "find_allow",
    "justify",
    "promote",
    "record_event",
]

RECORDABLE_EVENTS: tuple[str, ...] = (
    "registered",
    "rolled_back",
    "retired",
    "drift_detected",
    "incident",
)


class PromotionRefusedError(PolicyEngineError):
    """The log holds no usable allow decision for this promotion (exit 1)."""

    code: ClassVar[str] = "promotion_refused"


@dataclass(frozen=True)
class RecordResult:
    """Where an appended lifecycle entry sits in the log."""

    seq: int
    """Sequence number of the new entry."""
    checkpoint_size: int
    """Size of the signed checkpoint covering it."""
    receipt: dict[str, Any]
    """Offline-verifiable receipt of the entry."""
    decision_seq: int | None = None
    """For promotions: the allow decision that justified it."""


@dataclass(frozen=True)
class _Target:
    """The model version an event is about, and who acts."""

    model: str
    version: str | None
    digest: str | None
    stage: str | None
    actor: str

    def subject(self, key: str) -> dict[str, str]:
        """``{key: model}`` plus version and digest when known (log: "name", event: "model")."""
        found = {key: self.model, "version": self.version, "digest": self.digest}
        return {k: v for k, v in found.items() if v}


def _time(text: Any) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def _decisions(entries: Iterable[Any], version: str) -> list[dict[str, Any]]:
    """Promote-decision items (seq order) of one version, from entries with payloads.

    Only decisions on the ``promote`` intent count: an allow on another intent
    (``gate --event register --to production`` evaluates only registration
    policies) must never justify a promotion, nor a deny on it hide one.
    """
    out = []
    for entry in entries:
        env = entry.envelope
        if entry.redacted or not isinstance(entry.payload, dict):
            continue
        if (env.get("subject") or {}).get("version") != version:
            continue
        decision = entry.payload.get("decision") or {}
        event = entry.payload.get("event") or {}
        if event.get("type") != "promote":
            continue
        allow = decision.get("allow", decision.get("decision") == "allow")
        out.append(
            {
                "seq": entry.seq,
                "time": env.get("time"),
                "allow": bool(allow),
                "digest": (env.get("subject") or {}).get("digest"),
                "stage": event.get("stage"),
                "bundle_digest": decision.get("bundle_digest"),
                "id": decision.get("id"),
            }
        )
    return out


def find_allow(
    entries: Iterable[Any],
    *,
    model: str,
    version: str,
    digest: str,
    stage: str,
    bundle_digest: str,
    now: datetime,
    max_age: Any,
) -> dict[str, Any]:
    """The allow decision that justifies this promotion.

    Raises:
        PromotionRefusedError: saying what is missing (no decision, a later deny,
            another bundle, too old).
    """
    what = f"{model} {version} ({digest}) to {stage}"
    items = _decisions(entries, version)
    matching = [d for d in items if d["digest"] == digest and d["stage"] == stage]
    if not matching:
        raise PromotionRefusedError(
            f"no decision in the log for {what}{_near_misses(items, digest, stage)}; "
            f"run `policyengine gate CARD --to {stage}` first"
        )
    latest = matching[-1]
    if not latest["allow"]:
        raise PromotionRefusedError(
            f"the latest decision for {what} is deny (seq {latest['seq']}, "
            f"{latest['time']}); fix the findings and gate again"
        )
    if latest["bundle_digest"] != bundle_digest:
        raise PromotionRefusedError(
            f"the allow decision for {what} (seq {latest['seq']}) was made under policy bundle "
            f"{str(latest['bundle_digest'])[:19]}..., the configured bundle is "
            f"{bundle_digest[:19]}...; gate again"
        )
    age = now - _time(latest["time"])
    if age > max_age:
        raise PromotionRefusedError(
            f"the allow decision for {what} (seq {latest['seq']}, {latest['time']}) is older than "
            f"the freshness limit {max_age}; gate again"
        )
    return latest


def _near_misses(items: list[dict[str, Any]], digest: str, stage: str) -> str:
    """Explain allows that exist for another digest or stage."""
    notes = []
    for d in items:
        if d["allow"] and d["digest"] != digest:
            notes.append(f"an allow at seq {d['seq']} is for artifact {d['digest']}")
        elif d["allow"] and d["stage"] != stage:
            notes.append(f"an allow at seq {d['seq']} is for stage {d['stage']}")
    return f" ({'; '.join(notes[-3:])})" if notes else ""


def promote(
    engine: Engine,
    *,
    model: str,
    version: str,
    digest: str,
    stage: str,
    actor: str,
    now: datetime | None = None,
) -> RecordResult:
    """Append a ``promoted`` entry if the log justifies it.

    The allow must have been made under the bundle the engine compiles for
    ``stage`` now.

    Raises:
        PromotionRefusedError: no matching fresh allow (exit 1); nothing written.
        KeyUnavailableError, LogUnavailableError: exit 3.
    """
    now = now or datetime.now(UTC)
    allow = justify(engine, model=model, version=version, digest=digest, stage=stage, now=now)
    data = {
        "decision_seq": allow["seq"],
        "decision_id": allow["id"],
        "bundle_digest": allow["bundle_digest"],
    }
    target = _Target(model, version, digest, stage, actor)
    return _append_event(engine, "promoted", target, data, now, decision_seq=allow["seq"])


def justify(
    engine: Engine, *, model: str, version: str, digest: str, stage: str, now: datetime
) -> dict[str, Any]:
    """The allow that would justify a promotion, read from the log; writes nothing.

    :func:`promote` is this check followed by the append; a dry run (a
    Kubernetes ``dryRun`` admission review) is this check alone.

    Raises:
        PromotionRefusedError: no matching fresh allow covered by a checkpoint.
        LogUnavailableError: the log cannot be read.
    """
    config = engine.config
    bundle = engine.compiled(stage).bundle_digest
    with log_errors(config):
        entries = list(engine.log.query(name=model, version=version, types=["decision"]))
        latest_cp = engine.log.latest_checkpoint()
    allow = find_allow(
        entries,
        model=model,
        version=version,
        digest=digest,
        stage=stage,
        bundle_digest=bundle,
        now=now,
        max_age=config.freshness,
    )
    _check_evidence(allow, entries, latest_cp)
    return allow


def _check_evidence(allow: dict[str, Any], entries: list[Any], checkpoint: Any) -> None:
    """The allow entry's payload matches its envelope and a signed checkpoint covers it."""
    entry = next(e for e in entries if e.seq == allow["seq"])
    problem = payload_problem(entry)
    if problem:
        raise PromotionRefusedError(f"the allow decision at seq {allow['seq']}: {problem}")
    if checkpoint is None or checkpoint.size <= allow["seq"]:
        raise PromotionRefusedError(
            f"the allow decision at seq {allow['seq']} is not covered by a signed "
            "checkpoint; run `policyengine audit checkpoint` or gate again"
        )


def record_event(
    engine: Engine,
    event_type: str,
    *,
    model: str,
    version: str | None,
    digest: str | None,
    stage: str | None,
    actor: str,
    data: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> RecordResult:
    """Validate and append one lifecycle event (not promotions: see :func:`promote`).

    Raises:
        InputError: unknown type; CardValidationError: event invalid against the schema.
        KeyUnavailableError, LogUnavailableError: exit 3.
    """
    if event_type not in RECORDABLE_EVENTS:
        raise InputError(
            f"event type: expected one of {', '.join(RECORDABLE_EVENTS)}, got {event_type!r}"
        )
    now = now or datetime.now(UTC)
    target = _Target(model, version, digest, stage, actor)
    _lifecycle_event(event_type, target, dict(data or {}), now)
    return _append_event(engine, event_type, target, dict(data or {}), now)


def _lifecycle_event(
    event_type: str, target: _Target, data: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """The event as schemas/lifecycle-event.schema.json defines it, validated."""
    from policyengine.cards.validate import validate_event

    event: dict[str, Any] = {
        "schema_version": "1.0",
        "type": event_type,
        "subject": target.subject("model"),
        "actor": target.actor,
        "time": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "data": data,
    }
    if target.stage:
        event["stage"] = target.stage
    validate_event(event, source=f"{event_type} event")
    return event


def _append_event(
    engine: Engine,
    event_type: str,
    target: _Target,
    data: dict[str, Any],
    now: datetime,
    decision_seq: int | None = None,
) -> RecordResult:
    event = _lifecycle_event(event_type, target, data, now)
    subject = target.subject("name")
    recorded = record(engine.log, engine.config, event_type, subject, target.actor, event)
    return RecordResult(
        seq=recorded.seq,
        checkpoint_size=recorded.checkpoint_size,
        receipt=recorded.receipt,
        decision_seq=decision_seq,
    )
