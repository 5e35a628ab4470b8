"""What a model registry's events mean for the log: one flow for every registry.

Owns the two steps every registry adapter (MLflow webhooks, generic HMAC
webhooks, the Kubernetes admission check) needs, free of HTTP and of any
registry's types:

- :func:`registered`: a version was registered. Record ``registered`` (as
  ``policyengine event registered`` does), then decide the card on the
  ``register`` intent exactly as ``policyengine gate --event register`` does
  (the decision entry is the gate's own). A version whose card could not be
  read, or does not validate, is recorded as a ``violation`` (fail closed).
- :func:`moved`: an alias or stage now points at a version. With a matching
  ``allow`` in the log (the ``promote`` check) the promotion is recorded;
  without one a ``violation`` is recorded and the outcome says what to undo.
  Undoing it is the adapter's job (it alone can reach its registry).

Not handled here: verifying deliveries, reading cards from a registry, or
moving an alias back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from policyengine.errors import CardValidationError, InputError, PolicyEngineError
from policyengine.gate import gate
from policyengine.promote import PromotionRefusedError, justify, promote, record_event

if TYPE_CHECKING:
    from policyengine.engine import Engine
    from policyengine.gate import GateResult

__all__ = [
    "REGISTRY_STAGE",
    "Moved",
    "Registered",
    "Version",
    "card_digest",
    "moved",
    "promote_or_refuse",
    "registered",
]

REGISTRY_STAGE = "registry"
"""Stage recorded for registration decisions (a registration targets no stage)."""

_REASON_LIMIT = 2000


@dataclass(frozen=True)
class Version:
    """The model version a registry event is about, and who reported it."""

    model: str
    version: str
    digest: str | None
    """Artifact digest (``sha256:<64 hex>``) when known."""
    actor: str
    """Who the log records as acting (``webhook:mlflow``, ...)."""

    def subject(self) -> dict[str, str]:
        """The log subject: name, version and digest when known."""
        found = {"name": self.model, "version": self.version, "digest": self.digest}
        return {k: v for k, v in found.items() if v}


@dataclass(frozen=True)
class Registered:
    """What a registration led to."""

    seqs: list[int]
    """Entries written: ``registered``, then the decision or the violation."""
    result: GateResult | None = None
    """The gate's result when the card was evaluated."""
    problem: str | None = None
    """Why it could not be evaluated (a violation was recorded)."""

    @property
    def decision(self) -> str | None:
        """``allow`` or ``deny`` when evaluated."""
        if self.result is None:
            return None
        return "allow" if self.result.allow else "deny"


@dataclass(frozen=True)
class Moved:
    """Whether the log justifies a version at a stage, and what was written."""

    allowed: bool
    """True when a ``promoted`` entry was written."""
    seq: int | None = None
    """The ``promoted`` entry (allowed) or the ``violation`` entry (not allowed)."""
    reason: str = ""
    """What the log lacks (not allowed)."""
    seqs: list[int] = field(default_factory=list)
    """Every entry written."""

    @property
    def undo(self) -> bool:
        """True when the registry should undo the move (no allow justified it)."""
        return not self.allowed


def card_digest(card: Mapping[str, Any]) -> str:
    """The artifact digest a card names (``model.artifact_digest``).

    Raises:
        InputError: the card names none (it cannot be bound to an artifact).
    """
    digest = (card.get("model") or {}).get("artifact_digest") if isinstance(card, Mapping) else None
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        raise InputError("card: expected model.artifact_digest as sha256:<64 hex>")
    return digest


def _unevaluable(exc: Exception) -> bool:
    """A registration problem to record as a violation (not one to retry)."""
    return isinstance(exc, InputError | CardValidationError)


def _diagnostics(exc: Exception) -> str:
    return exc.diagnostics() if isinstance(exc, PolicyEngineError) else str(exc)


def registered(
    engine: Engine,
    version: Version,
    card: dict[str, Any] | None,
    *,
    data: Mapping[str, Any],
    problem: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> Registered:
    """Record a registration, then decide it (or record why it cannot be decided).

    Args:
        version: the version registered.
        card: its model card; None when none could be read.
        data: the ``registered`` event's data (where it came from).
        problem: why no card could be read (recorded in the violation).
        details: fields the ``violation`` payload carries besides kind and reason.

    Raises:
        LogUnavailableError, KeyUnavailableError: retry later (nothing decided).
    """
    reg = record_event(
        engine,
        "registered",
        model=version.model,
        version=version.version,
        digest=version.digest,
        stage=None,
        actor=version.actor,
        data=dict(data),
    ).seq
    if problem is None and card is not None:
        try:
            result = gate(
                engine, card, REGISTRY_STAGE, "register", card_source="request",
                actor=version.actor,
            )
        except Exception as exc:
            if not _unevaluable(exc):
                raise  # the log or a key unavailable: the registry retries the delivery
            problem = _diagnostics(exc)
        else:
            return Registered([reg, result.seq], result=result)
    reason = (problem or "no card")[:_REASON_LIMIT]
    payload = {**(details or {}), "kind": "registration_not_evaluable", "reason": reason}
    violation = engine.record("violation", version.subject(), version.actor, payload).seq
    return Registered([reg, violation], problem=reason)


def promote_or_refuse(
    engine: Engine, version: Version, stage: str, *, dry_run: bool = False
) -> Moved:
    """Run ``promote``; a refusal (no matching allow) is returned, not raised.

    With an allow the ``promoted`` entry is written; without one nothing is,
    and the reason says what the log lacks. ``dry_run`` checks the same rule
    and writes nothing either way.
    """
    if not version.digest:
        return Moved(
            False,
            reason=f"no artifact digest known for {version.model} {version.version}; "
            "register it first",
        )
    try:
        if dry_run:
            justify(
                engine, model=version.model, version=version.version, digest=version.digest,
                stage=stage, now=datetime.now(UTC),
            )
            return Moved(True)
        result = promote(
            engine,
            model=version.model,
            version=version.version,
            digest=version.digest,
            stage=stage,
            actor=version.actor,
        )
    except PromotionRefusedError as exc:
        return Moved(False, reason=exc.diagnostics())
    return Moved(True, seq=int(result.seq), seqs=[int(result.seq)])


def moved(
    engine: Engine,
    version: Version,
    stage: str,
    *,
    kind: str,
    details: Mapping[str, Any] | None = None,
    dry_run: bool = False,
) -> Moved:
    """An alias or stage moved to ``version``: promote if an allow exists, else a violation.

    Args:
        stage: the stage the move puts the version in.
        kind: the violation's kind (``alias_without_allow``, ``stage_without_allow``).
        details: fields the ``violation`` payload carries besides kind and reason.
        dry_run: decide by the same rule but write nothing (no ``promoted``, no
            ``violation``): a request that will not be persisted moves nothing.

    Returns:
        allowed with the ``promoted`` seq, or not allowed with the ``violation``
        seq and the reason; ``undo`` says the registry should move it back.
    """
    check = promote_or_refuse(engine, version, stage, dry_run=dry_run)
    if check.allowed or dry_run:
        return check
    payload = {**(details or {}), "kind": kind, "reason": check.reason}
    seq = engine.record("violation", version.subject(), version.actor, payload).seq
    return Moved(False, seq=seq, reason=check.reason, seqs=[seq])
