"""SageMaker Clarify bias reports and Model Monitor model-quality reports -> evidence.

Clarify (``analysis.json`` of a bias job, format ``version`` 1.0): the
``pre_training_bias_metrics`` and ``post_training_bias_metrics`` sections
hold ``facets: {attribute: [{value_or_threshold, metrics: [{name, value}]}]}``.
Each numeric metric becomes one fairness result for that attribute and facet
value; the codes with a standard fairness name are renamed (DI ->
demographic_parity_ratio, DPPL -> demographic_parity_difference, ...), the
others kept as ``clarify_<code>``. The translated ``metric_groups`` form the
SageMaker SDK writes into a model card (group names ``... facet Gender=0``)
is read too.

Model Monitor (``statistics.json`` of a model-quality job): one of
``binary_classification_metrics``, ``multiclass_classification_metrics`` or
``regression_metrics``, each metric ``{value, standard_deviation}``; numeric
values become metrics (confusion matrices and curves are counted in notes).
The SDK's ``metric_groups`` form of them is read too.

References: SageMaker Clarify "Pre-training bias metrics" and "Post-training
bias metrics" (metric codes), aws/sagemaker-python-sdk
``model_card/evaluation_metric_parsers.py`` (the translated shapes).
"""

from __future__ import annotations

import re
from typing import Any

from policyengine.evidence._model import Evidence, EvidenceError, finite
from policyengine.evidence.clarify_codes import CLARIFY_FAIRNESS

__all__ = ["CLARIFY_SECTIONS", "MONITOR_SECTIONS", "parse_clarify", "parse_model_monitor"]

CLARIFY_SECTIONS = ("pre_training_bias_metrics", "post_training_bias_metrics")
MONITOR_SECTIONS = (
    "binary_classification_metrics",
    "multiclass_classification_metrics",
    "regression_metrics",
)
_SUPPORTED_CLARIFY = ("1.0",)
_FACET = re.compile(r"^(pre|post)_training_bias_metrics\b.*facet\s+([^=\s]+)\s*=\s*(\S+)")


def _fail(source: str, where: str, what: str) -> EvidenceError:
    return EvidenceError(f"{source}: {where}: {what}")


def _result(code: Any, value: Any, attribute: str, group: str, stage: str) -> dict[str, Any]:
    name = str(code)
    return {
        "metric": CLARIFY_FAIRNESS.get(name, "clarify_" + name.lower()),
        "value": value,
        "protected_attribute": attribute,
        "groups": [group],
        "dataset": stage,
    }


def _facets(section: Any, name: str, source: str, notes: list[str]) -> list[dict[str, Any]]:
    if not isinstance(section, dict) or not isinstance(section.get("facets"), dict):
        raise _fail(source, f"$.{name}.facets", "expected an object of protected attributes")
    out = []
    stage = name.removesuffix("_bias_metrics")
    for attribute, values in section["facets"].items():
        if not isinstance(values, list):
            raise _fail(source, f"$.{name}.facets.{attribute}", "expected a list of facet values")
        for i, facet in enumerate(values):
            where = f"$.{name}.facets.{attribute}[{i}]"
            if not isinstance(facet, dict) or not isinstance(facet.get("metrics"), list):
                raise _fail(source, where, "expected {value_or_threshold, metrics: [...]}")
            group = str(facet.get("value_or_threshold"))
            for j, metric in enumerate(facet["metrics"]):
                value = finite(metric.get("value")) if isinstance(metric, dict) else None
                if value is None:
                    notes.append(f"{where}.metrics[{j}] has no numeric value; not carried over")
                    continue
                out.append(_result(metric.get("name"), value, str(attribute), group, stage))
    return out


def parse_clarify(data: dict[str, Any], source: str) -> Evidence:
    """Clarify bias metrics (analysis.json or metric_groups) -> fairness evidence.

    Raises:
        EvidenceError: an unsupported version or a malformed section.
    """
    notes: list[str] = []
    if "metric_groups" in data:
        fairness = _groups(data, source, notes, bias=True)
        return Evidence("fairness", "clarify", {}, "metric_groups", fairness=fairness, notes=notes)
    version = str(data.get("version", "1.0"))
    if version not in _SUPPORTED_CLARIFY:
        raise _fail(
            source,
            "$.version",
            f"Clarify analysis version {version!r} is not supported; supported: "
            f"{', '.join(_SUPPORTED_CLARIFY)} (pre/post_training_bias_metrics) or metric_groups",
        )
    fairness = []
    for name in CLARIFY_SECTIONS:
        if name in data:
            fairness += _facets(data[name], name, source, notes)
    if not fairness:
        raise _fail(source, "$", "no numeric bias metric in the Clarify report")
    return Evidence("fairness", "clarify", {}, version, fairness=fairness, notes=notes)


def _groups(
    data: dict[str, Any], source: str, notes: list[str], *, bias: bool
) -> list[dict[str, Any]]:
    """Fairness results (bias) or metrics (model quality) from the SDK's metric_groups."""
    groups = data.get("metric_groups")
    if not isinstance(groups, list):
        raise _fail(source, "$.metric_groups", "expected a list of {name, metric_data}")
    out = []
    for i, group in enumerate(groups):
        where = f"$.metric_groups[{i}]"
        if not isinstance(group, dict) or not isinstance(group.get("metric_data"), list):
            raise _fail(source, where, "expected {name, metric_data: [...]}")
        name = str(group.get("name", ""))
        facet = _FACET.match(name)
        if bias and not facet:
            raise _fail(source, f"{where}.name", f"not a Clarify bias group: {name!r}")
        for j, metric in enumerate(group["metric_data"]):
            numeric = isinstance(metric, dict) and metric.get("type", "number") == "number"
            value = finite(metric.get("value")) if numeric else None
            if value is None:
                notes.append(f"{where}.metric_data[{j}] is not a number; not carried over")
                continue
            if facet:
                stage = f"{facet.group(1)}_training"
                out.append(_result(metric["name"], value, facet.group(2), facet.group(3), stage))
            else:
                out.append({"name": str(metric.get("name")), "value": value, "slice": name})
    if not out:
        raise _fail(source, "$.metric_groups", "no numeric metric in any group")
    return out


def parse_model_monitor(data: dict[str, Any], source: str) -> Evidence:
    """Model Monitor model-quality statistics (or metric_groups) -> metrics evidence.

    Raises:
        EvidenceError: no model-quality section, or a malformed one.
    """
    notes: list[str] = []
    if "metric_groups" in data:
        metrics = _groups(data, source, notes, bias=False)
        return Evidence(
            "metrics", "model-monitor", {}, "metric_groups", metrics=metrics, notes=notes
        )
    sections = [name for name in MONITOR_SECTIONS if name in data]
    if not sections:
        raise _fail(source, "$", f"expected one of {', '.join(MONITOR_SECTIONS)}")
    metrics = []
    for section in sections:
        body = data[section]
        if not isinstance(body, dict):
            raise _fail(source, f"$.{section}", "expected an object of metrics")
        for name, metric in body.items():
            value = finite(metric.get("value")) if isinstance(metric, dict) else None
            if value is None:
                notes.append(f"$.{section}.{name} has no numeric value; not carried over")
                continue
            metrics.append({"name": str(name), "value": value, "slice": section})
    return Evidence("metrics", "model-monitor", {}, "statistics", metrics=metrics, notes=notes)
