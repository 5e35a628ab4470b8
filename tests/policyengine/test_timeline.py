"""policyengine.timeline over a real SQLite log: filters, timelines, coverage, standing."""

from __future__ import annotations

from datetime import datetime

import pytest

from policyengine.errors import InputError
from policyengine.timeline import Filters, query, standing, timeline


def _decision(verdict: str, failed: bool) -> dict:
    result = {"policy": "fair", "policy_version": "1", "rule": "dp", "severity": "deny",
              "mode": "enforce", "outcome": "fail" if failed else "pass", "message": "too low",
              "values": {}, "location": {"file": "f.yaml", "line": 3}}
    return {"decision": {"decision": verdict, "results": [result], "bundle_digest": "sha256:b",
                         "policies": [{"name": "fair", "version": "1", "applied": True}]},
            "event": {"type": "promote", "stage": "production"}}


@pytest.fixture
def log(tmp_path):
    """m 1: deny, approval, allow, promoted; m 2: allow; a model-wide waiver; signed."""
    from audit.keys import Signer, generate_key
    from audit.log import AuditLog

    signer = Signer.from_skey(generate_key("t")[0])
    opened = AuditLog.open(f"sqlite:///{tmp_path / 'a.db'}", signer=signer)
    v1 = {"name": "m", "version": "1"}
    opened.append("decision", v1, "ci", _decision("deny", True))
    opened.append("approval", v1, "bob", {"statement": {"approver": "bob", "role": "risk"},
                                          "signature": None})
    opened.append("waiver", {"name": "m"}, "carol", {"statement": {
        "id": "w1", "rules": ["fair/dp"], "approver": "carol", "expires": "2030-01-01T00:00:00Z",
        "ticket": "T-1", "reason": "r"}})
    opened.append("decision", v1, "ci", _decision("allow", False))
    opened.append("promoted", v1, "ci", {"stage": "production"})
    opened.checkpoint()
    opened.append("decision", {"name": "m", "version": "2"}, "ci", _decision("allow", False))
    yield opened
    opened.close()


def test_query_by_decision_rule_and_policy(log):
    """decision=deny finds the deny; rule and policy find decisions and the waiver naming them."""
    assert [r.seq for r in query(log, Filters(decision="deny"))] == [0]
    assert [r.seq for r in query(log, Filters(rule="dp"))] == [0, 2, 3, 5]
    assert [r.seq for r in query(log, Filters(policy="fair", types=("waiver",)))] == [2]
    assert [r.seq for r in query(log, Filters(limit=2, newest_first=True))] == [5, 4]


def test_timeline_of_a_version_includes_model_wide_entries_and_coverage(log):
    """Version 1's timeline has its entries and the model-wide waiver; the entry after the
    checkpoint is not covered."""
    verifier = log.signer.verifier()
    tl = timeline(log, "m", "1", [verifier])
    assert [r.seq for r in tl.rows] == [0, 1, 2, 3, 4]
    assert tl.rows[0].summary == "deny promote to production; failed: fair/dp"
    assert tl.rows[1].summary == "approved by bob as risk (unsigned)"
    assert "until 2030-01-01T00:00:00Z" in tl.rows[2].summary
    assert all(r.covered for r in tl.rows)
    assert timeline(log, "m", "2", [verifier]).rows[-1].covered is False
    assert timeline(log, "m", "1").rows[0].covered is None  # no key: not claimed


def test_standing_is_the_last_promotion_and_decision(log):
    """Version 1 stands in production after its allow."""
    found = standing(timeline(log, "m", "1").rows)
    assert found["stage"] == "production" and found["last_decision"]["seq"] == 3


def test_filters_refuse_naive_times_and_bad_decisions():
    """A time without a zone, a decision other than allow/deny, or limit 0 is refused."""
    with pytest.raises(InputError, match="zone"):
        Filters(since=datetime(2025, 1, 1))
    with pytest.raises(InputError, match="allow or deny"):
        Filters(decision="maybe")
    with pytest.raises(InputError, match="at least 1"):
        Filters(limit=0)
