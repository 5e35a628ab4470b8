"""A hand-written Decision covering every outcome, for the renderer tests."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from policyengine.decision import Decision
from policyengine.report import ReportContext

DIGEST = "sha256:" + "ab" * 32


def result(policy: str, rule: str, outcome: str, **extra: Any) -> dict[str, Any]:
    """One result in the dict form of schemas/decision.schema.json (enforced deny by default)."""
    base = {
        "policy": policy,
        "policy_version": "1.0.0",
        "rule": rule,
        "severity": "deny",
        "mode": "enforce",
        "outcome": outcome,
        "message": f"{rule} message",
        "remediation": f"fix {rule}",
        "values": {},
        "location": {"file": f"policies/{policy}/policy.yaml", "line": 9},
    }
    base.update(extra)
    return base


def decision_dict(results: list[dict[str, Any]], verdict: str = "deny") -> dict[str, Any]:
    """A Decision dict around ``results``, with policies and summary derived from them."""
    counts = Counter(r["outcome"] for r in results)
    names = dict.fromkeys(r["policy"] for r in results)
    return {
        "apiVersion": "policyengine/v1",
        "kind": "Decision",
        "id": "dec_" + "01" * 16,
        "decision": verdict,
        "subject": {"model": "credit-risk", "version": "1.4.0", "digest": DIGEST},
        "event": {"type": "promote", "stage": "production"},
        "bundle_digest": "sha256:" + "cd" * 32,
        "input_digest": "sha256:" + "ef" * 32,
        "evaluated_at": "2026-11-26T15:00:00.123456Z",
        "policies": [
            {"name": name, "version": "1.0.0", "mode": "enforce", "digest": DIGEST,
             "source": f"policies/{name}/policy.yaml",
             "applied": any(r["outcome"] != "skipped" for r in results if r["policy"] == name)}
            for name in names
        ],
        "results": results,
        "summary": {k: counts.get(k, 0) for k in ("pass", "fail", "error", "waived", "skipped")},
        "reasons": [],
    }


@pytest.fixture
def build() -> Callable[..., Decision]:
    """Build a Decision from result dicts (see :func:`result`)."""
    return lambda results, verdict="deny": Decision.from_dict(decision_dict(results, verdict))


@pytest.fixture
def raw() -> dict[str, Any]:
    """A deny with one result of each outcome, including a warn and a waiver (dict form)."""
    return decision_dict([
        result("approvals", "min-approvers", "fail", message='1 of 2 approvals <&> "q"'),
        result("fairness", "dp-ratio", "pass", remediation=""),
        result("slo", "latency-p95", "fail", severity="warn", message="p95 240ms > 200ms"),
        result("documentation", "limitations", "error", message="no such key: limitations"),
        result(
            "retention",
            "pii-days",
            "waived",
            waiver={
                "id": "W-7",
                "ticket": "RISK-12",
                "reason": "legacy data",
                "expires": "2027-01-01T00:00:00Z",
            },
            waived_outcome="fail",
        ),
        result("fairness", "eo-diff", "skipped", message="", remediation=""),
    ])


@pytest.fixture
def decision(raw: dict[str, Any]) -> Decision:
    """The ``raw`` Decision as the one Decision type the renderers take."""
    return Decision.from_dict(raw)


@pytest.fixture
def context(tmp_path: Any) -> ReportContext:
    """Context with a card file and rule locations inside the working directory."""
    return ReportContext(
        card_path="examples/card.yaml",
        rule_locations={"approvals/min-approvers": ("policies/approvals/policy.yaml", 17)},
        seq=41,
        checkpoint_size=42,
        notes=("approval by mallory (risk): key a1b2c3d4 is not in the trust file",),
    )


@pytest.fixture
def rule() -> Callable[..., dict[str, Any]]:
    """The :func:`result` builder, for tests that write their own results."""
    return result
