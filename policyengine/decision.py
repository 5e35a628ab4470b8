"""The Decision: what was decided, against which policies and inputs, and why.

Plain frozen dataclasses, built by :func:`policyengine.policy.evaluate` and
serialised by ``to_dict()`` into the shape of ``schemas/decision.schema.json``
(a test validates it). This module owns the result types only; rendering
for people lives in the CLI and report modules.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

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

    @property
    def key(self) -> str:
        """``policy/rule``."""
        return f"{self.policy}/{self.rule}"

    def blocks(self) -> bool:
        """True when this result alone denies (CONTRACT: fail closed)."""
        if self.mode != "enforce":
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
        return out


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
