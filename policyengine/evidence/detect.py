"""Tell which evidence format a parsed report is (``evidence import --format auto``).

Owns the choice only; the parsers read. Each format is recognised by the
structure its tool writes: Evidently (``metrics`` of ``{config: {type:
"evidently:..."}}`` or ``{metric, result}``), fairlearn (a MetricFrame export
with ``ratio`` / ``difference`` / ``by_group``), Clarify (``pre_`` /
``post_training_bias_metrics``, or ``metric_groups`` of bias groups) and Model
Monitor (``binary_classification_metrics`` / ``multiclass_...`` /
``regression_metrics``, or ``metric_groups`` of those).
"""

from __future__ import annotations

from typing import Any

from policyengine.evidence.evidently import is_evidently
from policyengine.evidence.sagemaker import CLARIFY_SECTIONS, MONITOR_SECTIONS

__all__ = ["FORMAT_NAMES", "evidence_format"]

FORMAT_NAMES: tuple[str, ...] = ("evidently", "fairlearn", "clarify", "model-monitor")
"""Evidence formats ``evidence import --format`` takes."""


def _metric_groups(data: dict[str, Any]) -> str | None:
    groups = data.get("metric_groups")
    if not isinstance(groups, list) or not groups or len(data) != 1:
        return None
    names = [str(g.get("name", "")) for g in groups if isinstance(g, dict)]
    if names and all("bias_metrics" in n for n in names):
        return "clarify"
    if names and all(any(n.startswith(s) for s in MONITOR_SECTIONS) for n in names):
        return "model-monitor"
    return None


def evidence_format(data: Any) -> str:
    """The evidence format of a parsed report.

    Raises:
        ValueError: the structure matches no supported format.
    """
    if isinstance(data, dict):
        if is_evidently(data):
            return "evidently"
        if any(k in data for k in CLARIFY_SECTIONS):
            return "clarify"
        if any(k in data for k in MONITOR_SECTIONS):
            return "model-monitor"
        if ("ratio" in data or "difference" in data) and (
            "by_group" in data or "sensitive_features" in data
        ):
            return "fairlearn"
        found = _metric_groups(data)
        if found:
            return found
    raise ValueError("no evidence format recognised")
