"""MLflow model version metadata -> canonical card.

Input is the model version as MLflow returns it: the REST shape
``{"model_version": {...}}`` (tags as ``[{key, value}]``) or the plain dict of
``ModelVersion`` (tags as a mapping), from a JSON or YAML file. ``name``,
``version``, ``source``, ``description``, ``user_id`` and
``creation_timestamp`` fill the model identity; ``run_id``, ``current_stage``,
``status`` and ``aliases`` are kept under ``extensions.mlflow``.

Card fields travel as tags named ``card.<path>``: ``card.risk_tier=high``,
``card.author=alice``, ``card.model.artifact_digest=sha256:...``,
``card.retention.audit_log_days=365``. A value that parses as JSON (number,
boolean, list, object) is used as that JSON value; anything else as a string.

Reference: MLflow REST API ``ModelVersion`` and ``ModelVersionTag``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from policyengine.cards._build import fail
from policyengine.cards.validate import parse_document
from policyengine.resources import schema

__all__ = ["SOURCE_PATHS", "convert"]

SOURCE_PATHS: dict[str, str] = {
    "model.name": "name",
    "model.version": "version",
    "model.artifact_uri": "source",
    "model.description": "description",
    "model.created": "creation_timestamp",
    "author": "user_id (or tag card.author)",
    "extensions.mlflow": "run_id, current_stage, status, aliases, run_link, other tags",
    "*": "tag card.<path>",
}
"""Canonical field -> where in the source it is read (for the import report)."""

_TAG_PREFIX = "card."


def _tags(raw: Any, source: str) -> dict[str, str]:
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    if not isinstance(raw, list):
        raise fail(
            source,
            "tags",
            f"expected a list of {{key, value}} or a mapping, got {type(raw).__name__}",
        )
    out = {}
    for i, tag in enumerate(raw):
        if not isinstance(tag, dict) or "key" not in tag:
            raise fail(source, f"tags[{i}]", f"expected {{key, value}}, got {tag!r}")
        out[str(tag["key"])] = str(tag.get("value", ""))
    return out


def _value(text: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if not isinstance(value, str) else text


def _top_level_fields() -> frozenset[str]:
    return frozenset(schema("model-card")["properties"]) - {"schema_version"}


def _apply_tags(card: dict[str, Any], tags: dict[str, str], warnings: list[str]) -> None:
    """Set ``card.<path>`` tags into the card; other card.* tags are reported."""
    known = _top_level_fields()
    for key in sorted(k for k in tags if k.startswith(_TAG_PREFIX)):
        path = key[len(_TAG_PREFIX) :].split(".")
        if path[0] not in known or not all(path):
            warnings.append(f"tag {key} names no card field; ignored")
            continue
        node = card
        for part in path[:-1]:
            node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
        node[path[-1]] = _value(tags[key])


def _created(millis: Any) -> str | None:
    if isinstance(millis, int | float) and not isinstance(millis, bool):
        return dt.datetime.fromtimestamp(millis / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return None


def convert(text: str, source: str) -> tuple[dict[str, Any], list[str]]:
    """Convert MLflow model version metadata into a partial canonical card.

    Raises:
        CardImportError: when the input is not a model version (no name, bad tags).
    """
    data = parse_document(text, source=source)
    if isinstance(data, dict) and isinstance(data.get("model_version"), dict):
        data = data["model_version"]
    if not isinstance(data, dict):
        raise fail(
            source, "$", f"expected an MLflow model version object, got {type(data).__name__}"
        )
    if not isinstance(data.get("name"), str) or not data["name"]:
        raise fail(source, "name", "required: an MLflow model version has a registered model name")
    tags = _tags(data.get("tags"), source)
    warnings: list[str] = []
    card: dict[str, Any] = {
        "model": {
            "name": data["name"],
            "version": str(data["version"]) if data.get("version") is not None else None,
            "artifact_uri": data.get("source"),
            "description": data.get("description"),
            "created": _created(data.get("creation_timestamp")),
        },
        "author": data.get("user_id") or None,
        "extensions": {
            "mlflow": {
                k: data[k]
                for k in ("run_id", "current_stage", "status", "aliases", "run_link")
                if data.get(k) not in (None, "", [])
            }
        },
    }
    _apply_tags(card, tags, warnings)
    other = {k: v for k, v in tags.items() if not k.startswith(_TAG_PREFIX)}
    if other:
        card["extensions"]["mlflow"]["tags"] = other
    return card, warnings
