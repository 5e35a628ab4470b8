"""`policyengine audit query|timeline|redact|hold|release`: what an auditor runs in a terminal."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

from tests.integration.gatecli import MODEL, VERSION, cli


def _old_entry(workdir, days: int = 200) -> int:
    """Append a `registered` entry written ``days`` ago (beyond the 180-day floor); its seq."""
    from audit.log import AuditLog

    log = AuditLog.open(f"sqlite:///{workdir / '.policyengine' / 'audit.db'}")
    try:
        when = datetime.now(UTC) - timedelta(days=days)
        subject = {"name": "old-model", "version": "0.1", "digest": "sha256:" + "1" * 64}
        return log.append("registered", subject, "registry", {"note": "personal data"},
                          time=when).seq
    finally:
        log.close()


def test_query_filters_decisions_and_formats(story):
    """query --decision deny finds the deny only; json, csv and table say the same seqs."""
    run = cli("audit", "query", "--model", MODEL, "--decision", "deny", "--format", "json")
    assert run.code == 0, run.err
    rows = json.loads(run.out)
    assert [r["seq"] for r in rows] == [1]  # seq 0 is the policy bundle
    assert "failed: approvals/" in rows[0]["summary"] and rows[0]["covered"] is True
    as_csv = list(csv.DictReader(io.StringIO(
        cli("audit", "query", "--type", "approval", "--format", "csv").out)))
    assert [r["seq"] for r in as_csv] == ["2", "3"]
    table = cli("audit", "query", "--type", "promoted", "--format", "table").out
    assert "promoted to production" in table and "(1 entries)" in table


def test_query_by_rule_and_policy(story):
    """--rule and --policy select the decisions evaluated under them (both gates here)."""
    by_rule = json.loads(cli("audit", "query", "--rule", "distinct-approvers",
                             "--format", "json").out)
    assert [r["seq"] for r in by_rule] == [1, 4]
    none = json.loads(cli("audit", "query", "--policy", "no-such-policy", "--format", "json").out)
    assert none == []


def test_query_bad_time_is_exit_2(story):
    """A time without a zone is refused with exit 2 and one line."""
    run = cli("audit", "query", "--since", "2025-01-01T00:00:00")
    assert run.code == 2 and "zone" in run.err


def test_timeline_tells_the_story(story):
    """The version timeline lists the deny with its failed rules, approvers with roles, allow,
    promotion, each covered by the verified checkpoint."""
    run = cli("audit", "timeline", MODEL, VERSION)
    assert run.code == 0, run.err
    text = run.out
    assert "verified checkpoint covers seq 0..5" in text
    assert "deny promote to production; failed: approvals/distinct-approvers" in text
    assert "approved by bob@bank.example as model-risk" in text
    assert "approved by carol@bank.example as domain-owner" in text
    assert "promoted to production" in text
    data = json.loads(cli("audit", "timeline", MODEL, "--format", "json").out)
    assert [e["seq"] for e in data["entries"]] == [1, 2, 3, 4, 5]
    assert all(e["covered"] for e in data["entries"])


def test_redact_inside_floor_is_refused_with_exit_2(story):
    """Redacting a fresh entry exits 2 naming the retention floor; nothing is written."""
    before = json.loads(cli("audit", "query", "--format", "json").out)
    run = cli("audit", "redact", "1", "--reason", "erasure request 7")
    assert run.code == 2
    assert "within the retention floor" in run.err and "redactable after" in run.err
    assert json.loads(cli("audit", "query", "--format", "json").out) == before


def test_redact_of_a_policy_bundle_is_refused_even_when_old(story):
    """A policy bundle is kept whatever its age: replay needs its text; exit 2, nothing written."""
    old = datetime.now(UTC) - timedelta(days=400)
    from audit.log import AuditLog

    log = AuditLog.open(f"sqlite:///{story / '.policyengine' / 'audit.db'}")
    try:
        seq = log.append("policy_bundle", {"name": "policy-bundle", "digest": "sha256:" + "2" * 64},
                         "ci-bot", {"bundle_digest": "sha256:" + "2" * 64}, time=old).seq
    finally:
        log.close()
    before = json.loads(cli("audit", "query", "--format", "json").out)
    run = cli("audit", "redact", str(seq), "--reason", "erasure request 8")
    assert run.code == 2
    assert f"entry {seq} is a policy_bundle entry" in run.err and "replayed" in run.err
    assert json.loads(cli("audit", "query", "--format", "json").out) == before


def test_redact_under_hold_refused_then_released_redacts(story):
    """An old entry under legal hold is refused (exit 2); after release it is redacted, the
    log still verifies and the timeline shows the tombstone."""
    seq = _old_entry(story)
    held = cli("audit", "hold", "old-model", "--reason", "litigation L-1")
    assert held.code == 0, held.err
    hold_id = int(held.out.split()[2])
    refused = cli("audit", "redact", str(seq), "--reason", "erasure request 9")
    assert refused.code == 2 and f"under legal hold (hold entry {hold_id})" in refused.err
    released = cli("audit", "release", str(hold_id), "--reason", "litigation closed")
    assert released.code == 0, released.err
    done = cli("audit", "redact", str(seq), "--reason", "erasure request 9")
    assert done.code == 0, done.err
    verify = cli("audit", "verify")
    assert verify.code == 0 and "1 redacted payload" in verify.out, verify.out + verify.err
    timeline = cli("audit", "timeline", "old-model").out
    assert "registered (payload redacted)" in timeline
    assert f"payload of entry {seq} redacted by ci-bot: erasure request 9" in timeline
    assert "legal hold by ci-bot: litigation L-1" in timeline
    assert "litigation closed" in timeline


def test_hold_by_seq_holds_that_version(story):
    """`hold SEQ` holds the entry's model version; a release of a non-hold entry is exit 2."""
    held = cli("audit", "hold", "3", "--reason", "regulator inquiry")
    assert held.code == 0, held.err
    assert f"held {MODEL} {VERSION}" in held.out
    wrong = cli("audit", "release", "3")
    assert wrong.code == 2 and "not a legal_hold" in wrong.err
    again = cli("audit", "release", held.out.split()[2])
    assert again.code == 0
    twice = cli("audit", "release", held.out.split()[2])
    assert twice.code == 2 and "not active" in twice.err


def test_redact_needs_a_reason(story):
    """redact without --reason is a usage error (exit 2)."""
    assert cli("audit", "redact", "0").code == 2
