"""Google Model Card Toolkit JSON (schema v0.0.1 and v0.0.2) -> canonical card.

Maps ``model_details`` (name, overview, version, owners, license/licenses),
``model_parameters`` (architecture, data as a ``{train, eval}`` object in
v0.0.1 or a list in v0.0.2), ``quantitative_analysis.performance_metrics``
(numbers, or numeric strings as v0.0.2 writes them) and ``considerations``
(users, use cases, limitations, ethical considerations). Graphics are not
carried over. The protobuf text format (``.pbtxt``) is read through protobuf's
``text_format`` with MCT's own message types (``_mct_proto.py``).

Reference: tensorflow/model-card-toolkit ``schema/v0.0.2/model_card.schema.json``.
"""

from __future__ import annotations

from typing import Any

from policyengine.cards._build import fail, load_json, number, texts

__all__ = ["SOURCE_PATHS", "convert"]

SOURCE_PATHS: dict[str, str] = {
    "model.name": "model_details.name",
    "model.version": "model_details.version.name",
    "model.description": "model_details.overview",
    "model.license": "model_details.license / licenses[].identifier",
    "model.artifact_uri": "model_details.path",
    "owner.team": "model_details.owners[0].name",
    "owner.contact": "model_details.owners[0].contact",
    "intended_use.purpose": "considerations.use_cases",
    "intended_use.primary_uses": "considerations.use_cases",
    "intended_use.users": "considerations.users",
    "limitations": "considerations.limitations",
    "training_data": "model_parameters.data (train)",
    "evaluation_data": "model_parameters.data (eval, validation, test)",
    "metrics": "quantitative_analysis.performance_metrics",
    "documentation.architecture": "model_parameters.model_architecture",
    "extensions.mct": "schema_version, considerations.ethical_considerations, tradeoffs",
}
"""Canonical field -> where in the source it is read (for the import report)."""


def _load(text: str, source: str) -> dict[str, Any]:
    from policyengine.cards.detect import is_pbtxt

    if is_pbtxt(text):
        from policyengine.cards._mct_proto import pbtxt_to_dict

        data: Any = pbtxt_to_dict(text, source)
    else:
        data = load_json(text, source)
    if not isinstance(data, dict):
        raise fail(source, "$", f"expected a JSON object, got {type(data).__name__}")
    if not isinstance(data.get("model_details"), dict):
        raise fail(source, "$.model_details", "required: not a Model Card Toolkit card")
    return data


def _section(data: dict[str, Any], key: str, source: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise fail(source, f"$.{key}", f"expected an object, got {type(value).__name__}")
    return value


def _datasets(params: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Training and evaluation datasets from v0.0.1 ``{train, eval}`` or v0.0.2 ``[...]``."""
    data = params.get("data")
    if isinstance(data, dict):  # v0.0.1
        train = [{"name": d.get("name") or "train", **_flags(d)} for d in [data.get("train")] if d]
        evals = [{"name": d.get("name") or "eval", **_flags(d)} for d in [data.get("eval")] if d]
        return train, evals
    train, evals = [], []
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict):
            continue
        entry = {
            "name": item.get("name") or "unnamed",
            "uri": item.get("link") or item.get("path"),
            **_flags(item),
        }
        is_eval = any(w in str(item.get("name", "")).lower() for w in ("eval", "valid", "test"))
        (evals if is_eval else train).append(entry)
    return train, evals


def _flags(item: dict[str, Any]) -> dict[str, Any]:
    """MCT ``sensitive`` (bool in v0.0.1, ``{sensitive_data: [...]}`` in v0.0.2) -> PII flags."""
    sens = item.get("sensitive")
    if isinstance(sens, bool):
        return {"contains_pii": sens}
    if isinstance(sens, dict) and isinstance(sens.get("sensitive_data"), list):
        cats = [s for s in sens["sensitive_data"] if isinstance(s, str) and s]
        return {"contains_pii": bool(cats), "pii_categories": cats}
    return {}


def _metrics(analysis: dict[str, Any], warnings: list[str]) -> list[dict[str, Any]]:
    out = []
    for i, m in enumerate(analysis.get("performance_metrics") or []):
        value = number(m.get("value")) if isinstance(m, dict) else None
        if value is None:
            warnings.append(
                f"quantitative_analysis.performance_metrics[{i}].value is not a number; dropped"
            )
            continue
        ci = m.get("confidence_interval") if isinstance(m.get("confidence_interval"), dict) else {}
        out.append(
            {
                "name": str(m.get("type") or m.get("name") or "unnamed"),
                "value": value,
                "slice": m.get("slice") if isinstance(m.get("slice"), str) else None,
                "threshold": number(m.get("threshold")),
                "ci_lower": number(ci.get("lower_bound")),
                "ci_upper": number(ci.get("upper_bound")),
            }
        )
    return out


def _license(details: dict[str, Any]) -> str | None:
    single = details.get("license")
    if isinstance(single, str):
        return single
    ids = [
        lic.get("identifier") or lic.get("custom_text")
        for lic in details.get("licenses") or []
        if isinstance(lic, dict)
    ]
    return " OR ".join(i for i in ids if isinstance(i, str)) or None


def _version(details: dict[str, Any], warnings: list[str]) -> str | None:
    version = details.get("version")
    if isinstance(version, str):
        return version
    if not isinstance(version, dict):
        return None
    unknown = sorted(set(version) - {"name", "date", "diff"})
    if unknown:
        warnings.append(
            f"model_details.version has unknown key(s) {', '.join(unknown)}"
            " (typo for date?); ignored"
        )
    return str(version["name"]) if version.get("name") is not None else None


def _owner(details: dict[str, Any]) -> dict[str, Any] | None:
    """The first owner as the accountable team (MCT owners are people or teams)."""
    owners = [o for o in details.get("owners") or [] if isinstance(o, dict)]
    return {"team": owners[0].get("name"), "contact": owners[0].get("contact")} if owners else None


def _mct_extras(data: dict[str, Any], considerations: dict[str, Any]) -> dict[str, Any]:
    """Considerations the canonical card has no field for, kept under extensions.mct."""
    ethics = considerations.get("ethical_considerations") or []
    return {
        "schema_version": data.get("schema_version"),
        "ethical_considerations": [
            e["name"] for e in ethics if isinstance(e, dict) and isinstance(e.get("name"), str)
        ],
        "tradeoffs": texts(considerations.get("tradeoffs")),
    }


def convert(text: str, source: str) -> tuple[dict[str, Any], list[str]]:
    """Convert Model Card Toolkit JSON into a partial canonical card.

    Raises:
        CardImportError: when the file is not JSON or not an MCT card.
    """
    data = _load(text, source)
    details = _section(data, "model_details", source)
    params = _section(data, "model_parameters", source)
    considerations = _section(data, "considerations", source)
    warnings: list[str] = []
    train, evals = _datasets(params)
    card: dict[str, Any] = {
        "model": {
            "name": details.get("name"),
            "version": _version(details, warnings),
            "description": details.get("overview"),
            "license": _license(details),
            "artifact_uri": details.get("path"),
        },
        "owner": _owner(details),
        "intended_use": {
            "purpose": " ".join(texts(considerations.get("use_cases"))) or None,
            "primary_uses": texts(considerations.get("use_cases")),
            "users": texts(considerations.get("users")),
        },
        "limitations": texts(considerations.get("limitations")),
        "training_data": train,
        "evaluation_data": evals,
        "metrics": _metrics(_section(data, "quantitative_analysis", source), warnings),
        "documentation": {"architecture": params.get("model_architecture")},
        "extensions": {"mct": _mct_extras(data, considerations)},
    }
    return card, warnings
