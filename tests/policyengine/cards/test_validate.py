"""Schema validation of cards and events reports JSON paths, one issue per problem."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from policyengine.cards import CardLoadError, CardValidationError, card_issues, event_issues
from policyengine.cards.validate import load_document, parse_document, validate_card, validate_event

REPO = Path(__file__).resolve().parents[3]
CARD = REPO / "examples" / "cards" / "credit-risk-scorer.yaml"


@pytest.fixture
def card() -> dict[str, Any]:
    """A valid example card, fresh for each test."""
    return copy.deepcopy(load_document(CARD))


def test_example_card_is_valid(card: dict[str, Any]) -> None:
    """The production example passes the schema."""
    assert card_issues(card) == []
    validate_card(card)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("model", "artifact_digest"),
        ("model", "name"),
        ("model", "version"),
        (None, "risk_tier"),
        (None, "schema_version"),
        (None, "model"),
    ],
)
def test_missing_required_field_names_its_path(
    card: dict[str, Any], path: str | None, field: str
) -> None:
    """Removing a required field gives the JSON path of that field."""
    (card[path] if path else card).pop(field)
    want = f"$.{path}.{field}" if path else f"$.{field}"
    assert [(i.path, i.message) for i in card_issues(card)] == [(want, "required field is missing")]


def test_every_missing_field_is_listed(card: dict[str, Any]) -> None:
    """Two missing required fields give two issues."""
    del card["model"]["version"], card["risk_tier"]
    assert [i.path for i in card_issues(card)] == ["$.model.version", "$.risk_tier"]


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"),
    [
        (
            lambda c: c["model"].update(artifact_digest="sha256:ABC"),
            "$.model.artifact_digest",
            "expected a string matching",
        ),
        (
            lambda c: c.update(risk_tier="extreme"),
            "$.risk_tier",
            "expected one of high, medium, low, minimal",
        ),
        (
            lambda c: c["metrics"][1].update(value="0.83"),
            "$.metrics[1].value",
            "expected number, got string",
        ),
        (
            lambda c: c["fairness"][0].update(value=True),
            "$.fairness[0].value",
            "expected number, got boolean",
        ),
        (
            lambda c: c["retention"].update(audit_log_days=-1),
            "$.retention.audit_log_days",
            "expected a number >= 0",
        ),
        (
            lambda c: c["slo"]["observations"].update(error_rate=1.5),
            "$.slo.observations.error_rate",
            "<= 1",
        ),
        (lambda c: c["model"].update(colour="red"), "$.model.colour", "unknown field"),
        (
            lambda c: c["training_data"][0].update(contains_pii="yes"),
            "$.training_data[0].contains_pii",
            "expected boolean",
        ),
        (lambda c: c.update(author=""), "$.author", "expected at least 1 character"),
    ],
)
def test_malformed_value_gives_path_and_expected(
    card: dict[str, Any], mutate: Any, path: str, fragment: str
) -> None:
    """Each kind of schema violation is reported at its path with what was expected."""
    mutate(card)
    issues = card_issues(card)
    assert [i.path for i in issues] == [path]
    assert fragment in issues[0].message


def test_validate_card_raises_with_every_issue(card: dict[str, Any]) -> None:
    """validate_card raises CardValidationError listing each issue with the source."""
    del card["model"]["artifact_digest"]
    card["risk_tier"] = "x"
    with pytest.raises(CardValidationError) as info:
        validate_card(card, source="card.yaml")
    lines = info.value.diagnostics().splitlines()
    assert lines == [
        "card.yaml: $.model.artifact_digest: required field is missing",
        'card.yaml: $.risk_tier: expected one of high, medium, low, minimal, got "x"',
    ]
    assert info.value.code == "card_invalid"


def test_extensions_accept_anything(card: dict[str, Any]) -> None:
    """Organisation-specific fields under extensions are never schema errors."""
    card["extensions"] = {"anything": [1, {"nested": None}], "x": "y"}
    assert card_issues(card) == []


def test_non_object_card_is_an_issue_not_a_crash() -> None:
    """A list where a card should be is reported at the root."""
    assert [i.path for i in card_issues([1, 2])] == ["$"]


def test_yaml_timestamps_stay_strings(tmp_path: Path) -> None:
    """Unquoted YAML dates load as strings, so a YAML card validates like its JSON twin."""
    f = tmp_path / "c.yaml"
    f.write_text("created: 2026-11-10T09:30:00Z\nday: 2026-11-10\n")
    assert load_document(f) == {"created": "2026-11-10T09:30:00Z", "day": "2026-11-10"}


def test_invalid_yaml_is_one_line_with_position() -> None:
    """A YAML syntax error names the source, line and column."""
    with pytest.raises(CardLoadError, match=r"^c\.yaml:2:\d+: invalid YAML: "):
        parse_document("a: 1\n\tb: 2\n", source="c.yaml")


def test_invalid_json_is_one_line_with_position() -> None:
    """A JSON syntax error names the source, line and column."""
    with pytest.raises(CardLoadError, match=r"^c\.json:1:\d+: invalid JSON"):
        parse_document('{"a": }', source="c.json")


def test_missing_file_is_a_load_error(tmp_path: Path) -> None:
    """A missing file is a CardLoadError naming the path, not an OSError."""
    with pytest.raises(CardLoadError, match="cannot read file"):
        load_document(tmp_path / "absent.json")


def test_example_events_are_valid() -> None:
    """Every example lifecycle event passes the event schema."""
    events = sorted((REPO / "examples" / "events").glob("*.json"))
    assert len(events) >= 3
    for path in events:
        validate_event(load_document(path), source=str(path))


@pytest.mark.parametrize(
    ("event", "path"),
    [
        (
            {
                "type": "deployed",
                "subject": {"model": "m"},
                "actor": "a",
                "time": "2026-11-26T10:00:00Z",
            },
            "$.type",
        ),
        (
            {"type": "promoted", "subject": {}, "actor": "a", "time": "2026-11-26T10:00:00Z"},
            "$.subject.model",
        ),
        (
            {"type": "promoted", "subject": {"model": "m"}, "actor": "a", "time": "yesterday"},
            "$.time",
        ),
        (
            {
                "type": "promoted",
                "subject": {"model": "m", "digest": "md5:1"},
                "actor": "a",
                "time": "2026-11-26T10:00:00Z",
            },
            "$.subject.digest",
        ),
        (
            {"type": "promoted", "subject": {"model": "m"}, "time": "2026-11-26T10:00:00Z"},
            "$.actor",
        ),
    ],
)
def test_bad_event_names_the_path(event: dict[str, Any], path: str) -> None:
    """A malformed lifecycle event is reported at the offending path."""
    assert [i.path for i in event_issues(event)] == [path]
