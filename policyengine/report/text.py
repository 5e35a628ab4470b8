"""Text report for people reading a CI log.

One line per rule that failed, errored, warned or was waived (policy, rule id,
message, remediation), then the approvals that did not count and why, then a
summary line with the decision, its id, the log seq and the checkpoint size.
Passing and not-applicable rules are counted, not listed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from policyengine.report import ReportContext, RuleResult, is_allow, rule_results, subject_line

_LABELS = {"fail": "FAIL", "error": "ERROR", "waived": "WAIVED"}


def _label(result: RuleResult) -> str | None:
    if result.outcome in ("fail", "error") and (
        result.severity != "deny" or result.mode != "enforce"
    ):
        return "ERROR" if result.outcome == "error" and result.mode == "enforce" else "WARN"
    return _LABELS.get(result.outcome)


def _rule_lines(result: RuleResult, label: str) -> list[str]:
    version = f"@{result.policy_version}" if result.policy_version else ""
    lines = [f"  {label:<6} {result.policy}{version} {result.rule}: {result.message}".rstrip()]
    if result.outcome == "waived" and result.waiver:
        waiver = result.waiver
        lines.append(
            f"         waived by {waiver.get('id', '?')} ({waiver.get('ticket', '')}), "
            f"expires {waiver.get('expires', '?')}"
        )
    elif result.remediation:
        lines.append(f"         remediation: {result.remediation.strip()}")
    return lines


def render(decision: Mapping[str, Any], context: ReportContext) -> str:
    """Render the Decision as plain text, one finding per line."""
    results = rule_results(decision)
    verdict = "ALLOW" if is_allow(decision) else "DENY"
    lines = [f"{verdict} {subject_line(decision)}"]
    for result in results:
        label = _label(result)
        if label:
            lines.extend(_rule_lines(result, label))
    if not results:
        lines.append("  no rule applies: denied (fail closed)")
    if context.notes:
        lines.append("  not counted:")
        lines.extend(f"    - {note}" for note in context.notes)
    counts = Counter(r.outcome for r in results)
    tally = ", ".join(
        f"{counts[k]} {k}" for k in ("pass", "fail", "error", "waived", "skipped") if counts[k]
    )
    lines.append(f"  rules: {tally or 'none'}")
    lines.append(_summary(decision, context, verdict))
    return "\n".join(lines) + "\n"


def _summary(decision: Mapping[str, Any], context: ReportContext, verdict: str) -> str:
    parts = [f"decision {verdict.lower()}"]
    if decision.get("id"):
        parts.append(f"id {decision['id']}")
    if context.seq is not None:
        parts.append(f"seq {context.seq}")
    if context.checkpoint_size is not None:
        parts.append(f"checkpoint size {context.checkpoint_size}")
    if decision.get("bundle_digest"):
        parts.append(f"bundle {str(decision['bundle_digest'])[:19]}")
    if context.receipt_path:
        parts.append(f"receipt {context.receipt_path}")
    return "  " + ", ".join(parts)
