"""Tell which card format a file holds, from its content (``card import --format auto``).

Owns the choice only: the converters (``huggingface``, ``mct``, ``sagemaker``,
``mlflow``) do the reading. The checks look at the structure every format is
documented to have, never at the file name alone:

- Hugging Face: a README whose YAML front matter opens with ``---``, or any
  Markdown text (a card without metadata);
- Model Card Toolkit: a JSON object with ``model_details``, or protobuf text
  (``model_details {`` / ``model_details: {``);
- SageMaker: model card content (one of its six sections), a DescribeModelCard
  response (``ModelCardContent``), or an ``evaluation_details`` fragment
  (``metric_groups``);
- MLflow: a model version (``{"model_version": {...}}`` or an object with
  ``name`` and one of ``version``, ``current_stage``, ``run_id``, ``source``).

Evidence (Evidently, fairlearn, Clarify, Model Monitor reports) and JSON
Schemas are recognised too, so that they are refused with what to run
instead, rather than misread as a card.
"""

from __future__ import annotations

import json
import re
from typing import Any

from policyengine.cards._build import fail
from policyengine.cards.sagemaker import SECTIONS

__all__ = ["detect_format", "is_pbtxt"]

_SAGEMAKER_KEYS = frozenset({*SECTIONS, "ModelCardContent", "metric_groups"})
# JSON Schema documents (and CloudFormation resource schemas, which add typeName).
_SCHEMA_KEYS = frozenset({"$schema", "$id", "$defs", "definitions", "typeName"})
_MLFLOW_KEYS = frozenset({"version", "current_stage", "run_id", "source", "creation_timestamp"})
_PBTXT = re.compile(r"^\s*(#.*\n\s*)*model_details\s*:?\s*\{", re.M)
_MARKDOWN = re.compile(r"^(#{1,6}\s|---\s*$)", re.M)


def is_pbtxt(text: str) -> bool:
    """True for Model Card Toolkit protobuf text (a ``model_details`` message block)."""
    return not text.lstrip("\ufeff \t\r\n").startswith(("{", "[")) and bool(_PBTXT.search(text))


def _json(text: str, source: str) -> Any:
    """The parsed JSON when the text is JSON (None when it does not start like JSON)."""
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped.startswith(("{", "[")):
        return None
    try:
        return json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise fail(
            source, f"line {exc.lineno} column {exc.colno}", f"invalid JSON: {exc.msg}"
        ) from exc


def _evidence_kind(data: dict[str, Any]) -> str | None:
    """The evidence format a JSON object is, if it is evidence rather than a card."""
    from policyengine.evidence.detect import evidence_format

    try:
        return evidence_format(data)
    except ValueError:
        return None


def _json_format(data: Any, source: str) -> str:
    if not isinstance(data, dict):
        raise fail(source, "$", f"expected a JSON object holding a card, got {type(data).__name__}")
    if "properties" in data and _SCHEMA_KEYS & set(data):
        raise fail(source, "$", "a JSON Schema, not a card: nothing to import")
    if isinstance(data.get("model_details"), dict):
        return "mct"
    if _SAGEMAKER_KEYS & set(data):
        return "sagemaker"
    if isinstance(data.get("model_version"), dict):
        return "mlflow"
    if isinstance(data.get("name"), str) and _MLFLOW_KEYS & set(data):
        return "mlflow"
    if "explanations" in data:
        raise fail(source, "$", "a SageMaker Clarify explainability report, not a card; "
                   "policies read no explainability evidence: nothing to import")
    evidence = _evidence_kind(data)
    if evidence:
        raise fail(
            source,
            "$",
            f"{evidence} evidence, not a card: record it with "
            f"`policyengine evidence import {source} --model M --version V`",
        )
    keys = ", ".join(sorted(map(str, data))[:5]) or "none"
    raise fail(
        source,
        "$",
        "no card format recognised (top-level keys: "
        f"{keys}); expected Hugging Face front matter, MCT model_details, SageMaker "
        "model card content or an MLflow model version; or pass --format",
    )


def detect_format(text: str, source: str) -> str:
    """The card format of ``text``: huggingface, mct, sagemaker or mlflow.

    Raises:
        CardImportError: evidence, a schema or no known card format; one line
            saying what the file is and what to do.
    """
    data = _json(text, source)
    if data is not None:
        return _json_format(data, source)
    if is_pbtxt(text):
        return "mct"
    stripped = text.lstrip("\ufeff")
    yaml_file = source.endswith((".yaml", ".yml"))
    if not yaml_file and (
        stripped.startswith("---") or _MARKDOWN.search(stripped) or source.endswith(".md")
    ):
        return "huggingface"
    from policyengine.cards.validate import parse_document
    from policyengine.errors import InputError

    try:
        parsed = parse_document(text, source=source)
    except InputError:
        parsed = None
    if isinstance(parsed, dict):
        return _json_format(parsed, source)
    if isinstance(parsed, list):
        raise fail(source, "$", "a YAML list, not a card (a Hugging Face eval_results file?): "
                   "nothing to import")
    raise fail(
        source,
        "$",
        "no card format recognised: not JSON, YAML, Markdown or protobuf text; pass --format",
    )
