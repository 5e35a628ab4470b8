"""SARIF report: valid SARIF 2.1.0 pointing at the card and the rule's policy line."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from policyengine.report import ReportContext, render

SCHEMA = Path(__file__).resolve().parents[2] / "vectors" / "sarif" / "sarif-schema-2.1.0.json"


@pytest.fixture(scope="module")
def validator():
    """A Draft 4 validator for the official SARIF 2.1.0 schema."""
    schema = json.loads(SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def test_sarif_validates(decision, context, validator):
    """The log validates against the SARIF 2.1.0 JSON schema."""
    validator.validate(json.loads(render("sarif", decision, context)))


def test_sarif_empty_validates(build, validator):
    """An allow with nothing to report is still a valid log with an empty result list."""
    log = json.loads(render("sarif", build([], "allow"), ReportContext()))
    validator.validate(log)
    assert log["runs"][0]["results"] == []


def test_sarif_locations(decision, context):
    """A result points at the card file and relates to the policy file and rule line."""
    run = json.loads(render("sarif", decision, context))["runs"][0]
    first = run["results"][0]
    assert first["ruleId"] == "approvals/min-approvers"
    loc = first["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "examples/card.yaml"
    related = first["relatedLocations"][0]["physicalLocation"]
    assert related["artifactLocation"]["uri"] == "policies/approvals/policy.yaml"
    assert related["region"]["startLine"] == 17


def test_sarif_levels_and_suppressions(decision, context):
    """deny -> error, warn -> warning, waived results are suppressed, passes are left out."""
    results = {
        r["ruleId"]: r for r in json.loads(render("sarif", decision, context))["runs"][0]["results"]
    }
    assert set(results) == {
        "approvals/min-approvers",
        "slo/latency-p95",
        "documentation/limitations",
        "retention/pii-days",
    }
    assert results["approvals/min-approvers"]["level"] == "error"
    assert results["slo/latency-p95"]["level"] == "warning"
    assert results["retention/pii-days"]["suppressions"][0]["kind"] == "external"
    assert "suppressions" not in results["approvals/min-approvers"]


def test_sarif_lists_uncounted_evidence(decision, context):
    """Approvals that did not count appear as warning notifications of the invocation."""
    run = json.loads(render("sarif", decision, context))["runs"][0]
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert notes[0]["level"] == "warning" and "not in the trust file" in notes[0]["message"]["text"]
