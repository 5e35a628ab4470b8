"""`policyengine gate --format ...`: reports from a real decision validate against their schemas."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import xmlschema

from tests.integration.gatecli import REPO, gate

VECTORS = REPO / "tests" / "vectors"


def test_junit_output_validates(workdir):
    """--format junit --output writes JUnit valid against both schemas; text still printed."""
    run = gate("--format", "junit", "--output", "out/junit.xml")
    assert run.code == 1 and run.out.startswith("DENY")
    doc = (workdir / "out" / "junit.xml").read_text()
    for xsd in ("JUnit.xsd", "junit-10.xsd"):
        xmlschema.XMLSchema(VECTORS / "junit" / xsd).validate(doc)
    assert "<failure" in doc and "distinct-approvers" in doc


def test_sarif_output_validates(workdir):
    """--format sarif writes SARIF 2.1.0 pointing at the card and the policy line."""
    run = gate("--format", "sarif", "--output", "out.sarif")
    assert run.code == 1
    log = json.loads((workdir / "out.sarif").read_text())
    schema = json.loads((VECTORS / "sarif" / "sarif-schema-2.1.0.json").read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(log)
    result = log["runs"][0]["results"][0]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "card.yaml"
    related = result["relatedLocations"][0]["physicalLocation"]
    assert related["artifactLocation"]["uri"].endswith("approvals.yaml")
    assert related["region"]["startLine"] > 1


def test_json_output_is_the_decision(workdir):
    """--format json prints the Decision (decision.schema.json)."""
    run = gate("--format", "json")
    decision = json.loads(run.out)
    schema = json.loads((REPO / "schemas" / "decision.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(decision)
    assert decision["decision"] == "deny"


def test_github_output_and_summary(workdir, monkeypatch):
    """--format github prints ::error at the card line the rule read and appends the summary."""
    summary = workdir / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    run = gate("--format", "github")
    assert run.code == 1
    # The approvals rule's message names the risk tier it read (card.risk_tier).
    card = (workdir / "card.yaml").read_text().splitlines()
    line = next(i for i, text in enumerate(card, 1) if text.startswith("risk_tier:"))
    assert run.out.startswith(f"::error file=card.yaml,line={line},title=FAIL approvals/")
    assert "policyengine gate" in summary.read_text()


def test_receipt_verifies_offline(workdir):
    """The receipt written by --receipt verifies with only the dev public key."""
    from audit.errors import AuditError
    from audit.keys import generate_key, load_verifiers
    from audit.receipt import verify_receipt

    assert gate("--receipt", "r.json").code == 1
    receipt = json.loads((workdir / "r.json").read_text())
    verifiers = load_verifiers([str(workdir / ".policyengine" / "dev-signing.pub")])
    verify_receipt(receipt, verifiers)
    other = load_verifiers([generate_key("someone-else")[1]])
    with pytest.raises(AuditError):
        verify_receipt(receipt, other)


def test_decision_entry_holds_card(workdir):
    """The decision entry's payload is the Decision plus the input card."""
    from audit.log import AuditLog

    assert gate().code == 1
    log = AuditLog.open(f"sqlite:///{workdir / '.policyengine' / 'audit.db'}")
    # The decision follows the policy bundle it was made under.
    assert [e.envelope["type"] for e in log.query()] == ["policy_bundle", "decision"]
    entry = next(iter(log.query(types=["decision"])))
    assert entry.payload["card"]["model"]["name"] == "credit-risk-scorer"
    assert entry.payload["decision"]["decision"] == "deny"
    assert log.latest_checkpoint().size == log.size()
    assert Path(workdir / ".policyengine" / "dev-signing.key").stat().st_mode & 0o077 == 0
