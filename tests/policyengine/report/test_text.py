"""Text report: findings, notes and the summary line."""

from __future__ import annotations

from policyengine.report import ReportContext, render


def test_text_lists_failures_with_remediation(decision, context):
    """Each failed rule gets a line with policy, rule id and message, then its remediation."""
    out = render("text", decision, context)
    assert out.startswith("DENY credit-risk 1.4.0 (promote to production)")
    assert "FAIL   approvals@1.0.0 min-approvers: 1 of 2 approvals" in out
    assert "remediation: fix min-approvers" in out


def test_text_marks_warn_error_and_waived(decision, context):
    """A warn-severity failure is WARN, an error is ERROR, a waived rule is WAIVED not a pass."""
    out = render("text", decision, context)
    assert "WARN   slo@1.0.0 latency-p95" in out
    assert "ERROR  documentation@1.0.0 limitations" in out
    assert "WAIVED retention@1.0.0 pii-days" in out
    assert "waived by W-7 (RISK-12), expires 2027-01-01T00:00:00Z, instead of fail" in out
    assert "dp-ratio" not in out


def test_text_summary_has_id_seq_checkpoint(decision, context):
    """The last line names the decision id, the log seq and the checkpoint size."""
    last = render("text", decision, context).splitlines()[-1]
    assert "id dec_0101" in last and "seq 41" in last and "checkpoint size 42" in last


def test_text_shows_uncounted_approvals(decision, context):
    """Approvals that did not count are listed with the reason."""
    assert "key a1b2c3d4 is not in the trust file" in render("text", decision, context)


def test_text_no_rules_is_fail_closed(build):
    """A Decision with no results says it was denied because nothing applied."""
    out = render("text", build([]), ReportContext())
    assert "no policy applies to event 'promote' at stage 'production': deny (fail closed)" in out


def test_json_is_the_decision(decision, raw, context):
    """The json format prints the Decision's dict form unchanged."""
    import json

    assert json.loads(render("json", decision, context)) == raw
