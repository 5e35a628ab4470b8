"""Renderers of a Decision for people and CI systems: text, json, junit, sarif, github.

Each renderer is a pure function ``render(decision, context) -> str`` over the
one :class:`~policyengine.decision.Decision` type and a :class:`ReportContext`
holding what the Decision does not (the card file and the lines of its values,
where each rule is written, the log position, notes such as approvals that did
not count). Renderers do no I/O, except that ``github.write_step_summary``
appends to ``$GITHUB_STEP_SUMMARY``. Modules are imported on demand to keep the
command line fast.

How a result reads is decided here once, for every format: :func:`label` (the
word people see: an enforced ``FAIL`` is not a ``WARN``, an ``INFO`` or an
``AUDIT`` that was not enforced) and :func:`level` (SARIF 2.1.0 §3.27.10 and the
matching GitHub workflow command).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from policyengine.decision import Decision, RuleResult

__all__ = ["FORMATS", "ReportContext", "card_line", "label", "level", "render", "subject_line"]

FORMATS: tuple[str, ...] = ("text", "json", "junit", "sarif", "github")

Label = Literal["FAIL", "ERROR", "WARN", "INFO", "AUDIT", "WAIVED"]
"""How a result that did not pass reads: FAIL and ERROR deny; the rest do not."""


@dataclass(frozen=True)
class ReportContext:
    """Facts about one run that a report shows beside the Decision, and how much to show."""

    card_path: str | None = None
    """The card file as given on the command line (SARIF and GitHub locations)."""
    card_lines: Mapping[str, int] = field(default_factory=dict)
    """Value path (``card.fairness[0].value``) -> 1-based line in the card file
    (:func:`policyengine.report.lines.card_lines`)."""
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
    explain: bool = False
    """Text: also the values each finding read, the policies that did not apply and
    the full bundle and input digests (what ``eval`` shows)."""


def label(result: RuleResult) -> Label | None:
    """The word for a result that did not pass; None for pass and skipped.

    An audit-mode fail or error is ``AUDIT`` whatever its severity: it would have
    counted, but audit mode records and never blocks (DESIGN.md "Policies").
    """
    if result.outcome == "waived":
        return "WAIVED"
    if result.outcome not in ("fail", "error"):
        return None
    if not result.enforced:
        return "AUDIT"
    if result.outcome == "error":
        return "ERROR"
    return {"warn": "WARN", "info": "INFO"}.get(result.severity, "FAIL")  # type: ignore[return-value]


def enforced_label(result: RuleResult) -> Label | None:
    """The label the result would have if its policy were enforced (for AUDIT lines)."""
    if result.outcome == "error":
        return "ERROR"
    if result.outcome == "fail":
        return {"warn": "WARN", "info": "INFO"}.get(result.severity, "FAIL")  # type: ignore[return-value]
    return None


def level(result: RuleResult) -> Literal["error", "warning", "note"]:
    """SARIF 2.1.0 §3.27.10 level: error blocks, warning informs, note is advisory."""
    if not result.enforced:
        return "warning" if result.severity == "deny" else "note"
    if result.outcome == "error" or result.severity == "deny":
        return "error"
    return "warning" if result.severity == "warn" else "note"


def _in_message(value: Any, message: str) -> bool:
    """True when a scalar value appears in the message as a whole token (``= 0.72``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str) or value == "":
        return False
    token = re.escape(str(value))
    return re.search(rf"(?<![\w.]){token}(?![\w]|\.\d)", message) is not None


def card_line(result: RuleResult, context: ReportContext) -> int | None:
    """The card line of the value the rule read, if the card holds any of them.

    A rule reads many values (every ``card.fairness[*].metric`` and ``.value``);
    the one its message names (``... for sex = 0.72``) is the one that failed,
    so it is preferred; otherwise the first value the card holds.
    """
    held = [(p, v) for p, v in result.values.items() if p in context.card_lines]
    named = [p for p, v in held if _in_message(v, result.message)]
    for path in named or [p for p, _ in held]:
        return context.card_lines[path]
    return None


def render(fmt: str, decision: Decision, context: ReportContext | None = None) -> str:
    """Render ``decision`` in ``fmt`` (one of :data:`FORMATS`).

    Raises:
        ValueError: unknown format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    module = importlib.import_module(f"policyengine.report.{fmt}")
    return str(module.render(decision, context or ReportContext()))


def subject_line(decision: Decision) -> str:
    """``model version (event to stage)`` as far as the Decision names them."""
    name = decision.subject.get("model") or "?"
    version = decision.subject.get("version") or "?"
    stage = decision.event.get("stage")
    verb = decision.event.get("type") or "promote"
    return f"{name} {version}" + (f" ({verb} to {stage})" if stage else f" ({verb})")
