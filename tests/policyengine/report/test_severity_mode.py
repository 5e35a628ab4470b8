"""Reports say what a result did: enforced FAIL/ERROR deny; WARN, INFO and AUDIT do not."""

from __future__ import annotations

import json

import pytest

from policyengine.report import ReportContext, render


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        ({"outcome": "fail"}, "  FAIL   p@1.0.0 r: r message"),
        ({"outcome": "fail", "severity": "warn"}, "  WARN   p@1.0.0 r: r message"),
        ({"outcome": "fail", "severity": "info"}, "  INFO   p@1.0.0 r: r message"),
        ({"outcome": "error"}, "  ERROR  p@1.0.0 r: r message"),
        ({"outcome": "error", "severity": "info"}, "  ERROR  p@1.0.0 r: r message"),
        ({"outcome": "fail", "mode": "audit"},
         "  AUDIT  p@1.0.0 r: r message [audit mode, not enforced: would be FAIL]"),
        ({"outcome": "fail", "mode": "audit", "severity": "warn"},
         "  AUDIT  p@1.0.0 r: r message [audit mode, not enforced: would be WARN]"),
        ({"outcome": "error", "mode": "audit"},
         "  AUDIT  p@1.0.0 r: r message [audit mode, not enforced: would be ERROR]"),
        ({"outcome": "waived", "waiver": {"id": "W-1", "ticket": "T-1", "expires": "2027-01-01"},
          "waived_outcome": "error"}, "  WAIVED p@1.0.0 r: r message"),
    ],
)
def test_text_labels_each_severity_and_mode(build, rule, extra, line):
    """Each severity and mode has its own label; only an enforced deny fail reads FAIL."""
    outcome = extra.pop("outcome")
    out = render("text", build([rule("p", "r", outcome, **extra)]), ReportContext())
    assert out.splitlines()[1] == line


def test_text_waived_says_what_it_was(build, rule):
    """A waived rule names its waiver and the outcome the waiver turned off."""
    waived = rule("p", "r", "waived", waiver={"id": "W-1", "ticket": "T-1", "expires": "2027"},
                  waived_outcome="error")
    out = render("text", build([waived], "allow"), ReportContext())
    assert "waived by W-1 (T-1), expires 2027, instead of error" in out
    assert "remediation" not in out


def test_text_tally_counts_what_does_not_block(build, rule):
    """The tally says how many failures did not block, so '2 fail' never reads as 2 denials."""
    results = [rule("p", "a", "fail"), rule("p", "b", "fail", severity="warn"),
               rule("q", "c", "error", mode="audit")]
    out = render("text", build(results), ReportContext())
    assert "  rules: 2 fail (1 not blocking), 1 error (1 not blocking)" in out


def test_text_explain_shows_values_skips_and_digests(build, rule):
    """With explain (eval) a finding shows its values, a skipped policy why, digests in full."""
    results = [rule("p", "r", "fail", values={"card.fairness[0].value": 0.7}),
               rule("q", "s", "skipped", message="not applicable: stage 'dev' not in [prod]"),
               rule("q", "t", "skipped", message="not applicable: stage 'dev' not in [prod]")]
    decision = build(results)
    plain = render("text", decision, ReportContext())
    out = render("text", decision, ReportContext(explain=True))
    assert "  FAIL   p@1.0.0 r: r message (card.fairness[0].value=0.7)" in out
    assert out.count("SKIP   q@1.0.0: not applicable: stage 'dev' not in [prod]") == 1
    assert f"input {decision.input_digest}" in out and f"bundle {decision.bundle_digest}" in out
    assert "card.fairness" not in plain and "SKIP" not in plain


def test_text_explain_lists_ignored_waivers(build, rule):
    """A waiver that did not apply is named with its status, under the rule it named."""
    failed = rule("p", "r", "fail", expired_waivers=[
        {"id": "W-9", "status": "expired", "expires": "2026-01-01T00:00:00Z"}])
    out = render("text", build([failed]), ReportContext())
    assert "waiver W-9 ignored: expired (expires 2026-01-01T00:00:00Z)" in out


@pytest.mark.parametrize(
    ("extra", "command"),
    [
        ({"outcome": "fail"}, "error"),
        ({"outcome": "error"}, "error"),
        ({"outcome": "fail", "severity": "warn"}, "warning"),
        ({"outcome": "fail", "severity": "info"}, "notice"),
        ({"outcome": "fail", "mode": "audit"}, "warning"),
        ({"outcome": "error", "mode": "audit"}, "warning"),
        ({"outcome": "error", "mode": "audit", "severity": "info"}, "notice"),
    ],
)
def test_github_only_what_denies_is_an_error(build, rule, extra, command):
    """Only an enforced deny failure or an enforced error is an ::error; audit errors are not."""
    outcome = extra.pop("outcome")
    out = render("github", build([rule("p", "r", outcome, **extra)]), ReportContext())
    assert out.startswith(f"::{command} ")


def test_sarif_marks_the_label(build, rule):
    """Each SARIF result carries its label, so an AUDIT failure is not read as a FAIL."""
    results = [rule("p", "a", "fail"), rule("p", "b", "fail", mode="audit")]
    log = json.loads(render("sarif", build(results), ReportContext()))
    labels = [r["properties"]["label"] for r in log["runs"][0]["results"]]
    assert labels == ["FAIL", "AUDIT"]
