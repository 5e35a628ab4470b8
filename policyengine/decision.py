"""The Decision: what was decided, against which policies and inputs, and why.

Plain frozen dataclasses, built by :func:`policyengine.policy.evaluate` and
serialised by ``to_dict()`` into the shape of ``schemas/decision.schema.json``
(a test validates it); ``from_dict()`` reads that shape back (a stored log
entry, a gate result) so that ``from_dict(d).to_dict() == d``. This is the one
Decision type: every renderer in :mod:`policyengine.report` takes it. This
module owns the result types only; rendering for people lives in ``report/``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from policyengine.errors import InputError

__all__ = ["OUTCOMES", "Decision", "PolicyRef", "RuleResult"]

Outcome = Literal["pass", "fail", "error", "waived", "skipped"]
"""A rule's outcome: skipped = its policy does not apply to this event."""

OUTCOMES: tuple[str, ...] = ("pass", "fail", "error", "waived", "skipped")


@dataclass(frozen=True)
class RuleResult:
    """The outcome of one rule in one decision."""

    policy: str
    policy_version: str
    rule: str
    severity: str
    """deny | warn | info."""
    mode: str
    """enforce | audit (of the policy)."""
    outcome: Outcome
    message: str
    """Rendered message (empty for pass), or what made the rule an error."""
    remediation: str
    values: dict[str, Any]
    """Values the rule read, keyed by path (``card.fairness[0].value``)."""
    file: str
    line: int
    waiver: dict[str, Any] | None = None
    """The waiver that turned fail/error into waived."""
    waived_outcome: str | None = None
    """What the rule evaluated to before the waiver (fail or error)."""
    expired_waivers: tuple[dict[str, Any], ...] = ()
    """Waivers naming this rule that did not apply (expired, not yet valid)."""
    references: tuple[str, ...] = ()
    """The policy's metadata.references, on fail and error results (empty otherwise)."""

    @property
    def key(self) -> str:
        """``policy/rule``."""
        return f"{self.policy}/{self.rule}"

    @property
    def enforced(self) -> bool:
        """True in an enforce-mode policy; audit-mode results are recorded, never block."""
        return self.mode == "enforce"

    def blocks(self) -> bool:
        """True when this result alone denies (CONTRACT: fail closed)."""
        if not self.enforced:
            return False
        return self.outcome == "error" or (self.outcome == "fail" and self.severity == "deny")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (schemas/decision.schema.json#/$defs/result)."""
        out: dict[str, Any] = {
            "policy": self.policy,
            "policy_version": self.policy_version,
            "rule": self.rule,
            "severity": self.severity,
            "mode": self.mode,
            "outcome": self.outcome,
            "message": self.message,
            "remediation": self.remediation,
            "values": dict(self.values),
            "location": {"file": self.file, "line": self.line},
        }
        if self.waiver is not None:
            out["waiver"] = dict(self.waiver)
            out["waived_outcome"] = self.waived_outcome
        if self.expired_waivers:
            out["expired_waivers"] = [dict(w) for w in self.expired_waivers]
        if self.references:
            out["references"] = list(self.references)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleResult:
        """The result of :meth:`to_dict` read back; values are kept as they are, not coerced.

        Raises:
            InputError: a required field is missing or of the wrong kind.
        """
        location = _field(data, "location", Mapping)
        waiver = data.get("waiver")
        return cls(
            policy=_field(data, "policy", str),
            policy_version=_field(data, "policy_version", str),
            rule=_field(data, "rule", str),
            severity=_field(data, "severity", str),
            mode=_field(data, "mode", str),
            outcome=_field(data, "outcome", str),  # type: ignore[arg-type]
            message=_field(data, "message", str),
            remediation=_field(data, "remediation", str),
            values=dict(_field(data, "values", Mapping)),
            file=_field(location, "file", str),
            line=_field(location, "line", int),
            waiver=dict(waiver) if isinstance(waiver, Mapping) else None,
            waived_outcome=data.get("waived_outcome") if waiver is not None else None,
            expired_waivers=tuple(dict(w) for w in data.get("expired_waivers") or ()),
            references=tuple(str(r) for r in data.get("references") or ()),
        )


def _field(data: Mapping[str, Any], key: str, kind: type) -> Any:
    """``data[key]`` when it is a ``kind``, else one-line InputError (schema path style)."""
    if not isinstance(data, Mapping) or key not in data:
        raise InputError(f"not a Decision (schemas/decision.schema.json): {key!r} is missing")
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InputError(f"not a Decision (schemas/decision.schema.json): {key!r} is "
                         f"{type(value).__name__}, expected {kind.__name__}")
    return value


@dataclass(frozen=True)
class PolicyRef:
    """A policy as it took part in a decision."""

    name: str
    version: str
    mode: str
    digest: str
    source: str
    applied: bool
    """False when appliesTo excluded it (its rules are all skipped)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"name": self.name, "version": self.version, "mode": self.mode,
                "digest": self.digest, "source": self.source, "applied": self.applied}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicyRef:
        """The policy reference of :meth:`to_dict` read back.

        Raises:
            InputError: a required field is missing or of the wrong kind.
        """
        return cls(**{key: _field(data, key, str) for key in
                      ("name", "version", "mode", "digest", "source")},
                   applied=_field(data, "applied", bool))


@dataclass(frozen=True)
class Decision:
    """allow or deny, with every rule's result and the digests to replay it."""

    id: str
    decision: Literal["allow", "deny"]
    subject: dict[str, str]
    """model, version, digest."""
    event: dict[str, str]
    """type, stage."""
    bundle_digest: str
    input_digest: str
    evaluated_at: str
    policies: tuple[PolicyRef, ...]
    results: tuple[RuleResult, ...]
    reasons: tuple[str, ...] = field(default=())
    """One line per thing that denied (empty on allow)."""

    @property
    def allow(self) -> bool:
        """True when the decision is allow."""
        return self.decision == "allow"

    def __bool__(self) -> bool:
        return self.allow

    def summary(self) -> dict[str, int]:
        """Count of results per outcome (every outcome present)."""
        counts: Counter[str] = Counter(r.outcome for r in self.results)
        return {name: counts.get(name, 0) for name in OUTCOMES}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form conforming to schemas/decision.schema.json."""
        return {
            "apiVersion": "policyengine/v1",
            "kind": "Decision",
            "id": self.id,
            "decision": self.decision,
            "subject": dict(self.subject),
            "event": dict(self.event),
            "bundle_digest": self.bundle_digest,
            "input_digest": self.input_digest,
            "evaluated_at": self.evaluated_at,
            "policies": [p.to_dict() for p in self.policies],
            "results": [r.to_dict() for r in self.results],
            "summary": self.summary(),
            "reasons": list(self.reasons),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        """The Decision of :meth:`to_dict` read back (a log payload, a gate result).

        ``summary`` is derived from the results, so a dict whose summary does
        not agree with its results is refused rather than silently corrected.

        Raises:
            InputError: not the shape of schemas/decision.schema.json.
        """
        if data.get("kind") != "Decision" or data.get("apiVersion") != "policyengine/v1":
            raise InputError("not a Decision (schemas/decision.schema.json): expected "
                             "apiVersion policyengine/v1 and kind Decision")
        decision = cls(
            id=_field(data, "id", str),
            decision=_field(data, "decision", str),
            subject=dict(_field(data, "subject", Mapping)),
            event=dict(_field(data, "event", Mapping)),
            bundle_digest=_field(data, "bundle_digest", str),
            input_digest=_field(data, "input_digest", str),
            evaluated_at=_field(data, "evaluated_at", str),
            policies=tuple(PolicyRef.from_dict(p) for p in _field(data, "policies", list)),
            results=tuple(RuleResult.from_dict(r) for r in _field(data, "results", list)),
            reasons=tuple(_field(data, "reasons", list)),
        )
        if decision.decision not in ("allow", "deny"):
            raise InputError("not a Decision (schemas/decision.schema.json): 'decision' is "
                             f"{decision.decision!r}, expected allow or deny")
        if _field(data, "summary", Mapping) != decision.summary():
            raise InputError("not a Decision (schemas/decision.schema.json): 'summary' does "
                             "not match the results")
        return decision
