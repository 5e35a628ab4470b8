"""Schema validation of model cards and lifecycle events, with JSON paths.

This module owns checking a card or event against
``schemas/model-card.schema.json`` and ``schemas/lifecycle-event.schema.json``
with the prebuilt Draft 2020-12 validators of ``policyengine.resources``
(built once per process, about 0.7 ms per card). Each problem is reported as a JSON path
(``$.metrics[0].value``) and a one-line message. Completeness for a technical
file is not checked here: that is the documentation policy pack's job, so a
card can be valid and still be denied for a missing field. Reading a card
file is :mod:`policyengine.inputs`' job (``load_document``, ``parse_document``
and ``read_text`` are re-exported here).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from policyengine.errors import CardValidationError, SchemaError
from policyengine.inputs import PyLoader as _PlainLoader  # noqa: F401  # the HF importer uses it
from policyengine.inputs import json_path, load_document, parse_document, read_text
from policyengine.resources import fast_validator, is_valid, validator

if TYPE_CHECKING:  # jsonschema loads only when a card is invalid (start-up time)
    from jsonschema.exceptions import ValidationError

__all__ = [
    "CardIssue",
    "card_issues",
    "event_issues",
    "load_document",
    "parse_document",
    "prepare_validators",
    "read_text",
    "validate_card",
    "validate_event",
]

_CARD_SCHEMA = "model-card"
_EVENT_SCHEMA = "lifecycle-event"


CardIssue = SchemaError
"""One schema violation: ``path`` (JSON path) and ``message``."""


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return {int: "integer", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


def _issues_of(error: ValidationError) -> list[CardIssue]:
    """One issue per missing required field; otherwise the single issue."""
    if error.validator == "required" and isinstance(error.instance, dict):
        path = json_path(tuple(error.absolute_path))
        missing = [k for k in error.validator_value if k not in error.instance]
        return [CardIssue(f"{path}.{k}", "required field is missing") for k in missing]
    return [_issue(error)]


def _issue(error: ValidationError) -> CardIssue:
    """Turn one jsonschema error into a path and an "expected X, got Y" message."""
    path = json_path(tuple(error.absolute_path))
    kind, expected, value = error.validator, error.validator_value, error.instance
    if kind == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        extra = sorted(set(value) - set(known)) if isinstance(value, dict) else []
        name = extra[0] if extra else "?"
        return CardIssue(f"{path}.{name}", f"unknown field; expected one of {', '.join(known)}")
    if kind == "type":
        got = "null" if value is None else f"{_type_name(value)} {_short(value)}"
        return CardIssue(path, f"expected {expected}, got {got}")
    if kind == "format":
        return CardIssue(path, f"expected a {expected} string, got {_short(value)}")
    if kind == "pattern":
        return CardIssue(path, f"expected a string matching {expected}, got {_short(value)}")
    if kind == "enum":
        options = ", ".join(str(o) for o in expected)
        return CardIssue(path, f"expected one of {options}, got {_short(value)}")
    if kind == "minLength":
        return CardIssue(path, f"expected at least {expected} character(s), got {_short(value)}")
    if kind in ("minimum", "maximum"):
        bound = ">=" if kind == "minimum" else "<="
        return CardIssue(path, f"expected a number {bound} {expected}, got {_short(value)}")
    return CardIssue(path, error.message)


def _issues(name: str, data: Any) -> list[CardIssue]:
    if is_valid(name, data):  # jsonschema-rs; the reference words the errors
        return []
    errors = list(validator(name).iter_errors(data))
    # A field with both a format and a pattern (event.time) says it once, as the format.
    formats = {tuple(e.absolute_path) for e in errors if e.validator == "format"}
    found = [i for e in errors
             if not (e.validator == "pattern" and tuple(e.absolute_path) in formats)
             for i in _issues_of(e)]
    return sorted(dict.fromkeys(found), key=lambda i: i.path)


def prepare_validators() -> None:
    """Build the card and lifecycle-event validators now (each is built once per process).

    A service worker calls this before its first request, which would
    otherwise pay for loading the schemas and building the validators.
    """
    for name in (_CARD_SCHEMA, _EVENT_SCHEMA):
        fast_validator(name)


def card_issues(card: Any) -> list[CardIssue]:
    """Every schema violation in ``card`` (empty when valid); never raises on bad data."""
    return _issues(_CARD_SCHEMA, card)


def event_issues(event: Any) -> list[CardIssue]:
    """Every schema violation in a lifecycle event (empty when valid)."""
    return _issues(_EVENT_SCHEMA, event)


def validate_card(card: Any, *, source: str = "card") -> None:
    """Check a card against the model-card schema.

    Args:
        card: the card as plain data (dict from JSON or YAML).
        source: where the card came from, used in the error message.

    Raises:
        CardValidationError: with every issue, each a JSON path and a message.
    """
    issues = card_issues(card)
    if issues:
        raise CardValidationError(source, issues)


def validate_event(event: Any, *, source: str = "event") -> None:
    """Check a lifecycle event against its schema.

    Raises:
        CardValidationError: with every issue found.
    """
    issues = event_issues(event)
    if issues:
        raise CardValidationError(source, issues)
