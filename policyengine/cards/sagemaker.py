"""Amazon SageMaker model card content (JSON) -> canonical card.

Maps the six sections of the SageMaker model card schema 0.1.0
(``model_overview``, ``intended_uses``, ``business_details``,
``training_details``, ``evaluation_details``, ``additional_information``).
Scalar ``number`` metrics become card metrics; metrics in a SageMaker Clarify
bias group become fairness results, the protected attribute read from the
group's ``facet`` (DI -> demographic parity ratio, DPPL -> demographic parity
difference, RD -> equal opportunity difference, other codes kept as
``clarify_<code>``).
Graph and matrix metrics are counted in a warning and not carried over.

Reference: aws/sagemaker-python-sdk ``model_card_schema.json`` (SageMakerModelCardSchema 0.1.0);
SageMaker Clarify bias metrics documentation (DI, DPPL, RD).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from policyengine.cards._build import fail, load_json, number
from policyengine.evidence.clarify_codes import CLARIFY_FAIRNESS

__all__ = ["CLARIFY_FAIRNESS", "SECTIONS", "SOURCE_PATHS", "convert"]

SOURCE_PATHS: dict[str, str] = {
    "model.name": "model_overview.model_name",
    "model.version": "model_overview.model_version",
    "model.description": "model_overview.model_description",
    "model.framework": "model_overview.algorithm_type",
    "model.task": "model_overview.problem_type",
    "model.artifact_uri": "model_overview.model_artifact[0]",
    "owner.team": "model_overview.model_owner",
    "author": "model_overview.model_creator",
    "risk_tier": "intended_uses.risk_rating",
    "intended_use.purpose": "intended_uses.purpose_of_model",
    "intended_use.primary_uses": "intended_uses.intended_uses",
    "limitations": "additional_information.caveats_and_recommendations",
    "training_data": "training_details.training_job_details.training_datasets",
    "evaluation_data": "evaluation_details[].datasets",
    "metrics": "evaluation_details[].metric_groups[].metric_data",
    "fairness": "evaluation_details[].metric_groups[] (Clarify bias groups, facet from the name)",
    "extensions.sagemaker": "business_details, additional_information",
}
"""Canonical field -> where in the source it is read (for the import report)."""

SECTIONS = (
    "model_overview",
    "intended_uses",
    "business_details",
    "training_details",
    "evaluation_details",
    "additional_information",
)
_RISK = {"high": "high", "medium": "medium", "low": "low"}  # "Unknown" has no tier
# Clarify bias metric codes with a standard fairness name; other codes in a
# bias group are kept as ``clarify_<code>``.
_FACET = re.compile(r"facet\s+([^=\s]+)\s*=\s*(\S+)")


def _load(text: str, source: str) -> dict[str, Any]:
    data = load_json(text, source)
    if isinstance(data, dict) and isinstance(data.get("ModelCardContent"), str):
        return _load(data["ModelCardContent"], f"{source} ModelCardContent")
    if isinstance(data, dict) and set(data) == {"metric_groups"}:
        # An evaluation_details fragment (what the SDK writes for a Clarify or Model
        # Monitor job): one evaluation of an otherwise empty card.
        return {"evaluation_details": [{"name": Path(source).name, **data}]}
    if not isinstance(data, dict) or not any(k in data for k in SECTIONS):
        keys = ", ".join(sorted(data)[:4]) if isinstance(data, dict) else type(data).__name__
        raise fail(
            source,
            "$",
            f"expected SageMaker model card content ({', '.join(SECTIONS[:2])}, ...), got {keys}"
            + _evidence_hint(data),
        )
    for key in SECTIONS:
        want = list if key == "evaluation_details" else dict
        if key in data and not isinstance(data[key], want):
            raise fail(
                source,
                f"$.{key}",
                f"expected {'an array' if want is list else 'an object'},"
                f" got {type(data[key]).__name__}",
            )
    return data


def _evidence_hint(data: Any) -> str:
    """Point a raw Clarify or Model Monitor report at ``evidence import``."""
    from policyengine.evidence.detect import evidence_format

    try:
        kind = evidence_format(data)
    except ValueError:
        return ""
    return f" ({kind} evidence: record it with `policyengine evidence import`)"


def _fairness(group: str, metric: dict[str, Any], value: float | int) -> dict[str, Any] | None:
    facet = _FACET.search(group)
    if "bias" not in group.lower() or not facet:
        return None
    code = str(metric.get("name"))
    kind = CLARIFY_FAIRNESS.get(code, "clarify_" + code.lower())
    return {
        "metric": kind,
        "value": value,
        "protected_attribute": facet.group(1),
        "groups": [facet.group(2)],
    }


def _evaluations(
    evals: list[Any], warnings: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Metrics, fairness results and evaluation datasets from ``evaluation_details``."""
    metrics, fairness, datasets, skipped = [], [], [], 0
    for ev in (e for e in evals if isinstance(e, dict)):
        datasets += [{"name": d, "uri": d} for d in ev.get("datasets") or [] if isinstance(d, str)]
        for group in (g for g in ev.get("metric_groups") or [] if isinstance(g, dict)):
            name = str(group.get("name", ""))
            for m in (m for m in group.get("metric_data") or [] if isinstance(m, dict)):
                value = number(m.get("value")) if m.get("type", "number") == "number" else None
                if value is None:
                    skipped += 1
                    continue
                result = _fairness(name, m, value)
                if result:
                    fairness.append({**result, "dataset": ev.get("name")})
                else:
                    metrics.append(
                        {
                            "name": str(m.get("name")),
                            "value": value,
                            "dataset": ev.get("name"),
                            "slice": name or None,
                        }
                    )
    if skipped:
        warnings.append(
            f"{skipped} non-numeric evaluation metric(s) (graphs, matrices, strings)"
            " not carried over"
        )
    return metrics, fairness, datasets


def _model(overview: dict[str, Any]) -> dict[str, Any]:
    """Model identity from ``model_overview`` (name and version only on newer cards)."""
    artifacts = [a for a in overview.get("model_artifact") or [] if isinstance(a, str)]
    version = overview.get("model_version")
    return {
        "name": overview.get("model_name"),
        "version": str(version) if version is not None else None,
        "description": overview.get("model_description"),
        "framework": overview.get("algorithm_type"),
        "task": overview.get("problem_type"),
        "artifact_uri": artifacts[0] if artifacts else None,
    }


def _risk_tier(uses: dict[str, Any], warnings: list[str]) -> str | None:
    rating = str(uses.get("risk_rating") or "").lower()
    if rating and rating not in _RISK:
        warnings.append(
            f"intended_uses.risk_rating {uses.get('risk_rating')!r} has no risk tier;"
            " set --risk-tier"
        )
    return _RISK.get(rating)


def _training_data(training: dict[str, Any]) -> list[dict[str, Any]]:
    job = training.get("training_job_details")
    names = job.get("training_datasets") if isinstance(job, dict) else None
    return [{"name": d, "uri": d} for d in names or [] if isinstance(d, str)]


def convert(text: str, source: str) -> tuple[dict[str, Any], list[str]]:
    """Convert SageMaker model card content into a partial canonical card.

    Raises:
        CardImportError: when the file is not JSON or not SageMaker card content.
    """
    data = _load(text, source)
    overview = data.get("model_overview") or {}
    uses = data.get("intended_uses") or {}
    caveats = (data.get("additional_information") or {}).get("caveats_and_recommendations")
    warnings: list[str] = []
    metrics, fairness, evals = _evaluations(data.get("evaluation_details") or [], warnings)
    card: dict[str, Any] = {
        "model": _model(overview),
        "owner": {"team": overview.get("model_owner")} if overview.get("model_owner") else None,
        "author": overview.get("model_creator"),
        "risk_tier": _risk_tier(uses, warnings),
        "intended_use": {
            "purpose": uses.get("purpose_of_model"),
            "primary_uses": [uses["intended_uses"]] if uses.get("intended_uses") else None,
        },
        "limitations": [caveats] if isinstance(caveats, str) and caveats else None,
        "training_data": _training_data(data.get("training_details") or {}),
        "evaluation_data": evals,
        "metrics": metrics,
        "fairness": fairness,
        "extensions": {
            "sagemaker": {
                k: data[k] for k in ("business_details", "additional_information") if k in data
            }
        },
    }
    return card, warnings
