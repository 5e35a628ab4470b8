"""Reports from Evidently, fairlearn, Clarify and Model Monitor parse into evidence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policyengine.evidence import EvidenceError, load_evidence, parse_evidence

pytest.importorskip("evidently", reason="the evidence extra (pip install -e '.[evidence]')")
pytest.importorskip("fairlearn", reason="the evidence extra (pip install -e '.[evidence]')")

from tests.policyengine.evidence.reports import (
    evidently_legacy_report,
    evidently_report,
    metricframe_export,
)

SAGEMAKER = Path(__file__).resolve().parents[2] / "data" / "evidence" / "cards" / "sagemaker"


def _columns(evidence) -> dict[str, dict]:
    return {c["column"]: c for c in evidence.drift["columns"]}


def test_evidently_report_with_drift_names_the_drifted_column() -> None:
    """A real Evidently 0.7 report on shifted data flags age, with its K-S p-value."""
    evidence = parse_evidence(evidently_report(drift=True), "r.json")
    assert (evidence.kind, evidence.format, evidence.format_version) == (
        "drift", "evidently", "metric_v2")
    age = _columns(evidence)["age"]
    assert age["drifted"] is True and age["score_type"] == "p_value" and age["score"] < 0.05
    assert evidence.drift["share"] == pytest.approx(1 / 3)


def test_evidently_report_without_drift_flags_nothing() -> None:
    """The same report on unshifted data has no drifted column and share 0."""
    evidence = parse_evidence(evidently_report(drift=False), "r.json")
    assert not any(c.get("drifted") for c in evidence.drift["columns"])
    assert evidence.drift["share"] == 0


def test_evidently_missing_values_become_missing_rates() -> None:
    """DataSummaryPreset's per-column missing share is carried as missing_rate."""
    evidence = parse_evidence(evidently_report(drift=False, missing=True), "r.json")
    assert _columns(evidence)["income"]["missing_rate"] == pytest.approx(101 / 300)


def test_evidently_legacy_report_reads_the_same_facts() -> None:
    """The legacy report shape (evidently.legacy) gives the same drifted column."""
    evidence = parse_evidence(evidently_legacy_report(drift=True), "r.json")
    assert evidence.format_version.startswith("legacy 0.")
    assert _columns(evidence)["age"]["drifted"] is True


def test_an_unsupported_evidently_version_is_named() -> None:
    """A legacy report of version 0.3 is refused naming the version and the supported shapes."""
    report = evidently_legacy_report(drift=False)
    report["version"] = "0.3.1"
    with pytest.raises(EvidenceError, match=r"r.json: \$.version: .*'0.3.1' is not supported; "
                       r"supported: Evidently metric_v2"):
        parse_evidence(report, "r.json")


def test_metricframe_ratio_becomes_demographic_parity_ratio() -> None:
    """A fairlearn MetricFrame's selection-rate ratio is the parity ratio for sex."""
    evidence = parse_evidence(metricframe_export(disparity=True), "mf.json")
    results = {r["metric"]: r for r in evidence.fairness}
    ratio = results["demographic_parity_ratio"]
    assert (ratio["protected_attribute"], ratio["value"]) == ("sex", 0.5)
    assert ratio["groups"] == ["F", "M"]
    assert results["demographic_parity_difference"]["value"] == 0.5
    assert {"name": "selection_rate", "value": 0.5, "slice": "sex=F"} in evidence.metrics


def test_metricframe_without_attribute_names_is_refused() -> None:
    """A by_group written with to_dict() and no sensitive_features cannot name the attribute."""
    export = {"by_group": {"selection_rate": {"F": 0.2, "M": 0.5}},
              "ratio": {"selection_rate": 0.4}}
    with pytest.raises(EvidenceError, match=r"\$.sensitive_features: required"):
        parse_evidence(export, "mf.json")


def test_clarify_analysis_becomes_fairness_results() -> None:
    """The SDK's raw Clarify bias report gives AD and CDDL results for Gender."""
    evidence = load_evidence(SAGEMAKER / "evaluation-sources" / "sdk-input-clarify_bias.json")
    assert evidence.format == "clarify" and evidence.kind == "fairness"
    metrics = {(r["metric"], r["groups"][0]) for r in evidence.fairness}
    assert ("accuracy_difference", "0") in metrics
    assert ("conditional_demographic_disparity_labels", "0") in metrics
    assert {r["protected_attribute"] for r in evidence.fairness} == {"Gender"}


def test_clarify_metric_groups_read_like_the_raw_report() -> None:
    """The translated metric_groups fragment gives the same results as the raw report."""
    raw = load_evidence(SAGEMAKER / "evaluation-sources" / "sdk-input-clarify_bias.json")
    groups = load_evidence(SAGEMAKER / "fragment-evaluation-metric-groups-clarify_bias.json")
    assert groups.format == "clarify"
    def facts(evidence):
        return sorted((r["metric"], r["protected_attribute"], r["groups"][0], r["dataset"])
                      for r in evidence.fairness)

    assert facts(groups) == facts(raw)


@pytest.mark.parametrize("name", [
    "evaluation-sources/sdk-input-model_monitor_model_quality_binary_classification.json",
    "evaluation-sources/sdk-input-model_monitor_model_quality_regression.json",
    "fragment-evaluation-metric-groups-model_monitor_model_quality_binary_classification.json",
    "fragment-evaluation-metric-groups-model_monitor_model_quality_regression.json",
])
def test_model_monitor_reports_become_metrics(name: str) -> None:
    """Model Monitor statistics and their metric_groups become numeric metrics."""
    evidence = load_evidence(SAGEMAKER / name)
    assert (evidence.format, evidence.kind) == ("model-monitor", "metrics")
    assert evidence.metrics and all(isinstance(m["value"], int | float) for m in evidence.metrics)


def test_the_source_digest_is_of_the_file_bytes(tmp_path: Path) -> None:
    """source.digest is the sha256 of the file as stored; file is its base name."""
    import hashlib

    path = tmp_path / "mf.json"
    path.write_text(json.dumps(metricframe_export(disparity=False)))
    evidence = load_evidence(path)
    assert evidence.source == {
        "file": "mf.json", "digest": "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()}


@pytest.mark.parametrize(("content", "match"), [
    ("{not json", r"bad.json:1:2: invalid JSON"),
    ("[1, 2]", r"bad.json: \$: expected a JSON object, got list"),
    ('{"hello": 1}', r"bad.json: \$: not a supported report \(top-level keys: hello\); supported:"),
    ('{"metrics": [{"metric": "DataDriftTable", "result": 3}], "version": "0.6.1"}',
     r"bad.json: \$.metrics\[0\]: expected \{metric, result\}"),
    ('{"post_training_bias_metrics": {"facets": {"sex": [{"metrics": [{"name": "DI", '
     '"value": 0.5}]}]}}, "version": "2.0"}', r"Clarify analysis version '2.0' is not supported"),
    ('{"ratio": {"selection_rate": "NaN"}, "sensitive_features": ["sex"]}',
     r"\$.ratio.selection_rate: expected a finite number"),
])
def test_malformed_reports_fail_in_one_line(tmp_path: Path, content: str, match: str) -> None:
    """Each malformed report is one EvidenceError line naming the file."""
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(EvidenceError, match=match) as info:
        load_evidence(path)
    assert "\n" not in str(info.value)


def test_a_huge_report_is_refused_before_reading(tmp_path: Path) -> None:
    """A report over the input size limit is refused naming the limit."""
    path = tmp_path / "huge.json"
    with path.open("wb") as handle:
        handle.truncate(17 * 1024 * 1024)
    with pytest.raises(EvidenceError, match=r"huge.json: cannot read evidence file: .* limit"):
        load_evidence(path)


def test_a_format_that_does_not_match_is_refused() -> None:
    """Asking for fairlearn on an Evidently report fails naming the fairlearn shape."""
    with pytest.raises(EvidenceError, match=r"required: the protected attribute names"):
        parse_evidence(evidently_report(drift=False), "r.json", "fairlearn")
