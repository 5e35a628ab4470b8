"""The one Decision type: its dict form is read back exactly, and malformed dicts are refused."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from policyengine.cli import main
from policyengine.decision import Decision
from policyengine.errors import InputError

REPO = Path(__file__).resolve().parents[2]
CARDS = sorted((REPO / "examples" / "cards").glob("*.yaml"))
HISTORY = REPO / "examples" / "history" / "credit-risk-scorer-approvals.yaml"


def _eval(card: Path, *extra: str) -> dict[str, Any]:
    out = io.StringIO()
    main(["eval", str(card), "--event", "promote", "--to", "production", "--format", "json",
          "--now", "2026-11-26T12:00:00Z", *extra], out=out, err=io.StringIO())
    return json.loads(out.getvalue())


@pytest.mark.parametrize("card", CARDS, ids=lambda p: p.stem)
def test_examples_round_trip_byte_for_byte(card: Path) -> None:
    """from_dict(d).to_dict() gives the same dict, and the same JSON bytes, as evaluate made."""
    body = _eval(card, "--history", str(HISTORY))
    again = Decision.from_dict(body).to_dict()
    assert again == body
    assert json.dumps(again) == json.dumps(body)


def test_waived_and_ignored_waivers_round_trip(tmp_path: Path) -> None:
    """A waived result with its waiver, prior outcome and an expired waiver reads back exactly."""
    history = tmp_path / "history.yaml"
    history.write_text(
        "waivers:\n"
        "  - {id: w-ok, rules: [demographic-parity-ratio], model: resume-screener, "
        "versions: '>=1,<2', reason: pending, ticket: T-1, approver: carol, "
        "expires: '2027-01-01T00:00:00Z'}\n"
        "  - {id: w-old, rules: [demographic-parity-ratio], model: resume-screener, "
        "versions: '>=1,<2', reason: old, ticket: T-0, approver: carol, "
        "expires: '2026-01-01T00:00:00Z'}\n")
    body = _eval(REPO / "examples" / "cards" / "resume-screener.yaml", "--history", str(history))
    waived = [r for r in body["results"] if r["outcome"] == "waived"]
    assert waived and waived[0]["waived_outcome"] == "fail" and waived[0]["expired_waivers"]
    assert json.dumps(Decision.from_dict(body).to_dict()) == json.dumps(body)


def test_allow_is_the_decision_field() -> None:
    """Decision.allow is the one allow: true exactly when decision is allow."""
    body = _eval(REPO / "examples" / "cards" / "credit-risk-scorer.yaml", "--history", str(HISTORY))
    assert body["decision"] == "allow" and Decision.from_dict(body).allow
    body["decision"] = "deny"
    assert not Decision.from_dict(body).allow


@pytest.mark.parametrize(("edit", "match"), [
    (lambda d: d.pop("results"), "'results' is missing"),
    (lambda d: d.update(kind="Receipt"), "kind Decision"),
    (lambda d: d.update(decision="maybe"), "expected allow or deny"),
    (lambda d: d["summary"].update({"pass": 99}), "'summary' does not match"),
    (lambda d: d["results"][0]["location"].update(line="7"), "'line' is str, expected int"),
])
def test_malformed_dicts_are_refused(edit: Any, match: str) -> None:
    """A dict that is not a Decision is an InputError naming the field, never a half Decision."""
    body = _eval(REPO / "examples" / "cards" / "resume-screener.yaml")
    edit(body)
    with pytest.raises(InputError, match=match):
        Decision.from_dict(body)
