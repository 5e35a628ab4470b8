"""A hand-written Decision covering every outcome, for the renderer tests."""

from __future__ import annotations

from typing import Any

import pytest

from policyengine.report import ReportContext

DIGEST = "sha256:" + "ab" * 32


def _result(policy: str, rule: str, outcome: str, **extra: Any) -> dict[str, Any]:
    base = {
        "policy": policy,
        "policy_version": "1.0.0",
        "rule": rule,
        "outcome": outcome,
        "severity": "deny",
        "mode": "enforce",
        "message": f"{rule} message",
        "remediation": f"fix {rule}",
        "values": {},
        "location": {"file": f"policies/{policy}/policy.yaml", "line": 9},
    }
    base.update(extra)
    return base


@pytest.fixture
def decision() -> dict[str, Any]:
    """A deny with one result of each outcome, including a warn and a waiver."""
    return {
        "apiVersion": "policyengine/v1",
        "kind": "Decision",
        "id": "dec-0001",
        "decision": "deny",
        "subject": {"model": "credit-risk", "version": "1.4.0", "digest": DIGEST},
        "event": {"type": "promote", "stage": "production"},
        "bundle_digest": "sha256:" + "cd" * 32,
        "input_digest": "sha256:" + "ef" * 32,
        "evaluated_at": "2026-11-26T15:00:00.123456Z",
        "results": [
            _result("approvals", "min-approvers", "fail", message='1 of 2 approvals <&> "q"'),
            _result("fairness", "dp-ratio", "pass"),
            _result("slo", "latency-p95", "fail", severity="warn", message="p95 240ms > 200ms"),
            _result("documentation", "limitations", "error", message="no such key: limitations"),
            _result(
                "retention",
                "pii-days",
                "waived",
                waiver={
                    "id": "W-7",
                    "ticket": "RISK-12",
                    "reason": "legacy data",
                    "expires": "2027-01-01T00:00:00Z",
                },
            ),
            _result("fairness", "eo-diff", "skipped", message=""),
        ],
    }


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
