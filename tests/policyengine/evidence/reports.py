"""Real reports made by the real libraries on small data made here (nothing downloaded).

Evidently and fairlearn are the ``evidence`` extra; a test module that needs
them imports this one after ``pytest.importorskip``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd


def _frames(drift: bool, missing: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current data: age shifts by 20 when ``drift``; income loses a third."""
    rng = np.random.default_rng(7)
    reference = pd.DataFrame({
        "age": rng.normal(40, 5, 300),
        "income": rng.normal(50, 10, 300),
        "city": rng.choice(["north", "south"], 300),
    })
    current = pd.DataFrame({
        "age": rng.normal(60 if drift else 40, 5, 300),
        "income": rng.normal(50, 10, 300),
        "city": rng.choice(["north", "south"], 300),
    })
    if missing:
        current.loc[:100, "income"] = np.nan
    return reference, current


def evidently_report(*, drift: bool, missing: bool = False) -> dict[str, Any]:
    """An Evidently 0.7 report (DataDriftPreset + DataSummaryPreset, tests included)."""
    from evidently import Report
    from evidently.presets import DataDriftPreset, DataSummaryPreset

    reference, current = _frames(drift, missing)
    snapshot = Report([DataDriftPreset(), DataSummaryPreset()], include_tests=True).run(
        current, reference
    )
    return dict(json.loads(snapshot.json()))


def evidently_legacy_report(*, drift: bool) -> dict[str, Any]:
    """An Evidently legacy report (evidently.legacy: DataDriftPreset, missing values)."""
    from evidently.legacy.metric_preset import DataDriftPreset
    from evidently.legacy.metrics import DatasetMissingValuesMetric
    from evidently.legacy.report import Report

    reference, current = _frames(drift, False)
    report = Report(metrics=[DataDriftPreset(), DatasetMissingValuesMetric()])
    report.run(reference_data=reference, current_data=current)
    return dict(json.loads(report.json()))


def metricframe_export(*, disparity: bool) -> dict[str, Any]:
    """A fairlearn MetricFrame over sex, exported as docs/policy-language.md shows.

    With ``disparity`` women are selected at half the rate of men (ratio 0.5);
    without it both groups are selected at the same rate.
    """
    from fairlearn.metrics import MetricFrame, selection_rate, true_positive_rate

    n = 200
    sex = np.array(["F", "M"] * (n // 2))
    y_true = np.array([1, 1, 0, 0] * (n // 4))
    if disparity:
        y_pred = np.where(sex == "M", 1, np.array([1, 0, 0, 0] * (n // 4)))
    else:
        y_pred = np.array([1, 1, 0, 0] * (n // 4))
    frame = MetricFrame(
        metrics={"selection_rate": selection_rate, "true_positive_rate": true_positive_rate},
        y_true=y_true, y_pred=y_pred, sensitive_features=pd.Series(sex, name="sex"),
    )
    return {
        "sensitive_features": list(frame.sensitive_levels),
        "overall": frame.overall.to_dict(),
        "by_group": json.loads(frame.by_group.to_json(orient="table")),
        "ratio": frame.ratio().to_dict(),
        "difference": frame.difference().to_dict(),
    }
