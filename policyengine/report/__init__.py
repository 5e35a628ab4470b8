"""Renderers of a Decision for people and CI systems: text, json, junit, sarif, github.

Each renderer is a pure function ``render(decision, context) -> str`` over the
Decision dict (schemas/decision.schema.json) and a :class:`ReportContext`
holding what the Decision does not (the card file, where each rule is written,
the log position, notes such as approvals that did not count). Renderers do no
I/O, except that ``github.write_step_summary`` appends to
``$GITHUB_STEP_SUMMARY``. Modules are imported on demand to keep the command
line fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FORMATS", "ReportContext", "RuleResult", "render", "rule_results"]

FORMATS: tuple[str, ...] = ("text", "json", "junit", "sarif", "github")


@dataclass(frozen=True)
class ReportContext:
    """Facts about one gate run that a report shows beside the Decision."""

    card_path: str | None = None
    """The card file as given on the command line (SARIF and GitHub locations)."""
    rule_locations: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    """``"policy/rule"`` -> (policy file, 1-based line of the rule)."""
    seq: int | None = None
    """Sequence number of the decision entry in the log."""
    checkpoint_size: int | None = None
    """Size of the signed checkpoint covering the decision."""
    receipt_path: str | None = None
    """Where the receipt was written."""
    notes: tuple[str, ...] = ()
    """Extra lines for people, e.g. approvals that did not count and why."""


@dataclass(frozen=True)
class RuleResult:
    """One rule's outcome, read from the Decision whatever its spelling."""

    policy: str
    """Policy name."""
    policy_version: str
    """Policy version."""
    rule: str
    """Rule id."""
    outcome: str
    """pass | fail | error | waived | skipped."""
    severity: str
    """deny | warn | info."""
    mode: str
    """enforce | audit."""
    message: str
    """The rendered message."""
    remediation: str
    """What to do about it."""
    description: str
    """What the rule checks."""
    waiver: Mapping[str, Any] | None
    """The waiver that turned fail into waived, if any."""
    location: tuple[str, int] | None = None
    """(policy file, 1-based line) where the rule is written, when the Decision says."""

    @property
    def key(self) -> str:
        """``policy/rule``: unique within a policy set."""
        return f"{self.policy}/{self.rule}"


def _policy_fields(item: Mapping[str, Any]) -> tuple[str, str]:
    policy = item.get("policy")
    if isinstance(policy, Mapping):
        return str(policy.get("name", "")), str(policy.get("version", ""))
    version = item.get("policy_version") or item.get("version") or ""
    return str(policy or ""), str(version)


def _location(value: Any) -> tuple[str, int] | None:
    if isinstance(value, Mapping) and value.get("file"):
        return str(value["file"]), int(value.get("line") or 1)
    return None


def rule_results(decision: Mapping[str, Any]) -> list[RuleResult]:
    """The Decision's rule results in order, normalised to :class:`RuleResult`."""
    out = []
    for item in decision.get("results") or decision.get("rules") or []:
        name, version = _policy_fields(item)
        out.append(
            RuleResult(
                policy=name,
                policy_version=version,
                rule=str(item.get("rule") or item.get("rule_id") or item.get("id") or ""),
                outcome=str(item.get("outcome") or item.get("result") or ""),
                severity=str(item.get("severity") or "deny"),
                mode=str(item.get("mode") or "enforce"),
                message=str(item.get("message") or ""),
                remediation=str(item.get("remediation") or ""),
                description=str(item.get("description") or ""),
                waiver=item.get("waiver"),
                location=_location(item.get("location")),
            )
        )
    return out


def is_allow(decision: Mapping[str, Any]) -> bool:
    """True when the Decision allows (``allow: true`` or ``decision: "allow"``)."""
    if "allow" in decision:
        return bool(decision["allow"])
    return decision.get("decision") == "allow"


def render(fmt: str, decision: Mapping[str, Any], context: ReportContext | None = None) -> str:
    """Render ``decision`` in ``fmt`` (one of :data:`FORMATS`).

    Raises:
        ValueError: unknown format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    module = importlib.import_module(f"policyengine.report.{fmt}")
    return str(module.render(decision, context or ReportContext()))


def subject_line(decision: Mapping[str, Any]) -> str:
    """``model version -> stage`` as far as the Decision names them."""
    event = decision.get("event") or {}
    model = decision.get("model") or decision.get("subject") or {}
    name = event.get("model") or model.get("name") or model.get("model") or "?"
    version = event.get("version") or model.get("version") or "?"
    stage = event.get("stage")
    verb = event.get("type") or "promote"
    return f"{name} {version}" + (f" ({verb} to {stage})" if stage else f" ({verb})")
