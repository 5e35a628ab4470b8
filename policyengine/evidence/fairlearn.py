"""A fairlearn ``MetricFrame`` exported to JSON -> fairness evidence.

``MetricFrame`` has no JSON form of its own, so the export is the frame's own
pandas and dict views, written as one object (docs/policy-language.md shows
the four lines that write it)::

    {"sensitive_features": mf.sensitive_levels,          # attribute names
     "overall": mf.overall.to_dict(),                     # {metric: value}
     "by_group": json.loads(mf.by_group.to_json(orient="table")),
     "ratio": mf.ratio().to_dict(),                       # {metric: min/max}
     "difference": mf.difference().to_dict()}             # {metric: max-min}

``by_group`` may also be ``mf.by_group.to_dict()`` (``{metric: {group:
value}}``) for a single sensitive feature. A frame built from one metric
function (Series instead of DataFrame) gives scalars: then ``"metric"`` names
it. ``ratio`` and ``difference`` become fairness results for the protected
attribute (the sensitive feature names joined by ``+``): the selection-rate
ratio is the demographic parity ratio, its difference the demographic parity
difference, the true-positive-rate difference the equal opportunity
difference; other metrics keep their name with ``_ratio`` / ``_difference``.
``overall`` and ``by_group`` values become metrics (slice ``sex=F``).

Reference: fairlearn.metrics.MetricFrame (overall, by_group, ratio(),
difference(), sensitive_levels) and fairlearn's demographic_parity_ratio.
"""

from __future__ import annotations

from typing import Any

from policyengine.evidence._model import Evidence, EvidenceError, finite

__all__ = ["SHAPE", "parse_fairlearn"]

SHAPE = (
    "fairlearn MetricFrame export {sensitive_features, overall, by_group, ratio, difference}"
)
_RATIO_NAMES = {"selection_rate": "demographic_parity_ratio"}
_DIFFERENCE_NAMES = {
    "selection_rate": "demographic_parity_difference",
    "true_positive_rate": "equal_opportunity_difference",
}


def _fail(source: str, where: str, what: str) -> EvidenceError:
    return EvidenceError(f"{source}: {where}: {what}")


def _per_metric(data: dict[str, Any], key: str, source: str) -> dict[str, float | int]:
    """``{metric: number}`` from a ``to_dict()`` view, or a scalar named by ``metric``."""
    raw = data.get(key)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        if not isinstance(data.get("metric"), str):
            raise _fail(source, f"$.{key}", "a single value needs \"metric\" naming the metric")
        raw = {data["metric"]: raw}
    out = {}
    for metric, value in raw.items():
        number = finite(value)
        if number is None:
            raise _fail(source, f"$.{key}.{metric}", f"expected a finite number, got {value!r}")
        out[str(metric)] = number
    return out


def _table(by_group: dict[str, Any], source: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Sensitive feature names and rows of a pandas ``orient="table"`` document."""
    names = (by_group.get("schema") or {}).get("primaryKey")
    rows = by_group.get("data")
    if not isinstance(names, list) or not names or not isinstance(rows, list):
        raise _fail(source, "$.by_group", "expected a pandas table {schema: {primaryKey}, data}")
    return [str(n) for n in names], [r for r in rows if isinstance(r, dict)]


def _group_metrics(
    data: dict[str, Any], source: str
) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """(sensitive feature names, group labels, per-group metrics) from ``by_group``."""
    by_group = data.get("by_group")
    names = [str(n) for n in data.get("sensitive_features") or []]
    if isinstance(by_group, dict) and "schema" in by_group:
        names, rows = _table(by_group, source)
        metrics, groups = [], []
        for row in rows:
            label = ",".join(str(row.get(n)) for n in names)
            groups.append(label)
            for key, value in row.items():
                if key not in names and finite(value) is not None:
                    metrics.append({"name": key, "value": value, "slice": _slice(names, label)})
        return names, groups, metrics
    if by_group is not None and not isinstance(by_group, dict):
        raise _fail(source, "$.by_group", "expected an object")
    per_metric = by_group or {}
    if per_metric and not all(isinstance(v, dict) for v in per_metric.values()):
        per_metric = {str(data.get("metric", "metric")): per_metric}
    metrics, groups = [], []
    for metric, values in per_metric.items():
        for group, value in values.items():
            if finite(value) is not None:
                groups.append(str(group))
                metrics.append({"name": metric, "value": value, "slice": _slice(names, group)})
    return names, list(dict.fromkeys(groups)), metrics


def _slice(names: list[str], label: Any) -> str:
    return f"{'+'.join(names) or 'group'}={label}"


def parse_fairlearn(data: dict[str, Any], source: str) -> Evidence:
    """A MetricFrame export -> fairness evidence (see the module docstring for the shape).

    Raises:
        EvidenceError: no sensitive feature names, no ratio or difference, a
            value that is not a finite number.
    """
    names, groups, metrics = _group_metrics(data, source)
    if not names:
        raise _fail(
            source,
            "$.sensitive_features",
            "required: the protected attribute names (mf.sensitive_levels), or by_group "
            "written with to_json(orient=\"table\")",
        )
    attribute = "+".join(names)
    fairness = []
    for kind, table, suffix in (("ratio", _RATIO_NAMES, "_ratio"),
                                ("difference", _DIFFERENCE_NAMES, "_difference")):
        for metric, value in _per_metric(data, kind, source).items():
            result = {"metric": table.get(metric, metric + suffix), "value": value,
                      "protected_attribute": attribute}
            fairness.append({**result, "groups": groups} if groups else result)
    if not fairness:
        raise _fail(source, "$", f"no ratio or difference to judge; expected a {SHAPE}")
    overall = [{"name": m, "value": v} for m, v in _per_metric(data, "overall", source).items()]
    return Evidence(
        "fairness", "fairlearn", {}, "metricframe", fairness=fairness, metrics=overall + metrics
    )
