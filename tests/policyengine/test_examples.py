"""The example cards give their documented decisions through `policyengine eval`.

Outcomes are those listed in examples/README.md; `--now` pins the clock so
approval ages do not drift. Removing a field either fails the schema (exit 2
with the JSON path) or fails a policy rule (exit 1 naming the field).
"""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest

from policyengine.cards.validate import load_document
from policyengine.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
NOW = "2026-11-26T12:00:00Z"


def _eval(
    card: Path, event: str, stage: str, history: Path | None = None
) -> tuple[int, dict[str, Any], str]:
    argv = ["eval", str(card), "--event", event, "--to", stage, "--now", NOW, "--format", "json"]
    if history:
        argv += ["--history", str(history)]
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, out=out, err=err)
    return code, (json.loads(out.getvalue()) if out.getvalue().strip() else {}), err.getvalue()


def _failed(decision: dict[str, Any]) -> dict[str, str]:
    """Rule id -> message for every rule that did not pass or skip."""
    return {
        r["rule"]: r["message"] for r in decision["results"] if r["outcome"] in ("fail", "error")
    }


CASES = [
    # card, event, stage, history, exit code, failing rules (exactly)
    ("credit-risk-scorer", "promote", "production", "credit-risk-scorer-approvals", 0, set()),
    ("credit-risk-scorer", "register", "development", None, 0, set()),
    (
        "credit-risk-scorer",
        "promote",
        "production",
        "no-approvals",
        1,
        {"distinct-approvers", "required-roles"},
    ),
    ("resume-screener", "promote", "staging", None, 1, {"demographic-parity-ratio"}),
    (
        "churn-forecaster",
        "register",
        "development",
        None,
        1,
        {"limitations", "training-data-lineage", "evaluation-data", "human-oversight"},
    ),
    ("support-ticket-router", "promote", "production", "support-ticket-router-approvals", 0, set()),
]


@pytest.mark.parametrize(
    ("card", "event", "stage", "history", "code", "failing"),
    CASES,
    ids=[f"{c[0]}-{c[1]}-{c[2]}-{c[3] or 'no-history'}" for c in CASES],
)
def test_example_gives_documented_outcome(
    tmp_path: Path,
    card: str,
    event: str,
    stage: str,
    history: str | None,
    code: int,
    failing: set[str],
) -> None:
    """Each example card's decision, exit code and failing rules match examples/README.md."""
    hist = EXAMPLES / "history" / f"{history}.yaml" if history else None
    if history == "no-approvals":
        hist = tmp_path / "empty.json"
        hist.write_text(
            json.dumps(
                {"approvals": [], "waivers": [], "decisions": [], "promotions": [], "events": []}
            )
        )
    got, decision, _ = _eval(EXAMPLES / "cards" / f"{card}.yaml", event, stage, hist)
    assert got == code
    assert decision["decision"] == ("allow" if code == 0 else "deny")
    assert set(_failed(decision)) == failing


def test_without_history_approvals_fail_closed() -> None:
    """Promotion to production with no history at all is denied by the approvals pack."""
    code, decision, _ = _eval(
        EXAMPLES / "cards" / "credit-risk-scorer.yaml", "promote", "production"
    )
    assert code == 1
    assert {r["policy"] for r in decision["results"] if r["outcome"] in ("fail", "error")} == {
        "approvals"
    }


def test_fairness_denial_names_attribute_and_value() -> None:
    """The resume screener's denial says which attribute breaks the four-fifths rule."""
    _, decision, _ = _eval(EXAMPLES / "cards" / "resume-screener.yaml", "promote", "staging")
    assert _failed(decision)["demographic-parity-ratio"].endswith("for sex = 0.72")


def _write(tmp_path: Path, card: dict[str, Any]) -> Path:
    path = tmp_path / "card.json"
    path.write_text(json.dumps(card))
    return path


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ("model", "artifact_digest"),
        ("model", "version"),
        (None, "risk_tier"),
        (None, "schema_version"),
    ],
)
def test_removing_a_schema_required_field_exits_two_with_json_path(
    tmp_path: Path, section: str | None, field: str
) -> None:
    """A card missing a schema-required field is bad input: exit 2 naming the JSON path."""
    card = copy.deepcopy(load_document(EXAMPLES / "cards" / "credit-risk-scorer.yaml"))
    del (card[section] if section else card)[field]
    code, _, err = _eval(
        _write(tmp_path, card),
        "promote",
        "production",
        EXAMPLES / "history" / "credit-risk-scorer-approvals.yaml",
    )
    path = f"$.{section}.{field}" if section else f"$.{field}"
    assert code == 2
    assert f"{path}: required field is missing" in err


@pytest.mark.parametrize(
    ("field", "rule", "named"),
    [
        ("limitations", "limitations", "card.limitations"),
        ("author", "author-declared", "card.author"),
        ("fairness", "parity-ratio-reported", "card.fairness"),
        ("retention", "retention-declared", "card.retention"),
        ("slo", "slo-declared", "card.slo"),
        ("human_oversight", "human-oversight", "card.human_oversight.measures"),
        ("documentation", "technical-file", "card.documentation.technical_file_uri"),
    ],
)
def test_removing_a_policy_required_field_denies_naming_it(
    tmp_path: Path, field: str, rule: str, named: str
) -> None:
    """A valid card missing a field a pack needs is denied (exit 1), the message naming it."""
    card = copy.deepcopy(load_document(EXAMPLES / "cards" / "credit-risk-scorer.yaml"))
    del card[field]
    code, decision, _ = _eval(
        _write(tmp_path, card),
        "promote",
        "production",
        EXAMPLES / "history" / "credit-risk-scorer-approvals.yaml",
    )
    assert code == 1
    assert named in _failed(decision)[rule]


@pytest.mark.parametrize(
    ("old", "new"),
    [('"value": 0.91', '"value": 91e-2'), ('"latency_p95_ms": 120,', '"latency_p95_ms": 120.0,')],
)
def test_number_spelling_does_not_change_the_decision(tmp_path: Path, old: str, new: str) -> None:
    """The same card with a number written two ways (0.91 / 91e-2, 120 / 120.0) decides alike."""
    text = json.dumps(load_document(EXAMPLES / "cards" / "credit-risk-scorer.yaml"))
    assert old in text
    hist = EXAMPLES / "history" / "credit-risk-scorer-approvals.yaml"
    outcomes = []
    for i, source in enumerate((text, text.replace(old, new, 1))):
        path = tmp_path / f"card{i}.json"
        path.write_text(source)
        code, decision, _ = _eval(path, "promote", "production", hist)
        outcomes.append(
            (code, decision["decision"], [(r["rule"], r["outcome"]) for r in decision["results"]])
        )
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][:2] == (0, "allow")


def test_example_events_validate_with_the_lifecycle_schema() -> None:
    """The example events conform to schemas/lifecycle-event.schema.json."""
    from policyengine.cards import validate_event

    for path in sorted((EXAMPLES / "events").glob("*.json")):
        validate_event(load_document(path), source=str(path))


def test_builtin_packs_pass_their_tests_with_full_rule_coverage() -> None:
    """`policyengine test policies/ --coverage --threshold 100` passes for the built-in packs."""
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["test", str(REPO / "policies"), "--coverage", "--threshold", "100"], out=out, err=err
    )
    assert code == 0, out.getvalue() + err.getvalue()
    assert "coverage 100.00%" in out.getvalue()


def test_every_builtin_policy_cites_references() -> None:
    """Each built-in policy lists the regulations or papers it encodes."""
    from policyengine.policy import load_policies

    docs = load_policies([REPO / "policies"])
    assert len(docs) >= 6
    for doc in docs:
        assert doc.data["metadata"].get("references"), doc.name
