"""Evidently reports (JSON) -> drift evidence.

Two shapes are read, both as Evidently itself writes them:

- ``metric_v2`` (Evidently 0.7+, ``Report([...]).run(current, reference)``
  then ``.json()``, ``.dict()`` or ``.save_json()``): ``{"metrics": [{id,
  metric_name, config: {type: "evidently:metric_v2:<Name>", ...}, value}],
  "tests": [...]}``. Read: ``DriftedColumnsCount`` (share and count of drifted
  columns, ``drift_share`` threshold), ``ValueDrift`` (per-column score,
  method, threshold; the column's drift test status when tests were
  included), ``MissingValueCount`` (per-column missing share) and
  ``DatasetMissingValueCount``.
- ``legacy`` (Evidently 0.4-0.6 ``Report(metrics=[...])`` and
  ``evidently.legacy`` in 0.7: ``{"version", "metrics": [{metric, result}]}``).
  Read: ``DatasetDriftMetric``, ``DataDriftTable`` (``drift_by_columns``) and
  ``DatasetMissingValuesMetric`` (``share_of_missing_values_by_column``).

A score is a p-value when the method's name says so (``K-S p_value``,
``chi-square p_value``, ...; drift when the score is below the threshold) and
a distance otherwise (Wasserstein, PSI, Jensen-Shannon, ...; drift when it is
at or above). ``drifted`` is Evidently's own verdict and is only set when the
report holds it.

Reference: evidently 0.7 ``evidently.core.report.Snapshot.dict`` and
``evidently.legacy.report.Report.as_dict``.
"""

from __future__ import annotations

import re
from typing import Any

from policyengine.evidence._model import Evidence, EvidenceError, finite

__all__ = ["SHAPES", "is_evidently", "parse_evidently"]

SHAPES = (
    "Evidently metric_v2 report {metrics: [{metric_name, config: {type: "
    "\"evidently:metric_v2:...\"}, value}], tests} (0.7+) or legacy report "
    "{version: 0.4-0.7, metrics: [{metric, result}]}"
)
_V2 = "evidently:metric_v2:"
_LEGACY_VERSION = re.compile(r"^0\.[4-7]\.")


def _fail(source: str, where: str, what: str) -> EvidenceError:
    return EvidenceError(f"{source}: {where}: {what}")


def is_evidently(data: dict[str, Any]) -> bool:
    """True when ``data`` has the top-level shape of an Evidently report (either kind)."""
    metrics = data.get("metrics")
    if not isinstance(metrics, list) or not metrics or not isinstance(metrics[0], dict):
        return False
    first = metrics[0]
    config = first.get("config")
    v2 = isinstance(config, dict) and str(config.get("type", "")).startswith("evidently:")
    return v2 or ("metric" in first and "result" in first)


def _score_type(method: str) -> str:
    return "p_value" if "p_value" in method.replace("-", "_").lower() else "distance"


class _Columns:
    """Per-column drift and missing-rate facts, keyed by column name."""

    def __init__(self) -> None:
        self.by_name: dict[str, dict[str, Any]] = {}

    def set(self, column: Any, **facts: Any) -> None:
        entry = self.by_name.setdefault(str(column), {"column": str(column)})
        entry.update({k: v for k, v in facts.items() if v is not None})

    def sorted(self) -> list[dict[str, Any]]:
        return [self.by_name[name] for name in sorted(self.by_name)]


def _test_status(data: dict[str, Any]) -> dict[str, str]:
    """metric id -> the status of the test bound to it (SUCCESS, FAIL, ...)."""
    out: dict[str, str] = {}
    for test in data.get("tests") or []:
        if isinstance(test, dict) and isinstance(test.get("metric_config"), dict):
            metric_id = test["metric_config"].get("metric_id")
            if isinstance(metric_id, str) and isinstance(test.get("status"), str):
                out[metric_id] = test["status"]
    return out


def _v2(data: dict[str, Any], source: str) -> tuple[dict[str, Any], _Columns]:
    drift: dict[str, Any] = {}
    columns = _Columns()
    status = _test_status(data)
    for i, metric in enumerate(data["metrics"]):
        where = f"$.metrics[{i}]"
        config = metric.get("config") if isinstance(metric, dict) else None
        if not isinstance(config, dict):
            raise _fail(source, where, "expected {id, metric_name, config, value}")
        kind = str(config.get("type", "")).removeprefix(_V2)
        value = metric.get("value")
        if kind == "DriftedColumnsCount":
            if not isinstance(value, dict) or finite(value.get("share")) is None:
                raise _fail(source, f"{where}.value", "expected {count, share} numbers")
            drift.update(share=value["share"], drifted_count=finite(value.get("count")),
                         share_threshold=finite(config.get("drift_share")))
            if metric.get("id") in status:
                drift["dataset_drift"] = status[metric["id"]] == "FAIL"
        elif kind == "ValueDrift":
            if finite(value) is None:
                raise _fail(source, f"{where}.value", f"expected a drift score, got {value!r}")
            method = str(config.get("method", ""))
            verdict = status.get(metric.get("id"))
            columns.set(config.get("column"), score=value, score_type=_score_type(method),
                        method=method, threshold=finite(config.get("threshold")),
                        drifted=None if verdict is None else verdict == "FAIL")
        elif kind == "MissingValueCount" and isinstance(value, dict):
            columns.set(config.get("column"), missing_rate=finite(value.get("share")))
        elif kind == "DatasetMissingValueCount" and isinstance(value, dict):
            drift["missing_rate"] = finite(value.get("share"))
    return drift, columns


def _legacy(data: dict[str, Any], source: str) -> tuple[dict[str, Any], _Columns]:
    drift: dict[str, Any] = {}
    columns = _Columns()
    for i, metric in enumerate(data["metrics"]):
        result = metric.get("result") if isinstance(metric, dict) else None
        if not isinstance(result, dict):
            raise _fail(source, f"$.metrics[{i}]", "expected {metric, result}")
        name = metric.get("metric")
        if name in ("DatasetDriftMetric", "DataDriftTable"):
            share = finite(result.get("share_of_drifted_columns"))
            if share is None:
                raise _fail(source, f"$.metrics[{i}].result.share_of_drifted_columns",
                            "expected a number")
            drift.update(share=share, drifted_count=finite(result.get("number_of_drifted_columns")),
                         dataset_drift=result.get("dataset_drift"))
            if finite(result.get("drift_share")) is not None:
                drift["share_threshold"] = result["drift_share"]
        if name == "DataDriftTable":
            for column, facts in (result.get("drift_by_columns") or {}).items():
                method = str(facts.get("stattest_name", ""))
                columns.set(column, score=finite(facts.get("drift_score")),
                            score_type=_score_type(method), method=method,
                            threshold=finite(facts.get("stattest_threshold")),
                            drifted=facts.get("drift_detected"))
        elif name == "DatasetMissingValuesMetric":
            current = result.get("current") or {}
            for column, share in (current.get("share_of_missing_values_by_column") or {}).items():
                columns.set(column, missing_rate=finite(share))
            drift["missing_rate"] = finite(current.get("share_of_missing_values"))
    return drift, columns


def parse_evidently(data: dict[str, Any], source: str) -> Evidence:
    """An Evidently report -> drift evidence.

    Raises:
        EvidenceError: not one of :data:`SHAPES`, a legacy version outside
            0.4-0.7, or no drift or missing-value metric in the report.
    """
    if not is_evidently(data):
        raise _fail(source, "$", f"not an Evidently report; supported: {SHAPES}")
    first = data["metrics"][0]
    if isinstance(first.get("config"), dict):
        shape = "metric_v2"
        drift, columns = _v2(data, source)
    else:
        version = str(data.get("version", ""))
        if not _LEGACY_VERSION.match(version):
            raise _fail(source, "$.version", f"Evidently report version {version!r} is not "
                        f"supported; supported: {SHAPES}")
        shape = f"legacy {version}"
        drift, columns = _legacy(data, source)
    found = columns.sorted()
    if not drift and not found:
        raise _fail(source, "$.metrics", "no drift or missing-value metric (DataDriftPreset, "
                    "DataSummaryPreset, DatasetMissingValuesMetric) in the report")
    drift = {k: v for k, v in drift.items() if v is not None}
    drift["columns"] = found
    return Evidence("drift", "evidently", {}, shape, drift=drift)
