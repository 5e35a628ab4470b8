"""Evaluate a compiled policy set against one card, event and history.

Pure: no I/O, no randomness, no wall-clock reads; the caller passes ``now``
(as OPA's EvalTime) and the same inputs always give the same Decision, id
included. The only clock is a monotonic run-time deadline (:mod:`.limits`)
that turns a runaway rule into ``error``; it never enters a Decision
otherwise. This module imports nothing from ``audit``.

Outcome of a rule (DESIGN.md "Policies", CONTRACT.md "Engine"):

- ``skipped``: its policy's ``appliesTo`` excludes this event;
- ``pass`` / ``fail``: ``expr`` yielded true / false;
- ``error``: ``expr`` could not be evaluated (missing field, type error,
  a non-bool result, a limit hit); the message names the missing field;
- ``waived``: ``fail`` or ``error`` turned off by an applying waiver.

Deny when any enforce-mode rule of severity deny fails or errors, when any
enforce-mode rule errors, or when no rule applies at all (fail closed).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from celpy import celtypes

from policyengine.decision import Decision, PolicyRef, RuleResult
from policyengine.errors import EvaluationError
from policyengine.policy import cel
from policyengine.policy.compile import CompiledPolicy, CompiledPolicySet, CompiledRule, digest_of
from policyengine.policy.explain import missing_field, values_read
from policyengine.policy.limits import Budget, LimitExceeded, decision_deadline
from policyengine.policy.numbers import normalise, to_cel
from policyengine.policy.waivers import select_waiver

__all__ = ["Context", "evaluate"]


@dataclass(frozen=True)
class Context:
    """The facts one decision is made from."""

    card: Mapping[str, Any]
    """The model card (schemas/model-card.schema.json)."""
    event: Mapping[str, Any]
    """type, stage, model, version, digest, actor."""
    history: Mapping[str, Any] = field(default_factory=dict)
    """approvals, waivers, decisions, promotions, events (CONTRACT.md)."""


@dataclass
class _Inputs:
    """Normalised plain data and CEL values shared by every rule of a decision."""

    plain: dict[str, Any]
    values: dict[str, Any]
    model: str
    version: str


def _rfc3339(now: _dt.datetime) -> str:
    return now.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")


def _subject(card: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, str]:
    found = card.get("model")
    model: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    return {
        "model": str(event.get("model") or model.get("name") or ""),
        "version": str(event.get("version") or model.get("version") or ""),
        "digest": str(event.get("digest") or model.get("artifact_digest") or ""),
    }


def _not_applicable(policy: CompiledPolicy, plain: dict[str, Any]) -> str | None:
    checks = (("events", plain["event"].get("type"), "event type"),
              ("stages", plain["event"].get("stage"), "stage"),
              ("riskTiers", plain["card"].get("risk_tier"), "risk tier"))
    for key, actual, label in checks:
        allowed = policy.applies_to.get(key)
        if allowed is not None and actual not in allowed:
            return f"not applicable: {label} {actual!r} not in [{', '.join(allowed)}]"
    return None


def _run(program: cel.Program, act: Any, cps: CompiledPolicySet, deadline: float) -> Any:
    return program.evaluate(act, Budget(cps.limits, deadline))


def _render_message(rule: CompiledRule, act: Any, cps: CompiledPolicySet,
                    deadline: float) -> str:
    try:
        text = _run(rule.message, act, cps, deadline)
    except (cel.CelEvalFailure, LimitExceeded) as exc:
        return f"message could not be rendered: {exc}"
    if not isinstance(text, str):
        return f"message must yield a string, got {type(text).__name__}"
    return str(text)


def _judge(rule: CompiledRule, act: Any, data: dict[str, Any],
           cps: CompiledPolicySet, deadline: float) -> tuple[str, str]:
    """(outcome, message) of one applicable rule."""
    try:
        value = _run(rule.expr, act, cps, deadline)
    except LimitExceeded as exc:
        return "error", str(exc)
    except cel.CelEvalFailure as exc:
        return "error", missing_field(rule.checks, data) or f"cannot evaluate: {exc}"
    if not isinstance(value, celtypes.BoolType | bool):
        return "error", f"expr must yield a bool, got {type(value).__name__}"
    if value:
        return "pass", ""
    return "fail", _render_message(rule, act, cps, deadline)


def _rule_result(rule: CompiledRule, policy: CompiledPolicy, outcome: str, message: str,
                 values: dict[str, Any]) -> RuleResult:
    return RuleResult(
        policy=policy.name, policy_version=policy.version, rule=rule.id,
        severity=rule.severity, mode=policy.mode, outcome=outcome,  # type: ignore[arg-type]
        message=message, remediation=rule.remediation if outcome != "pass" else "",
        values=values, file=rule.file, line=rule.line,
        # The policy's references travel with what failed, so a deny cites its sources.
        references=policy.references if outcome in ("fail", "error") else (),
    )


def _apply_waivers(result: RuleResult, inputs: _Inputs, now: _dt.datetime) -> RuleResult:
    waivers = inputs.plain["history"].get("waivers") or []
    if not isinstance(waivers, list):
        return result
    active, ignored = select_waiver(waivers, result.policy, result.rule,
                                    inputs.model, inputs.version, now)
    if result.outcome in {"fail", "error"} and active is not None:
        return replace(result, outcome="waived", waiver=active,
                       waived_outcome=result.outcome, expired_waivers=tuple(ignored))
    if ignored and result.outcome != "skipped":
        return replace(result, expired_waivers=tuple(ignored))
    return result


def _policy_results(policy: CompiledPolicy, inputs: _Inputs, now: _dt.datetime,
                    cps: CompiledPolicySet, deadline: float) -> tuple[bool, list[RuleResult]]:
    skip = _not_applicable(policy, inputs.plain)
    if skip:
        return False, [_rule_result(r, policy, "skipped", skip, {}) for r in policy.rules]
    data = dict(inputs.plain, params=policy.params)
    act = cel.activation(dict(inputs.values, params=policy.params_cel))
    results = []
    for rule in policy.rules:
        outcome, message = _judge(rule, act, data, cps, deadline)
        result = _rule_result(rule, policy, outcome, message, values_read(rule.reads, data))
        results.append(_apply_waivers(result, inputs, now))
    return True, results


def _reasons(results: list[RuleResult], any_applied: bool, event: dict[str, Any]) -> list[str]:
    reasons = [f"{r.policy}@{r.policy_version} {r.rule} {r.outcome}: {r.message}"
               for r in results if r.blocks()]
    if not any_applied:
        reasons.append(f"no policy applies to event {event.get('type')!r} at stage "
                       f"{event.get('stage')!r} (fail closed)")
    return reasons


HISTORY_KEYS = ("approvals", "waivers", "decisions", "promotions", "events")
"""History lists every rule can rely on: an absent one is empty (no approvals yet)."""


def _inputs(ctx: Context, now: _dt.datetime) -> _Inputs:
    history: dict[str, Any] = {key: [] for key in HISTORY_KEYS}
    history.update(ctx.history or {})
    try:
        plain = {"card": normalise(dict(ctx.card)), "event": normalise(dict(ctx.event)),
                 "history": normalise(history)}
        values = {name: to_cel(value) for name, value in plain.items()}
    except (TypeError, ValueError) as exc:
        raise EvaluationError(f"inputs are not JSON data: {exc}") from exc
    values["now"] = celtypes.TimestampType(now.astimezone(_dt.UTC))
    subject = _subject(ctx.card, ctx.event)
    return _Inputs(plain=plain, values=values, model=subject["model"], version=subject["version"])


def evaluate(cps: CompiledPolicySet, ctx: Context, now: _dt.datetime) -> Decision:
    """Decide allow or deny for ``ctx`` under ``cps`` at time ``now``.

    Args:
        cps: the compiled policy set.
        ctx: card, event and history (plain JSON data).
        now: the evaluation time; must be timezone-aware.

    Returns:
        The Decision, with every rule's result and the bundle/input digests.

    Raises:
        EvaluationError: ``now`` is naive or the inputs are not JSON data.
    """
    if now.tzinfo is None:
        raise EvaluationError("now must be timezone-aware, e.g. 2026-11-26T15:00:00Z")
    inputs = _inputs(ctx, now)
    deadline = decision_deadline(cps.limits)  # bounds run time only; never in the Decision
    refs, results, any_applied = [], [], False
    for policy in cps.policies:
        applied, policy_results = _policy_results(policy, inputs, now, cps, deadline)
        any_applied = any_applied or applied
        results.extend(policy_results)
        refs.append(PolicyRef(policy.name, policy.version, policy.mode, policy.digest,
                              policy.source, applied))
    try:
        input_digest = digest_of(dict(inputs.plain,
                                      params={p.name: p.params for p in cps.policies}))
    except (TypeError, ValueError) as exc:  # NaN/Infinity have no RFC 8785 form
        raise EvaluationError(f"inputs are not canonical JSON (NaN or Infinity?): {exc}") from exc
    reasons = _reasons(results, any_applied, inputs.plain["event"])
    evaluated_at = _rfc3339(now)
    ident = hashlib.sha256(f"{cps.bundle_digest}|{input_digest}|{evaluated_at}".encode())
    return Decision(
        id=f"dec_{ident.hexdigest()[:32]}",
        decision="deny" if reasons else "allow",
        subject=_subject(ctx.card, ctx.event),
        event={"type": str(inputs.plain["event"].get("type", "")),
               "stage": str(inputs.plain["event"].get("stage", ""))},
        bundle_digest=cps.bundle_digest, input_digest=input_digest, evaluated_at=evaluated_at,
        policies=tuple(refs), results=tuple(results), reasons=tuple(reasons),
    )
