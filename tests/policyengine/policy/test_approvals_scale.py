"""The built-in packs stay within the cost limit however many approvals a version has."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from policyengine.policy import Context, Limits, compile_policies, evaluate, load_policies

ROOT = Path(__file__).resolve().parents[3]
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
EVENT = {"type": "promote", "stage": "production"}
# The default cost limit, but room in time: these tests pin cost (deterministic),
# not speed, and a busy machine must not turn them into time-limit errors.
LIMITS = Limits(max_seconds=600.0, max_decision_seconds=3600.0)


@pytest.fixture(scope="module")
def packs() -> Any:
    """Every built-in pack, compiled once with the default cost limit."""
    return compile_policies(load_policies([ROOT / "policies"]), limits=LIMITS)


def _card(risk_tier: str) -> dict[str, Any]:
    card = json.loads((ROOT / "policies/testdata/cards/credit-risk-scorer.json").read_text())
    card["risk_tier"] = risk_tier
    return card


def _history(n: int, *, same_approver: bool = False) -> dict[str, Any]:
    history = json.loads(
        (ROOT / "policies/testdata/history/credit-risk-scorer-approvals.json").read_text())
    model_risk, domain_owner = history["approvals"]
    approvals = []
    for i in range(n):
        approval = copy.deepcopy(model_risk if i % 2 == 0 else domain_owner)
        approval["approver"] = "bob@bank.example" if same_approver else f"user{i}@bank.example"
        approvals.append(approval)
    history["approvals"] = approvals
    return history


def _not_passing(decision: Any) -> list[tuple[str, str, str]]:
    return [(r.rule, r.outcome, r.message) for r in decision.results
            if r.outcome not in {"pass", "skipped"}]


@pytest.fixture(scope="module")
def one_approver_packs() -> Any:
    """Every built-in pack, with high-risk models needing one model-risk approval."""
    overrides = {"approvals": {
        "min_approvers": {"high": 1, "medium": 1, "low": 1, "minimal": 1},
        "required_roles": {"high": ["model-risk"], "medium": [], "low": [], "minimal": []}}}
    return compile_policies(load_policies([ROOT / "policies"]), overrides, limits=LIMITS)


@pytest.mark.parametrize("n", [1, 14, 100, 1000])
def test_valid_approvals_allow_at_any_count(packs: Any, one_approver_packs: Any, n: int) -> None:
    """1, 14, 100 and 1,000 valid approvals allow, with no rule in error."""
    cps = one_approver_packs if n == 1 else packs
    decision = evaluate(cps, Context(_card("high"), EVENT, _history(n)), NOW)
    assert _not_passing(decision) == []
    assert decision.decision == "allow"


@pytest.mark.parametrize("n", [14, 1000])
def test_many_approvals_by_one_person_fail_not_error(packs: Any, n: int) -> None:
    """Many approvals from one approver count once: distinct-approvers fails with a message."""
    decision = evaluate(packs, Context(_card("high"), EVENT, _history(n, same_approver=True)),
                        NOW)
    distinct = next(r for r in decision.results if r.rule == "distinct-approvers")
    assert distinct.outcome == "fail"
    assert distinct.message.startswith(
        f"need valid approvals from 2 distinct approver(s) for a high-risk model; {n} approval(s)")
    assert decision.decision == "deny"


@pytest.mark.parametrize(("names", "needed", "outcome"), [
    (["a", "b", "c"], 3, "pass"), (["a", "a", "b"], 3, "fail"), (["a", "b", "a", "b"], 2, "pass"),
    (["a", "a", "a"], 2, "fail"), (["a", "b", "c", "d"], 4, "fail"), ([], 0, "pass"),
])
def test_distinct_approvers_counts_up_to_three(names: list[str], needed: int,
                                               outcome: str) -> None:
    """distinct-approvers counts distinct names (1..3); 0 needed passes, 4 can never pass."""
    docs = load_policies([ROOT / "policies/approvals"])
    cps = compile_policies(docs, {"approvals": {"min_approvers": {
        "high": needed, "medium": 1, "low": 1, "minimal": 1}}}, limits=LIMITS)
    history = _history(len(names))
    for approval, name in zip(history["approvals"], names, strict=True):
        approval["approver"] = f"{name}@bank.example"
    decision = evaluate(cps, Context(_card("high"), EVENT, history), NOW)
    assert next(r for r in decision.results if r.rule == "distinct-approvers").outcome == outcome
