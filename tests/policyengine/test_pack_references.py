"""Every built-in pack cites the EU AI Act, NIST AI RMF 1.0 and ISO/IEC 42001, and a
failing result carries its policy's references into the Decision and SARIF."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from policyengine.cards.validate import load_document
from policyengine.decision import Decision
from policyengine.policy import Context, compile_policies, evaluate, load_policies
from policyengine.report import render
from policyengine.resources import policies_dir

REPO = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC)


def _docs() -> list:
    return load_policies([policies_dir()])


@pytest.mark.parametrize("doc", _docs(), ids=lambda d: d.name)
def test_every_pack_cites_the_eu_ai_act_nist_ai_rmf_and_iso_42001(doc) -> None:
    """metadata.references names an EU AI Act article, NIST AI RMF subcategories and 42001."""
    refs = doc.data["metadata"]["references"]
    assert any(r.startswith("EU AI Act") for r in refs)
    assert any(r.startswith("NIST AI RMF 1.0 ") for r in refs)
    assert any(r.startswith("ISO/IEC 42001:2023 A.") for r in refs)


def _decision(card: dict, history: dict) -> Decision:
    docs = load_policies([REPO / "policies" / "fairness"])
    event = {"type": "promote", "stage": "production"}
    return evaluate(compile_policies(docs), Context(card=card, event=event, history=history), NOW)


def test_failing_results_carry_references_into_decision_and_sarif() -> None:
    """A fairness failure lists the pack's references; passing results list none."""
    card = load_document(REPO / "examples" / "cards" / "resume-screener.yaml")
    decision = _decision(card, {})
    failed = [r for r in decision.results if r.outcome == "fail"]
    passed = [r for r in decision.results if r.outcome == "pass"]
    assert failed and passed
    assert all("NIST AI RMF 1.0 MEASURE 2.11 (fairness and bias evaluated and results "
               "documented)" in r.references for r in failed)
    assert all(r.references == () for r in passed)
    as_dict = decision.to_dict()
    assert Decision.from_dict(as_dict).to_dict() == as_dict
    sarif = json.loads(render("sarif", decision))
    cited = [res["properties"].get("references") for res in sarif["runs"][0]["results"]]
    assert any(c and "ISO/IEC 42001:2023 A.5.4 (assessing AI system impact on individuals "
               "or groups)" in c for c in cited)
