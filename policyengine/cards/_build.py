"""Shared steps of every importer: overrides, missing-field report, helpers.

Internal to ``policyengine.cards``. An importer converts what its source has
into a partial canonical card; this module applies the user's overrides
(name, version, digest, risk tier, author), fills ``schema_version``, records
the provenance in the card's ``source`` block and lists the
canonical fields still missing, so the user knows what to add before the
card can pass the schema and the built-in packs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from policyengine.cards._errors import CardImportError
from policyengine.cards.validate import card_issues
from policyengine.inputs import DocumentError, parse_json

SCHEMA_VERSION = "1.0"

_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/@:-]*$")
_NUMBER = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")

# Fields the schema requires, then the fields the built-in packs read: an
# imported card lacking them is reported, not rejected.
_WANTED: tuple[str, ...] = (
    "model.name",
    "model.version",
    "model.artifact_digest",
    "risk_tier",
    "author",
    "owner.team",
    "owner.contact",
    "intended_use.purpose",
    "intended_use.out_of_scope",
    "limitations",
    "training_data",
    "evaluation_data",
    "metrics",
    "fairness",
    "slo",
    "retention",
    "human_oversight",
    "documentation",
)


@dataclass
class ImportResult:
    """A converted card and what the conversion could not fill."""

    card: dict[str, Any]
    """The canonical card (may still lack required fields; see ``missing``)."""
    source_format: str
    """huggingface, mct, sagemaker or mlflow."""
    missing: list[str] = field(default_factory=list)
    """Canonical field paths with no value, required ones first."""
    warnings: list[str] = field(default_factory=list)
    """Source values that were dropped or changed, one line each."""
    report: dict[str, Any] = field(default_factory=dict)
    """The import report: mapped fields with their source paths, what is missing for
    the schema and for the built-in packs, what could not be parsed."""

    @property
    def valid(self) -> bool:
        """True when the card conforms to the model-card schema."""
        return not card_issues(self.card)


def fail(source: str, where: str, what: str) -> CardImportError:
    """Build the one-line error for a malformed source: ``file: where: what``."""
    return CardImportError(f"{source}: {where}: {what}")


def load_json(text: str, source: str) -> Any:
    """Parse JSON text with the bounded reader (depth, numbers, duplicate keys).

    A syntax error is one line naming the file, line and column; the reader's
    other refusals (a limit) keep their own one line.
    """
    try:
        return parse_json(text, source)
    except DocumentError as exc:
        if exc.kind != "syntax":
            raise
        raise fail(source, f"line {exc.line} column {exc.col}", exc.problem) from exc


def slug(name: str) -> str:
    """A model name the schema accepts (lower-case, runs of other characters -> '-')."""
    if _NAME_OK.match(name):
        return name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name.strip()).strip("-._").lower() or "unnamed"


def number(value: Any) -> float | int | None:
    """A JSON number, or a string holding only a number; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and _NUMBER.match(value):
        text = value.strip()
        return int(text) if re.fullmatch(r"[-+]?\d+", text) else float(text)
    return None


def texts(items: Any) -> list[str]:
    """Non-empty strings from a list of strings or of ``{description|name: ...}`` objects."""
    out: list[str] = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            item = item.get("description") or item.get("name")
        if isinstance(item, str) and item.strip():
            out.append(item.strip())
    return out


def prune(value: Any) -> Any:
    """Drop None, empty strings, empty lists and empty objects, recursively."""
    if isinstance(value, dict):
        pruned = {k: prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        return [v for v in (prune(v) for v in value) if v not in (None, "", [], {})]
    return value


def finish(
    card: dict[str, Any],
    origin: dict[str, str],
    overrides: dict[str, str | None],
    warnings: list[str],
    sources: dict[str, str],
) -> ImportResult:
    """Apply overrides, record the source block, report missing fields and the mapping."""
    from policyengine.cards.report import build_report, has_field

    model = card.setdefault("model", {})
    for key in ("name", "version"):
        if overrides.get(key):
            model[key] = overrides[key]
    if overrides.get("digest"):
        model["artifact_digest"] = overrides["digest"]
    for key in ("risk_tier", "author"):
        if overrides.get(key):
            card[key] = overrides[key]
    if isinstance(model.get("name"), str) and slug(model["name"]) != model["name"]:
        warnings.append(f"model.name {model['name']!r} changed to {slug(model['name'])!r}")
        model["name"] = slug(model["name"])
    out = {"schema_version": SCHEMA_VERSION, **prune(card), "source": dict(origin)}
    missing = [path for path in _WANTED if not has_field(out, path)]
    issues = [f"{i.path}: {i.message}" for i in card_issues(out)]
    given = [k for k, v in overrides.items() if v]
    report = build_report(
        out, source=origin, sources=sources, overrides=given, warnings=warnings,
        schema_issues=issues,
    )
    return ImportResult(
        card=out, source_format=origin["format"], missing=missing, warnings=warnings,
        report=report,
    )
