"""GitHub report: workflow commands and the step summary file."""

from __future__ import annotations

from policyengine.report import ReportContext, render
from policyengine.report.github import write_step_summary


def test_github_commands(decision, context):
    """Deny failures are ::error on the card file, warn failures ::warning, waived ::notice."""
    lines = render("github", decision, context).splitlines()
    assert lines[0].startswith(
        "::error file=examples/card.yaml,line=1,title=FAIL approvals/min-approvers::"
    )
    assert any(line.startswith("::warning ") and "slo/latency-p95" in line for line in lines)
    assert any(line.startswith("::notice ") and "waived" in line for line in lines)


def test_github_escapes_newlines(decision, context):
    """Message newlines are escaped so one finding stays one command."""
    out = render("github", decision, context)
    assert "%0Aremediation: fix min-approvers" in out


def test_step_summary_appended(decision, context, tmp_path):
    """With GITHUB_STEP_SUMMARY set, a Markdown table is appended to that file."""
    target = tmp_path / "summary.md"
    target.write_text("before\n")
    assert write_step_summary(decision, context, {"GITHUB_STEP_SUMMARY": str(target)})
    text = target.read_text()
    assert text.startswith("before\n") and "policyengine gate" in text
    assert "| fail | approvals | `min-approvers` |" in text


def test_step_summary_skipped_without_env(decision, context):
    """Without GITHUB_STEP_SUMMARY nothing is written."""
    assert write_step_summary(decision, context, {}) is False


def test_unknown_format_rejected(decision):
    """An unknown format name is a ValueError naming the choices."""
    import pytest

    with pytest.raises(ValueError, match="expected one of"):
        render("html", decision, ReportContext())
