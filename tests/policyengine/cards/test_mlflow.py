"""MLflow model version metadata imports; card.* tags fill card fields."""

from __future__ import annotations

import json
from typing import Any

import pytest

from policyengine.cards import CardImportError, CardLoadError
from policyengine.cards.importers import import_text

DIGEST = "sha256:" + "f" * 64


def _version(**extra: Any) -> dict[str, Any]:
    return {
        "name": "fraud-detector",
        "version": 7,
        "source": "models:/m-0a1b2c",
        "run_id": "0a1b2c3d",
        "user_id": "alice@corp.example",
        "creation_timestamp": 1764000000000,
        "current_stage": "None",
        "description": "Card-not-present fraud scores.",
        **extra,
    }


def test_rest_shape_with_tag_list() -> None:
    """The REST shape (model_version, tags as key/value list) maps identity and card.* tags."""
    tags = [
        {"key": "card.risk_tier", "value": "high"},
        {"key": "card.model.artifact_digest", "value": DIGEST},
        {"key": "card.owner.team", "value": "payments-risk"},
        {"key": "card.retention.audit_log_days", "value": "365"},
        {"key": "card.limitations", "value": '["EU card traffic only"]'},
        {"key": "team", "value": "x"},
    ]
    result = import_text("mlflow", json.dumps({"model_version": _version(tags=tags)}))
    card = result.card
    assert card["model"]["name"] == "fraud-detector" and card["model"]["version"] == "7"
    assert card["model"]["artifact_uri"] == "models:/m-0a1b2c"
    assert card["model"]["created"] == "2025-11-24T16:00:00Z"
    assert card["author"] == "alice@corp.example"
    assert card["risk_tier"] == "high"
    assert card["retention"] == {"audit_log_days": 365}
    assert card["limitations"] == ["EU card traffic only"]
    assert card["extensions"]["mlflow"] == {
        "run_id": "0a1b2c3d",
        "current_stage": "None",
        "tags": {"team": "x"},
    }
    assert result.valid


def test_python_shape_with_tag_mapping() -> None:
    """ModelVersion's plain dict with tags as a mapping works the same way."""
    result = import_text(
        "mlflow", json.dumps(_version(tags={"card.risk_tier": "low"})), digest=DIGEST
    )
    assert result.card["risk_tier"] == "low"
    assert result.valid


def test_yaml_input_is_accepted() -> None:
    """Metadata saved as YAML imports too."""
    result = import_text("mlflow", "name: m\nversion: '3'\ntags:\n  card.author: bob\n")
    assert result.card["author"] == "bob"


def test_without_digest_the_card_is_not_yet_valid() -> None:
    """No digest tag and no override leaves artifact_digest missing."""
    result = import_text("mlflow", json.dumps(_version()))
    assert "model.artifact_digest" in result.missing
    assert not result.valid


def test_unknown_card_tag_is_reported_not_applied() -> None:
    """A card.* tag naming no card field is ignored with a warning."""
    result = import_text("mlflow", json.dumps(_version(tags={"card.colour": "red"})))
    assert "colour" not in result.card
    assert result.warnings == ["tag card.colour names no card field; ignored"]


def test_missing_name_fails_in_one_line() -> None:
    """A model version without a registered model name is rejected."""
    with pytest.raises(CardImportError, match=r"^mv\.json: name: required"):
        import_text("mlflow", json.dumps({"version": 1}), source="mv.json")


def test_malformed_tags_name_the_index() -> None:
    """A tag entry without a key is reported at its index."""
    with pytest.raises(CardImportError, match=r"tags\[1\]: expected \{key, value\}"):
        import_text(
            "mlflow",
            json.dumps(_version(tags=[{"key": "a", "value": "b"}, ["oops"]])),
            source="mv.json",
        )


def test_unparsable_input_is_a_load_error() -> None:
    """Text that is neither JSON nor YAML fails with the position."""
    with pytest.raises(CardLoadError, match=r"mv\.json:1:\d+: invalid JSON"):
        import_text("mlflow", '{"name": ', source="mv.json")
