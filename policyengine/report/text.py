"""Text report for people reading a terminal or a CI log (``gate`` and ``eval``).

One line per rule that did not pass, labelled by what it did to the decision
(:func:`policyengine.report.label`): ``FAIL`` and ``ERROR`` deny; ``WARN`` and
``INFO`` are enforced findings that do not deny; ``AUDIT`` would have counted
but its policy is in audit mode; ``WAIVED`` names the waiver and what the rule
was before it. Then remediation, waivers that were ignored and why, approvals
that did not count, a tally and a summary line (decision id, log seq,
checkpoint size, bundle). Passing and not-applicable rules are counted, not
listed. With ``ReportContext.explain`` (``eval``) each finding also shows the
values it read, each policy that did not apply says why, and the digests are
printed whole.
"""

from __future__ import annotations

import json
from typing import Any

from policyengine.decision import OUTCOMES, Decision, RuleResult
from policyengine.report import ReportContext, enforced_label, label, subject_line

_INDENT = " " * 9
_MAX_VALUES = 6
"""Values shown per finding with ``explain``; the JSON report has them all."""


def _values_text(values: dict[str, Any]) -> str:
    if not values:
        return ""
    shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in list(values.items())[:_MAX_VALUES])
    more = f", +{len(values) - _MAX_VALUES} more" if len(values) > _MAX_VALUES else ""
    return f" ({shown}{more})"


def _headline(result: RuleResult, word: str, explain: bool) -> str:
    version = f"@{result.policy_version}" if result.policy_version else ""
    text = f"  {word:<6} {result.policy}{version} {result.rule}: {result.message}".rstrip()
    if word == "AUDIT":
        text += f" [audit mode, not enforced: would be {enforced_label(result)}]"
    return text + (_values_text(result.values) if explain else "")


def _rule_lines(result: RuleResult, word: str, explain: bool) -> list[str]:
    lines = [_headline(result, word, explain)]
    if result.waiver is not None:
        waiver = result.waiver
        lines.append(
            f"{_INDENT}waived by {waiver.get('id', '?')} ({waiver.get('ticket', '')}), "
            f"expires {waiver.get('expires', '?')}, instead of {result.waived_outcome or 'fail'}"
        )
    for ignored in result.expired_waivers:
        lines.append(f"{_INDENT}waiver {ignored.get('id', '?')} ignored: "
                     f"{ignored.get('status', '?')} (expires {ignored.get('expires', '?')})")
    if result.remediation and result.outcome != "waived":
        lines.append(f"{_INDENT}remediation: {result.remediation.strip()}")
    return lines


def _not_applied(decision: Decision) -> list[str]:
    """One line per policy that did not apply (not one per rule), with the reason."""
    lines, seen = [], set()
    for r in decision.results:
        if r.outcome == "skipped" and r.policy not in seen:
            seen.add(r.policy)
            lines.append(f"  SKIP   {r.policy}@{r.policy_version}: {r.message}".rstrip())
    return lines


def _tally(decision: Decision) -> str:
    counts = decision.summary()
    quiet = {k: sum(r.outcome == k and not r.blocks() for r in decision.results)
             for k in ("fail", "error")}
    parts = []
    for name in OUTCOMES:
        if counts[name]:
            extra = f" ({quiet[name]} not blocking)" if quiet.get(name) else ""
            parts.append(f"{counts[name]} {name}{extra}")
    return "  rules: " + (", ".join(parts) or "none")


def render(decision: Decision, context: ReportContext) -> str:
    """Render the Decision as plain text, one finding per line."""
    verdict = "ALLOW" if decision.allow else "DENY"
    lines = [f"{verdict} {subject_line(decision)}"]
    for result in decision.results:
        word = label(result)
        if word:
            lines.extend(_rule_lines(result, word, context.explain))
        elif result.expired_waivers and context.explain:  # a pass whose waiver was not needed
            lines.extend(_rule_lines(result, "PASS", explain=True))
    if all(r.outcome == "skipped" for r in decision.results):
        lines.append(f"  no policy applies to event {decision.event.get('type')!r} at stage "
                     f"{decision.event.get('stage')!r}: {decision.decision} (fail closed)")
    if context.explain:
        lines.extend(_not_applied(decision))
    if context.notes:
        lines.append("  not counted:")
        lines.extend(f"    - {note}" for note in context.notes)
    lines.append(_tally(decision))
    lines.append(_summary(decision, context, verdict))
    return "\n".join(lines) + "\n"


def _summary(decision: Decision, context: ReportContext, verdict: str) -> str:
    parts = [f"decision {verdict.lower()}", f"id {decision.id}"]
    if context.seq is not None:
        parts.append(f"seq {context.seq}")
    if context.checkpoint_size is not None:
        parts.append(f"checkpoint size {context.checkpoint_size}")
    if context.explain:
        parts += [f"bundle {decision.bundle_digest}", f"input {decision.input_digest}"]
    else:
        parts.append(f"bundle {decision.bundle_digest[:19]}")
    if context.receipt_path:
        parts.append(f"receipt {context.receipt_path}")
    return "  " + ", ".join(parts)
