"""Hugging Face README cards import from real third-party files; malformed ones fail in one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from policyengine.cards import CardImportError
from policyengine.cards.importers import import_card, import_text

DIGEST = "sha256:" + "c" * 64


def _hf(card_data: Path) -> Path:
    return card_data / "model-cards" / "huggingface"


def test_multi_dataset_model_index_maps_every_metric(card_data: Path) -> None:
    """Five results with WER and CER become ten metrics, each with dataset and language slice."""
    result = import_card(
        "huggingface", _hf(card_data) / "mi-comodoro-wav2vec2-west-slavic-multi-dataset-asr.md"
    )
    metrics = result.card["metrics"]
    assert len(metrics) == 10
    assert metrics[0] == {"name": "wer", "value": 53.5, "dataset": "Common Voice 8", "slice": "cs"}
    assert {m["slice"] for m in metrics} == {"cs", "hsb", "pl", "sk", "sl"}
    assert result.card["model"]["name"] == "wav2vec2-xls-r-300m-west-slavic-cv8"
    assert result.card["model"]["license"] == "apache-2.0"
    assert result.card["training_data"] == [
        {
            "name": "mozilla-foundation/common_voice_8_0",
            "source": "huggingface dataset mozilla-foundation/common_voice_8_0",
        }
    ]


def test_sixty_two_results_are_all_kept(card_data: Path) -> None:
    """A model-index with 62 results yields 62 numeric metrics."""
    result = import_card(
        "huggingface", _hf(card_data) / "mi-helsinki-nlp-opus-mt-tc-base-gmw-gmw-62-results.md"
    )
    assert len(result.card["metrics"]) == 62
    assert all(isinstance(m["value"], int | float) for m in result.card["metrics"])


def test_results_without_dataset_are_kept_without_dataset(card_data: Path) -> None:
    """spaCy results have no dataset; the metrics are still imported, without a dataset name."""
    result = import_card(
        "huggingface", _hf(card_data) / "mi-spacy-zh_core_web_sm-results-without-dataset.md"
    )
    assert result.card["metrics"][0]["name"] == "precision"
    assert "dataset" not in result.card["metrics"][0]
    assert "evaluation_data" in result.missing


def test_legacy_model_index_with_single_metric(card_data: Path) -> None:
    """The 2021 Trainer format (model_index, one `metric` mapping) is read."""
    result = import_card(
        "huggingface",
        _hf(card_data)
        / "legacy-avneet-distilbert-sst2-model_index-underscore-metric-singular.md",
    )
    assert result.card["metrics"] == [
        {"name": "accuracy", "value": 0.9151376146788991, "dataset": "glue", "slice": "sst2"}
    ]


def test_verified_results_with_split(card_data: Path) -> None:
    """Hub-verified results keep their split."""
    result = import_card(
        "huggingface", _hf(card_data) / "mi-intel-bert-base-uncased-mrpc-verified-verifyToken.md"
    )
    assert any(m.get("split") == "validation" for m in result.card["metrics"])


def test_license_list_is_joined_with_a_warning(card_data: Path) -> None:
    """A list-valued license is kept as one SPDX-style expression and reported."""
    result = import_card(
        "huggingface", _hf(card_data) / "nomi-ilyagusev-rut5-sum-gazeta-license-as-list-widget.md"
    )
    assert result.card["model"]["license"] == "apache-2.0"
    assert any("license is a list" in w for w in result.warnings)
    assert "widget" not in result.card["extensions"]["huggingface"]


def test_overrides_make_a_valid_card(card_data: Path) -> None:
    """With version, digest and risk tier supplied, the imported card passes the schema."""
    result = import_card(
        "huggingface",
        _hf(card_data) / "mi-gabriel-bart-base-cnn-swe-verified-plus-co2-numeric.md",
        version="1.0.0",
        digest=DIGEST,
        risk_tier="minimal",
        author="gabriel",
    )
    assert result.valid
    assert result.card["model"]["artifact_digest"] == DIGEST
    assert result.card["source"]["format"] == "huggingface"
    assert not {"model.version", "model.artifact_digest", "risk_tier", "author"} & set(
        result.missing
    )


def test_missing_fields_are_reported_required_first(card_data: Path) -> None:
    """Without overrides the card lacks version, digest and risk tier, listed first."""
    result = import_card(
        "huggingface", _hf(card_data) / "hf-hub-test-fixtures" / "sample_simple_model_index.md"
    )
    assert result.missing[:3] == ["model.version", "model.artifact_digest", "risk_tier"]
    assert not result.valid


def test_no_front_matter_is_an_empty_import(card_data: Path) -> None:
    """A README without metadata imports with everything reported missing, not an error."""
    result = import_card(
        "huggingface", _hf(card_data) / "hf-hub-test-fixtures" / "sample_no_metadata.md"
    )
    assert result.missing[0] == "model.name"


def test_windows_line_breaks_parse(card_data: Path) -> None:
    """CRLF line endings are accepted."""
    result = import_card(
        "huggingface", _hf(card_data) / "hf-hub-test-fixtures" / "sample_windows_line_breaks.md"
    )
    assert result.card["model"]["license"] == "mit"


def test_front_matter_that_is_a_list_fails(card_data: Path) -> None:
    """Front matter that is a YAML list is rejected as not a mapping."""
    with pytest.raises(CardImportError, match="front matter: expected a YAML mapping, got list"):
        import_card(
            "huggingface", _hf(card_data) / "hf-hub-test-fixtures" / "sample_invalid_card_data.md"
        )


MALFORMED = {
    # file-name prefix after "malformed-" -> expected message pattern
    "dewibrynjones": r"results\[0\]\.metrics\[0\]\.value: expected a number, got '25\.59%'",
    "drishtisharma": r"\.value: expected a number, got 'NA'",
    "dumiiii": r"model-index: expected a list of models, got a dict",
    "jade": r"thumbnail: template placeholder",
    "lighteternal": r"front matter line \d+: invalid YAML: .*'\\t'",
    "nbailab": r"front matter line \d+: invalid YAML",
    "nhut": r"datasets\[1\]: expected a dataset id string",
    "osanseviero": r"front matter line 3: invalid YAML",
    "qqhann": r"front matter line \d+: invalid YAML",
    "rifky": r"model-index\[0\]\.results\[0\]\.metrics: required",
}


def _malformed(card_data: Path, key: str) -> Path:
    (path,) = _hf(card_data).glob(f"malformed-{key}-*.md")
    return path


def test_every_malformed_file_is_covered(card_data: Path) -> None:
    """Each malformed-* card in tests/data has an expected error below."""
    names = {p.name.split("-")[1] for p in _hf(card_data).glob("malformed-*.md")}
    assert names == set(MALFORMED)


@pytest.mark.parametrize(("key", "pattern"), sorted(MALFORMED.items()))
def test_malformed_card_gives_one_line_error(card_data: Path, key: str, pattern: str) -> None:
    """A malformed card raises CardImportError: one line naming the file, where, and what."""
    path = _malformed(card_data, key)
    with pytest.raises(CardImportError) as info:
        import_card("huggingface", path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert re.search(pattern, message), message


def test_norway_problem_is_explained() -> None:
    """`language: [no]` loads as false under YAML 1.1; the error says to quote it."""
    with pytest.raises(CardImportError, match=r"language\[0\]: .*got False .*quote the code"):
        import_text("huggingface", "---\nlanguage:\n- no\n---\n", source="README.md")


def test_unclosed_front_matter_fails() -> None:
    """An opening fence without a closing one is reported."""
    with pytest.raises(CardImportError, match="no closing '---'"):
        import_text("huggingface", "---\nlicense: mit\n# Title\n", source="README.md")


def test_body_sections_fill_intended_use_and_limitations() -> None:
    """Template sections with real text become purpose, out-of-scope and limitations."""
    text = (
        "---\nlicense: mit\n---\n# m\n## Intended uses\nSummarise news.\n"
        "## Out-of-Scope Use\nMedical advice.\n## Limitations\nEnglish only.\n"
        "## Training data\nMore information needed\n"
    )
    card = import_text("huggingface", text, source="README.md").card
    assert card["intended_use"] == {
        "purpose": "Summarise news.",
        "out_of_scope": ["Medical advice."],
    }
    assert card["limitations"] == ["English only."]
