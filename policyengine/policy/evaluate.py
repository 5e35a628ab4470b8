"""Evaluate a compiled policy set against one card, event and history.

Pure: no I/O, no randomness, no wall-clock reads; the caller passes ``now``
(as OPA's EvalTime) and the same inputs always give the same Decision, id
included. The only clock is a CPU-time run-time deadline (:mod:`.limits`)
that turns a runaway rule into ``error``; it never enters a Decision
otherwise. This module imports nothing from ``audit``.

Outcome of a rule:

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

from audit import canonical
from audit.errors import CanonicalizationError
from policyengine import resources
from policyengine.decision import Decision, PolicyRef, RuleResult
from policyengine.errors import EvaluationError, PolicyEngineError
from policyengine.policy import cel, cel_native
from policyengine.policy.compile import (
    INPUT_NAMES,
    CompiledPolicy,
    CompiledPolicySet,
    CompiledRule,
)
from policyengine.policy.explain import missing_field
from policyengine.policy.limits import Budget, LimitExceeded, decision_deadline
from policyengine.policy.numbers import normalise, plain_to_cel, to_cel
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
    """approvals, waivers, decisions, promotions, events (schemas/history.schema.json)."""
    schema_checked: bool = False
    """True only when the caller validated these very card and history objects
    against their schemas (``validate_card``, the history schema) and did not
    change them since: the fast path then skips checking them again."""


class _Inputs:
    """Normalised plain data shared by every rule of a decision; CEL values on demand."""

    __slots__ = ("_values", "model", "now", "plain", "sizes", "version", "waivers")

    def __init__(self, plain: dict[str, Any], subject: dict[str, str], now: _dt.datetime,
                 sizes: tuple[int, int] | None) -> None:
        self.plain = plain
        self.model, self.version = subject["model"], subject["version"]
        self.now = now
        self.sizes = sizes
        """(longest list, largest step charge) when the native runtime may be used."""
        waivers = plain["history"].get("waivers")
        self.waivers = waivers if isinstance(waivers, list) and waivers else None
        self._values: dict[str, Any] | None = None

    def values(self, names: frozenset[str] = INPUT_NAMES) -> dict[str, Any]:
        """CEL values of ``names`` among card, event, history and now, each built once.

        On the fast path (``sizes`` set) the plain data is known JSON with
        every number a finite double, so converting only what a policy names
        cannot hide an error; the reference path converts everything up front.
        """
        if self._values is None:
            self._values = {}
        values = self._values
        convert = to_cel if self.sizes is None else plain_to_cel
        for name in names - values.keys():
            values[name] = (celtypes.TimestampType(self.now.astimezone(_dt.UTC))
                            if name == "now" else convert(self.plain[name]))
        return values if len(values) == len(INPUT_NAMES) else {n: values[n] for n in names}


class _Scope:
    """One policy's view of a decision: its data, and its reference activation on demand."""

    __slots__ = ("_act", "data", "inputs", "policy")

    def __init__(self, inputs: _Inputs, policy: CompiledPolicy) -> None:
        self.inputs, self.policy = inputs, policy
        self.data = dict(inputs.plain, params=policy.params)
        self._act: Any = None

    def act(self) -> Any:
        """The reference activation (only rules the native runtime did not answer need it)."""
        if self._act is None:
            values = self.inputs.values(self.policy.inputs_read)
            self._act = cel.activation(dict(values, params=self.policy.params_cel))
        return self._act


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


def _render_message(rule: CompiledRule, scope: _Scope, cps: CompiledPolicySet,
                    deadline: float) -> str:
    try:
        text = _run(rule.message, scope.act(), cps, deadline)
    except (cel.CelEvalFailure, LimitExceeded) as exc:
        return f"message could not be rendered: {exc}"
    if not isinstance(text, str):
        return f"message must yield a string, got {type(text).__name__}"
    return str(text)


def _native_value(rule: CompiledRule, native_act: Any, sizes: tuple[int, int] | None,
                  cps: CompiledPolicySet) -> bool | None:
    """The rule's bool from the native runtime, or None when the reference must answer.

    The native runtime has no budget: it runs only when the reference's cost
    is bounded below the limit for these input sizes (:class:`.cel_qualify.CostShape`).
    """
    if rule.native is None or native_act is None or sizes is None:
        return None
    if rule.native.shape.bound(*sizes) > cps.limits.max_cost:
        return None
    return rule.native.evaluate(native_act)


def _judge(rule: CompiledRule, scope: _Scope, cps: CompiledPolicySet,
           deadline: float, native_act: Any = None) -> tuple[str, str]:
    """(outcome, message) of one applicable rule; errors and messages are the reference's."""
    fast = _native_value(rule, native_act, scope.inputs.sizes, cps)
    if fast is True:
        return "pass", ""
    if fast is False:
        return "fail", _render_message(rule, scope, cps, deadline)
    try:
        value = _run(rule.expr, scope.act(), cps, deadline)
    except LimitExceeded as exc:
        return "error", str(exc)
    except cel.CelEvalFailure as exc:
        return "error", missing_field(rule.checks, scope.data) or f"cannot evaluate: {exc}"
    if not isinstance(value, celtypes.BoolType | bool):
        return "error", f"expr must yield a bool, got {type(value).__name__}"
    if value:
        return "pass", ""
    return "fail", _render_message(rule, scope, cps, deadline)


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
    if inputs.waivers is None:  # no waivers: nothing to apply or to report as ignored
        return result
    active, ignored = select_waiver(inputs.waivers, result.policy, result.rule,
                                    inputs.model, inputs.version, now)
    if result.outcome in {"fail", "error"} and active is not None:
        return replace(result, outcome="waived", waiver=active,
                       waived_outcome=result.outcome, expired_waivers=tuple(ignored))
    if ignored and result.outcome != "skipped":
        return replace(result, expired_waivers=tuple(ignored))
    return result


def _policy_results(policy: CompiledPolicy, inputs: _Inputs, now: _dt.datetime,
                    cps: CompiledPolicySet, deadline: float,
                    native_act: Any) -> tuple[bool, list[RuleResult]]:
    skip = _not_applicable(policy, inputs.plain)
    if skip:
        return False, [_rule_result(r, policy, "skipped", skip, {}) for r in policy.rules]
    scope = _Scope(inputs, policy)
    results = []
    for rule in policy.rules:
        outcome, message = _judge(rule, scope, cps, deadline, native_act)
        result = _rule_result(rule, policy, outcome, message, rule.read_values(scope.data))
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


def _history(ctx: Context) -> dict[str, Any]:
    history: dict[str, Any] = {key: [] for key in HISTORY_KEYS}
    history.update(ctx.history or {})
    return history


def _reference_inputs(ctx: Context, now: _dt.datetime, subject: dict[str, str]) -> _Inputs:
    try:
        plain = {"card": normalise(dict(ctx.card)), "event": normalise(dict(ctx.event)),
                 "history": normalise(_history(ctx))}
        inputs = _Inputs(plain, subject, now, None)
        inputs.values()  # non-JSON data fails here, before any rule runs
    except (TypeError, ValueError) as exc:
        raise EvaluationError(f"inputs are not JSON data: {exc}") from exc
    return inputs


def _fast_inputs(ctx: Context, now: _dt.datetime, subject: dict[str, str],
                 cps: CompiledPolicySet) -> _Inputs:
    """Inputs with sizes, when card and history are plain JSON data matching their schemas.

    Qualification (:mod:`.cel_qualify`) relied on the schemas, so the native
    runtime is used only for inputs that match them; anything else is
    decided by the reference alone.
    """
    try:
        (card, event, history), sizes = cel_native.plain_and_sizes(
            [ctx.card, ctx.event, _history(ctx)])
    except TypeError:
        return _reference_inputs(ctx, now, subject)
    if not ctx.schema_checked:
        try:
            valid = (resources.fast_validator("model-card").is_valid(ctx.card)
                     and resources.fast_validator("history").is_valid(ctx.history or {}))
        except (ValueError, OverflowError):
            valid = False
        if not valid:
            return _Inputs({"card": card, "event": event, "history": history}, subject, now, None)
    longest, weight = cps.params_sizes  # rules read params too
    sizes = (max(sizes[0], longest), sizes[1] + weight)
    return _Inputs({"card": card, "event": event, "history": history}, subject, now, sizes)


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
    if cps.engine == "shadow":
        return _shadow(cps, ctx, now)
    return _decide(cps, ctx, now, fast=cps.engine == "fast")


def _shadow(cps: CompiledPolicySet, ctx: Context, now: _dt.datetime) -> Decision:
    """Decide on both paths; any difference is an internal error (fail closed)."""
    reference = _decide(cps, ctx, now, fast=False)
    fast = _decide(cps, ctx, now, fast=True)
    expected, found = reference.to_dict(), fast.to_dict()
    if expected != found:
        fields = sorted(k for k in expected.keys() | found.keys()
                        if expected.get(k) != found.get(k))
        raise PolicyEngineError(f"engine shadow: the fast path decided differently from the "
                                f"reference (fields: {', '.join(fields)})")
    return reference


def _input_digest(plain: dict[str, Any], cps: CompiledPolicySet) -> str:
    """RFC 8785 digest of ``{card, event, history, params}`` (keys in that, sorted, order).

    The params part is the same for every decision of ``cps``: its bytes are
    encoded once, at compile time.
    """
    digest = hashlib.sha256()
    try:
        for key in ("card", "event", "history"):
            digest.update(b"," if key != "card" else b"{")
            digest.update(b'"' + key.encode() + b'":' + canonical.dumps(plain[key]))
    except CanonicalizationError as exc:  # NaN/Infinity have no RFC 8785 form
        raise EvaluationError(f"inputs are not canonical JSON (NaN or Infinity?): {exc}") from exc
    digest.update(b',"params":' + cps.params_json + b"}")
    return "sha256:" + digest.hexdigest()


def _decide(cps: CompiledPolicySet, ctx: Context, now: _dt.datetime, *, fast: bool) -> Decision:
    subject = _subject(ctx.card, ctx.event)
    native_env = cps.native_env if fast else None
    inputs = (_fast_inputs(ctx, now, subject, cps) if native_env is not None
              else _reference_inputs(ctx, now, subject))
    native_act = (native_env.activation(inputs.plain, now)
                  if native_env is not None and inputs.sizes is not None else None)
    deadline = decision_deadline(cps.limits)  # bounds run time only; never in the Decision
    refs, results, any_applied = [], [], False
    for policy in cps.policies:
        applied, policy_results = _policy_results(policy, inputs, now, cps, deadline, native_act)
        any_applied = any_applied or applied
        results.extend(policy_results)
        refs.append(PolicyRef(policy.name, policy.version, policy.mode, policy.digest,
                              policy.source, applied))
    input_digest = _input_digest(inputs.plain, cps)
    event = inputs.plain["event"]
    reasons = _reasons(results, any_applied, event)
    evaluated_at = _rfc3339(now)
    ident = hashlib.sha256(f"{cps.bundle_digest}|{input_digest}|{evaluated_at}".encode())
    return Decision(
        id=f"dec_{ident.hexdigest()[:32]}",
        decision="deny" if reasons else "allow",
        subject=subject,
        event={"type": str(event.get("type", "")), "stage": str(event.get("stage", ""))},
        bundle_digest=cps.bundle_digest, input_digest=input_digest, evaluated_at=evaluated_at,
        policies=tuple(refs), results=tuple(results), reasons=tuple(reasons),
    )
