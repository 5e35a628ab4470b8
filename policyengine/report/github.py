"""GitHub Actions report: workflow commands and a Markdown step summary.

``render`` returns ``::error``/``::warning``/``::notice`` workflow commands, one
per finding, annotated on the card file at the line of the value the rule
read (:func:`policyengine.report.card_line`; line 1 when none of its values is
in the card, e.g. a missing field); ``write_step_summary`` appends a
Markdown table to the file named by ``$GITHUB_STEP_SUMMARY`` when it is set.
Values are escaped as the Actions runner expects (``%``, CR, LF, and in
properties also ``:`` and ``,``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from policyengine.decision import Decision, RuleResult
from policyengine.report import ReportContext, card_line, label, level, subject_line


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _command(result: RuleResult) -> str | None:
    """error for what denies, warning / notice (by level) for what does not."""
    if result.outcome == "waived":
        return "notice"
    if result.outcome not in ("fail", "error"):
        return None
    if result.blocks():
        return "error"
    return "warning" if level(result) != "note" else "notice"


def render(decision: Decision, context: ReportContext) -> str:
    """Render findings as workflow commands, then a one-line verdict."""
    lines = []
    for result in decision.results:
        command = _command(result)
        if not command:
            continue
        props = []
        if context.card_path:
            props.append(f"file={_escape_property(context.card_path)}")
            props.append(f"line={card_line(result, context) or 1}")
        props.append(f"title={_escape_property(f'{label(result)} {result.key}')}")
        text = result.message
        if result.outcome == "waived":
            text = f"waived: {text}"
        elif result.remediation:
            text = f"{text}\nremediation: {result.remediation.strip()}"
        lines.append(f"::{command} {','.join(props)}::{_escape_data(text)}")
    for note in context.notes:
        lines.append(f"::warning title=not counted::{_escape_data(note)}")
    verdict = "allow" if decision.allow else "deny"
    lines.append(f"policyengine: {verdict} {subject_line(decision)}")
    return "\n".join(lines) + "\n"


def summary_markdown(decision: Decision, context: ReportContext) -> str:
    """The Markdown step summary: verdict, findings table, notes, log position."""
    verdict = "✅ allow" if decision.allow else "❌ deny"
    out = [f"### policyengine gate: {verdict}", "", f"{subject_line(decision)}", ""]
    rows = [r for r in decision.results if label(r)]
    if rows:
        out += ["| outcome | policy | rule | message |", "|---|---|---|---|"]
        for r in rows:
            message = r.message.replace("|", "\\|").replace("\n", " ")
            out.append(f"| {str(label(r)).lower()} | {r.policy} | `{r.rule}` | {message} |")
        out.append("")
    if context.notes:
        out += ["**Not counted:**", ""] + [f"- {n}" for n in context.notes] + [""]
    if context.seq is not None:
        out.append(f"Logged at seq {context.seq}, checkpoint size {context.checkpoint_size}.")
    return "\n".join(out) + "\n"


def write_step_summary(
    decision: Decision, context: ReportContext, env: Mapping[str, str] | None = None
) -> bool:
    """Append the summary to ``$GITHUB_STEP_SUMMARY``; False when it is not set."""
    target = (os.environ if env is None else env).get("GITHUB_STEP_SUMMARY")
    if not target:
        return False
    with open(target, "a", encoding="utf-8") as fh:
        fh.write(summary_markdown(decision, context))
    return True
