"""Model Card Toolkit JSON (v0.0.1, v0.0.2, Intel's fork) imports from the real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from policyengine.cards import CardImportError
from policyengine.cards.importers import import_card, import_text

DIGEST = "sha256:" + "d" * 64


def _mct_dir(card_data: Path) -> Path:
    return card_data / "model-cards" / "model-card-toolkit"


def test_v001_card_maps_owner_considerations_and_metrics(card_data: Path) -> None:
    """The v0.0.1 cats-vs-dogs card fills owner, uses, limitations and three numeric metrics."""
    result = import_card(
        "mct",
        _mct_dir(card_data) / "mct-cats-vs-dogs-v0.0.1.json",
        digest=DIGEST,
        risk_tier="minimal",
    )
    card = result.card
    assert card["owner"] == {"team": "Model Cards Team", "contact": "model-cards@google.com"}
    assert card["model"]["version"] == "v1.0"
    assert card["model"]["license"] == "Apache-2.0"
    assert card["limitations"] == ["This model is not able to classify images of other classes."]
    assert [m["value"] for m in card["metrics"]] == pytest.approx(
        [0.978125, 0.99328859, 0.96491229], rel=1e-6
    )
    assert result.valid


def test_v002_string_values_become_numbers(card_data: Path) -> None:
    """v0.0.2 writes metric values, thresholds and intervals as strings; they import as numbers."""
    card = import_card("mct", _mct_dir(card_data) / "mct-cats-vs-dogs-v0.0.2.json").card
    cat = card["metrics"][1]
    assert cat["slice"] == "cat"
    assert isinstance(cat["value"], float) and cat["threshold"] == 0.5
    assert cat["ci_lower"] == pytest.approx(0.9832885766)


def test_name_with_spaces_is_slugged_with_a_warning(card_data: Path) -> None:
    """A free-text MCT model name becomes a schema-valid name, and the change is reported."""
    result = import_card("mct", _mct_dir(card_data) / "mct-cats-vs-dogs-v0.0.2.json")
    assert result.card["model"]["name"] == "fine-tuned-mobilenetv2-model-for-cat-vs.-dogs"
    assert any("changed to" in w for w in result.warnings)


def test_version_typo_is_reported(card_data: Path) -> None:
    """The in-the-wild `version.data` typo is reported instead of silently dropped."""
    result = import_card(
        "mct", _mct_dir(card_data) / "mct-cats-vs-dogs-v0.0.1-typo-version-data.json"
    )
    assert any("unknown key(s) data" in w for w in result.warnings)


def test_sensitive_flag_becomes_contains_pii(card_data: Path) -> None:
    """v0.0.1 `sensitive: true` marks the dataset as holding personal data."""
    card = import_card("mct", _mct_dir(card_data) / "mct-minimal-knn-v0.0.1.json").card
    flags = [
        d.get("contains_pii")
        for d in card.get("training_data", []) + card.get("evaluation_data", [])
    ]
    assert True in flags


def test_intel_fork_without_schema_version_imports(card_data: Path) -> None:
    """Intel's Model Card Generator COMPAS example (no schema_version) imports."""
    result = import_card(
        "mct",
        _mct_dir(card_data) / "intel-mcg-compas-no-schema-version.json",
        version="1",
        digest=DIGEST,
        risk_tier="high",
    )
    assert result.valid
    assert result.card["model"]["name"]


def test_placeholder_metric_values_are_dropped_with_warnings(card_data: Path) -> None:
    """Lorem-ipsum metric values that are not numbers are dropped and each is reported."""
    result = import_card("mct", _mct_dir(card_data) / "intel-mcg-lorem-ipsum-example.json")
    assert "metrics" not in result.card
    assert sum("is not a number" in w for w in result.warnings) == 5


def test_sparse_card_reports_what_is_missing(card_data: Path) -> None:
    """An empty considerations section leaves purpose and limitations missing."""
    result = import_card("mct", _mct_dir(card_data) / "mct-train-only-v0.0.2.json")
    assert {"intended_use.purpose", "limitations", "metrics"} <= set(result.missing)


REPO_MCT = Path(__file__).resolve().parents[3] / "tests/data/evidence/cards/model-card-toolkit"


def test_protobuf_text_imports_like_its_json_twin() -> None:
    """The .pbtxt card reads through MCT's message types into the same card as full.json."""
    pbtxt = import_card("mct", REPO_MCT / "mct-full-v0.0.2.pbtxt")
    twin = import_card("mct", REPO_MCT / "mct-full-v0.0.2-template-placeholders.json")
    assert pbtxt.card["model"]["name"] == twin.card["model"]["name"] == "name"
    assert pbtxt.card["owner"] == twin.card["owner"]
    assert pbtxt.card["model"]["version"] == "v1.0"


def test_protobuf_text_that_is_not_a_model_card_fails_in_one_line() -> None:
    """An unknown field in protobuf text is one line naming the file, line and field."""
    with pytest.raises(CardImportError, match=r"c\.pbtxt: protobuf text: .*no_such_field"):
        import_text("mct", "model_details {\n  no_such_field: 1\n}\n", source="c.pbtxt")


def test_a_schema_file_is_not_a_card(card_data: Path) -> None:
    """Feeding the MCT JSON Schema itself is rejected: it has no model_details."""
    with pytest.raises(CardImportError, match=r"\$\.model_details: required"):
        import_card("mct", _mct_dir(card_data) / "schema-v0.0.2.model_card.schema.json")


def test_wrong_section_type_is_named() -> None:
    """A considerations section that is not an object names its path."""
    with pytest.raises(CardImportError, match=r"\$\.considerations: expected an object, got list"):
        import_text(
            "mct", '{"model_details": {"name": "m"}, "considerations": []}', source="c.json"
        )
