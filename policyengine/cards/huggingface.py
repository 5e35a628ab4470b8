"""Hugging Face model cards (README.md: YAML front matter + markdown) -> canonical card.

Reads the metadata block the Hub documents (``license``, ``datasets``,
``base_model``, ``library_name``, ``pipeline_tag``, ``model-index`` and the
legacy ``model_index`` with a single ``metric``) and the markdown sections
the Hub template uses (intended uses, out-of-scope use, limitations). It
does not fetch anything from the Hub. A malformed block (invalid YAML,
``model-index`` that is not a list, a result without metrics, a metric value
that is not a number, template placeholders left in) is a
:class:`~policyengine.cards.CardImportError` naming the file and the key.

Reference: huggingface/hub-docs ``modelcard.md`` (metadata spec) and
``huggingface_hub`` ``ModelCardData`` / ``EvalResult``.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from policyengine.cards._build import fail, number
from policyengine.cards.validate import _PlainLoader
from policyengine.inputs import DocumentError

__all__ = ["SOURCE_PATHS", "convert"]

SOURCE_PATHS: dict[str, str] = {
    "model.name": "model-index[].name",
    "model.task": "pipeline_tag (else model-index[].results[].task.type)",
    "model.framework": "library_name",
    "model.license": "license",
    "model.base_model": "base_model",
    "training_data": "datasets",
    "evaluation_data": "model-index[].results[].dataset",
    "metrics": "model-index[].results[].metrics",
    "intended_use.purpose": "markdown section 'Intended uses' / 'Direct use' / 'Uses'",
    "intended_use.out_of_scope": "markdown section 'Out-of-scope use'",
    "limitations": "markdown section 'Limitations' / 'Bias, risks'",
    "extensions.huggingface": "front matter (other keys)",
}
"""Canonical field -> where in the source it is read (for the import report)."""

_FENCE = re.compile(r"^---[ \t]*$", re.MULTILINE)
_LANGUAGE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
# Text the Hub's templates ship and authors forget to replace.
_PLACEHOLDERS = frozenset(
    {"url to a thumbnail used in social sharing", "wip", "todo", "more information needed"}
)
_SKIP_META = frozenset({"model-index", "model_index", "widget", "inference", "train-eval-index"})


def _split(text: str, source: str) -> tuple[dict[str, Any], str]:
    """Front matter as a mapping (empty when absent) and the markdown body."""
    text = text.replace("\r\n", "\n").lstrip("\ufeff")
    if not text.startswith("---"):
        return {}, text
    fences = list(_FENCE.finditer(text))
    if len(fences) < 2 or fences[0].start() != 0:
        raise fail(source, "front matter", "opening '---' has no closing '---' line")
    block, body = text[fences[0].end() : fences[1].start()], text[fences[1].end() :]
    try:
        meta = yaml.load(block, Loader=_PlainLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"front matter line {mark.line + 2}" if mark else "front matter"
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise fail(source, where, f"invalid YAML: {problem}") from exc
    except DocumentError as exc:  # a limit or check of the bounded reader
        where = f"front matter line {exc.line + 1}" if exc.line else "front matter"
        raise fail(source, where, exc.problem) from exc
    if meta is None:
        return {}, body
    if not isinstance(meta, dict):
        raise fail(source, "front matter", f"expected a YAML mapping, got {type(meta).__name__}")
    return meta, body


def _check_placeholders(meta: dict[str, Any], source: str) -> None:
    for key, value in meta.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, str) and item.strip().lower() in _PLACEHOLDERS:
                raise fail(
                    source, key, f"template placeholder {item!r} left in; replace or remove it"
                )


def _languages(meta: dict[str, Any], source: str) -> list[str]:
    raw = meta.get("language")
    items = raw if isinstance(raw, list) else [] if raw is None else [raw]
    for i, item in enumerate(items):
        if not isinstance(item, str):
            hint = (
                " (YAML 1.1 reads no/yes/on/off as booleans: quote the code)"
                if isinstance(item, bool)
                else ""
            )
            raise fail(
                source, f"language[{i}]", f"expected a language code string, got {item!r}{hint}"
            )
        if not _LANGUAGE.match(item):
            raise fail(
                source, f"language[{i}]", f"expected a BCP-47 code such as 'zh-CN', got {item!r}"
            )
    return items


def _datasets(meta: dict[str, Any], source: str) -> list[dict[str, Any]]:
    raw = meta.get("datasets") or []
    if not isinstance(raw, list):
        raw = [raw]
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, str) or not item.strip():
            raise fail(source, f"datasets[{i}]", f"expected a dataset id string, got {item!r}")
        out.append({"name": item, "source": f"huggingface dataset {item}"})
    return out


def _metric(raw: Any, where: str, source: str, dataset: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise fail(source, where, f"expected a mapping with type and value, got {raw!r}")
    value = number(raw.get("value"))
    if value is None:
        raise fail(source, f"{where}.value", f"expected a number, got {raw.get('value')!r}")
    subset = dataset.get("config") or dataset.get("args")
    return {
        "name": str(raw.get("type") or raw.get("name") or "unnamed"),
        "value": value,
        "dataset": dataset.get("name") or dataset.get("type"),
        "slice": subset if isinstance(subset, str) else None,
        "split": dataset.get("split") if isinstance(dataset.get("split"), str) else None,
    }


def _result_metrics(result: Any, where: str, source: str) -> list[dict[str, Any]]:
    if not isinstance(result, dict):
        raise fail(
            source, where, f"expected a mapping with task, dataset and metrics, got {result!r}"
        )
    found = result.get("dataset")
    dataset: dict[str, Any] = found if isinstance(found, dict) else {}
    raw = result.get("metrics", result.get("metric"))
    if isinstance(raw, dict):  # legacy Trainer format: one `metric` mapping
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise fail(source, f"{where}.metrics", "required: a result needs at least one metric")
    return [_metric(m, f"{where}.metrics[{i}]", source, dataset) for i, m in enumerate(raw)]


def _model_index(
    meta: dict[str, Any], source: str
) -> tuple[str | None, str | None, list[dict[str, Any]]]:
    """Model name, task type and metrics from ``model-index`` (or legacy ``model_index``)."""
    key = "model-index" if "model-index" in meta else "model_index"
    index = meta.get(key)
    if index is None:
        return None, None, []
    if not isinstance(index, list):
        raise fail(source, key, f"expected a list of models, got a {type(index).__name__}")
    name, task, metrics = None, None, []
    for i, entry in enumerate(index):
        if not isinstance(entry, dict):
            raise fail(source, f"{key}[{i}]", f"expected a mapping, got {entry!r}")
        name = name or entry.get("name")
        for j, result in enumerate(entry.get("results") or []):
            metrics += _result_metrics(result, f"{key}[{i}].results[{j}]", source)
            if isinstance(result.get("task"), dict):
                task = task or result["task"].get("type")
    return (str(name) if name else None), task, metrics


def _sections(body: str) -> dict[str, str]:
    """Markdown section text by lower-case heading (placeholder text dropped)."""
    out: dict[str, str] = {}
    for match in re.finditer(r"^#{1,6}\s*(.+?)\s*\n(.*?)(?=^#{1,6}\s|\Z)", body, re.M | re.S):
        text = re.sub(r"<!--.*?-->", "", match.group(2), flags=re.S).strip()
        if text and text.lower().strip(". ") != "more information needed":
            out[match.group(1).strip().lower()] = text
    return out


def _pick(sections: dict[str, str], *words: str) -> str | None:
    for heading, text in sections.items():
        if all(w in heading for w in words):
            return text
    return None


def _body_fields(body: str) -> dict[str, Any]:
    sections = _sections(body)
    out: dict[str, Any] = {}
    purpose = (
        _pick(sections, "intended") or _pick(sections, "direct use") or _pick(sections, "uses")
    )
    out_of_scope = _pick(sections, "out-of-scope") or _pick(sections, "out of scope")
    limits = _pick(sections, "limitation") or _pick(sections, "bias, risks")
    out["intended_use"] = {
        "purpose": purpose,
        "out_of_scope": [out_of_scope] if out_of_scope else None,
    }
    out["limitations"] = [limits] if limits else None
    return out


def convert(text: str, source: str) -> tuple[dict[str, Any], list[str]]:
    """Convert a Hugging Face README into a partial canonical card.

    Raises:
        CardImportError: one line naming the file and the key that is malformed.
    """
    meta, body = _split(text, source)
    _check_placeholders(meta, source)
    languages = _languages(meta, source)
    name, task, metrics = _model_index(meta, source)
    warnings: list[str] = []
    license_ = meta.get("license")
    if isinstance(license_, list):
        warnings.append(f"license is a list {license_!r}; kept {' OR '.join(map(str, license_))!r}")
        license_ = " OR ".join(map(str, license_))
    kept = {k: v for k, v in meta.items() if k not in _SKIP_META}
    card: dict[str, Any] = {
        "model": {
            "name": name,
            "task": meta.get("pipeline_tag") or task,
            "framework": meta.get("library_name"),
            "license": str(license_) if license_ is not None else None,
            "base_model": meta.get("base_model")
            if isinstance(meta.get("base_model"), str)
            else None,
        },
        "training_data": _datasets(meta, source),
        "evaluation_data": [
            {"name": n} for n in dict.fromkeys(m["dataset"] for m in metrics if m["dataset"])
        ],
        "metrics": metrics,
        **_body_fields(body),
        "extensions": {"huggingface": {**kept, "language": languages} if kept else None},
    }
    return card, warnings
