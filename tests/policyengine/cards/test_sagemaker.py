"""SageMaker model card content imports from the real SDK files; Clarify bias becomes fairness."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyengine.cards import CardImportError
from policyengine.cards.importers import import_card, import_text

DIGEST = "sha256:" + "e" * 64


def _sm(card_data: Path) -> Path:
    return card_data / "model-cards" / "sagemaker"


def test_model_package_card_maps_every_section(card_data: Path) -> None:
    """The SDK integration card fills author, risk tier, purpose, limitations and its metric."""
    result = import_card(
        "sagemaker",
        _sm(card_data) / "sdk-integ-model-package-card-literal-extracted.json",
        name="test-model",
        version="1",
        digest=DIGEST,
    )
    card = result.card
    assert card["author"] == "TestCreator"
    assert card["risk_tier"] == "low"
    assert card["intended_use"]["purpose"] == "Test model card."
    assert card["limitations"] == ['Your model"s caveats and recommendations.']
    assert card["metrics"] == [
        {
            "name": "accuracy",
            "value": 0.5,
            "dataset": "Example evaluation job",
            "slice": "binary classification metrics",
        }
    ]
    assert card["extensions"]["sagemaker"]["business_details"]["line_of_business"]
    assert result.valid


def test_minimal_card_content_string(card_data: Path) -> None:
    """The verbatim minimal content (no trailing newline, empty artifact list) imports."""
    result = import_card(
        "sagemaker", _sm(card_data) / "sdk-unit-model-package-card-content-string-verbatim.json"
    )
    assert result.card["author"] == "updatedCreator"
    assert "risk_tier" in result.missing


def test_describe_response_with_content_string_is_unwrapped() -> None:
    """A DescribeModelCard-style object holding ModelCardContent as a string is read through."""
    inner = {"model_overview": {"model_creator": "x"}, "intended_uses": {"risk_rating": "High"}}
    result = import_text(
        "sagemaker", json.dumps({"ModelCardContent": json.dumps(inner)}), source="d.json"
    )
    assert result.card["risk_tier"] == "high"


def test_clarify_bias_groups_become_fairness_results(card_data: Path) -> None:
    """Clarify bias metrics (a real SDK fragment) become fairness results per facet."""
    fragment = json.loads(
        (_sm(card_data) / "fragment-evaluation-metric-groups-clarify_bias.json").read_text()
    )
    card = import_text(
        "sagemaker", json.dumps({"evaluation_details": [{"name": "clarify-bias", **fragment}]})
    ).card
    assert card["fairness"][0] == {
        "metric": "accuracy_difference",
        "value": -0.11415724421435,
        "protected_attribute": "Gender",
        "groups": ["0"],
        "dataset": "clarify-bias",
    }
    assert {f["metric"] for f in card["fairness"]} == {
        "accuracy_difference",
        "conditional_demographic_disparity_labels",
    }


def test_disparate_impact_maps_to_parity_ratio() -> None:
    """Clarify DI is the demographic parity ratio the four-fifths rule checks."""
    content = {
        "evaluation_details": [
            {
                "name": "bias",
                "metric_groups": [
                    {
                        "name": "post_training_bias_metrics - label 1 and facet sex=female",
                        "metric_data": [{"name": "DI", "type": "number", "value": 0.74}],
                    }
                ],
            }
        ]
    }
    card = import_text("sagemaker", json.dumps(content)).card
    assert card["fairness"] == [
        {
            "metric": "demographic_parity_ratio",
            "value": 0.74,
            "protected_attribute": "sex",
            "groups": ["female"],
            "dataset": "bias",
        }
    ]


def test_graph_metrics_are_counted_not_imported(card_data: Path) -> None:
    """Matrix and graph metrics are skipped with one warning; numbers are kept."""
    fragment = json.loads(
        (
            _sm(card_data)
            / "fragment-evaluation-metric-groups-model_monitor_model_quality_binary_"
            "classification.json"
        ).read_text()
    )
    result = import_text(
        "sagemaker", json.dumps({"evaluation_details": [{"name": "monitor", **fragment}]})
    )
    assert any(m["name"] == "auc" for m in result.card["metrics"])
    assert any("non-numeric evaluation metric" in w for w in result.warnings)


def test_unknown_risk_rating_is_reported() -> None:
    """SageMaker's Unknown risk rating maps to no tier and says so."""
    result = import_text("sagemaker", json.dumps({"intended_uses": {"risk_rating": "Unknown"}}))
    assert "risk_tier" in result.missing
    assert any("has no risk tier" in w for w in result.warnings)


@pytest.mark.parametrize(
    "name",
    [
        "schema-sagemaker-core-model_card_schema.json",
        "evaluation-sources/sdk-input-clarify_bias.json",
    ],
)
def test_files_that_are_not_card_content_fail_in_one_line(card_data: Path, name: str) -> None:
    """Schemas and raw Clarify reports are rejected with what was expected."""
    with pytest.raises(
        CardImportError, match=r": \$: expected SageMaker model card content"
    ) as info:
        import_card("sagemaker", _sm(card_data) / name)
    assert "\n" not in str(info.value)


def test_section_of_wrong_type_is_named() -> None:
    """evaluation_details must be an array; an object is reported at its path."""
    with pytest.raises(
        CardImportError, match=r"\$\.evaluation_details: expected an array, got dict"
    ):
        import_text("sagemaker", '{"evaluation_details": {}}', source="c.json")


def test_invalid_json_names_line_and_column() -> None:
    """Broken JSON gives line and column."""
    with pytest.raises(CardImportError, match=r"c\.json: line 1 column \d+: invalid JSON"):
        import_text("sagemaker", '{"model_overview": ', source="c.json")
