"""The import report: what a card import mapped, what it lacks, what it dropped.

Owns the report beside an imported card (``card import --report``): each
canonical field that was filled and the source path it came from; the fields
the card schema requires that are still missing; the card fields the
built-in policy packs (``policies/``) read that the card does not have,
with the rules that read them; and what the source held that could not be
parsed or carried over. The packs' needs are read from the rule expressions
themselves (every ``card.<path>`` they mention), so a new rule is reported
without a table to update here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["build_report", "pack_needs"]

_CARD_PATH = re.compile(r"\bcard((?:\.[a-z_][a-z0-9_]*)+)")
_METHODS = frozenset({"filter", "map", "all", "exists", "exists_one", "size", "startsWith",
                      "endsWith", "contains", "matches"})
_REQUIRED = ("model.name", "model.version", "model.artifact_digest", "risk_tier")


def has_field(card: Mapping[str, Any], dotted: str) -> bool:
    """True when the dotted path holds a value (not None, empty string, list or object)."""
    node: Any = card
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or node.get(part) in (None, "", [], {}):
            return False
        node = node[part]
    return True


def _paths(expr: str) -> set[str]:
    """Card field paths an expression reads (``card.fairness.filter(...)`` -> fairness)."""
    out = set()
    for match in _CARD_PATH.finditer(expr):
        parts = match.group(1).strip(".").split(".")
        keep = []
        for part in parts:
            if part in _METHODS:
                break
            keep.append(part)
        if keep:
            out.add(".".join(keep))
    return out


@functools.cache
def pack_needs() -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(card path, ``policy/rule``, risk tiers it applies to) for every built-in rule."""
    from policyengine.policy import load_policies
    from policyengine.resources import policies_dir

    found = []
    for doc in load_policies([policies_dir()]):
        data = doc.data if isinstance(doc.data, dict) else {}
        spec = data.get("spec") or {}
        tiers = tuple((spec.get("appliesTo") or {}).get("riskTiers") or ())
        for rule in spec.get("rules") or []:
            for path in sorted(_paths(str(rule.get("expr", "")))):
                found.append((path, f"{doc.name}/{rule.get('id')}", tiers))
    return tuple(found)


def _missing_for_policies(card: Mapping[str, Any]) -> list[dict[str, Any]]:
    tier = card.get("risk_tier")
    rules: dict[str, list[str]] = {}
    for path, rule, tiers in pack_needs():
        if tier and tiers and tier not in tiers:
            continue
        if path not in _REQUIRED and not has_field(card, path):
            rules.setdefault(path, []).append(rule)
    return [{"field": f"card.{path}", "rules": sorted(set(r))} for path, r in sorted(rules.items())]


def _mapped(
    card: Mapping[str, Any], sources: Mapping[str, str], overrides: Iterable[str]
) -> list[dict[str, str]]:
    flags = {"name": "model.name", "version": "model.version", "digest": "model.artifact_digest",
             "risk_tier": "risk_tier", "author": "author"}
    given = {flags[k]: f"--{k.replace('_', '-')}" for k in overrides if k in flags}
    fields = set(sources) - {"*"} | set(given)
    if "*" in sources:  # a converter that can fill any field (MLflow card.<path> tags)
        fields |= {k for k in card if k not in ("schema_version", "source", "extensions")}
    out = []
    for field in sorted(fields):
        if has_field(card, field):
            origin = given.get(field) or sources.get(field) or sources["*"].replace("<path>", field)
            out.append({"field": field, "from": origin})
    return out


def build_report(
    card: Mapping[str, Any],
    *,
    source: Mapping[str, str],
    sources: Mapping[str, str],
    overrides: Iterable[str],
    warnings: Iterable[str],
    schema_issues: Iterable[str],
) -> dict[str, Any]:
    """The import report (JSON-able, deterministic for the same input).

    Args:
        card: the imported canonical card.
        source: the card's ``source`` block (format, file, digest).
        sources: canonical field -> the source path the converter reads it from.
        overrides: names of the identity options the user gave.
        warnings: what the converter dropped or changed, one line each.
        schema_issues: ``$.path: message`` lines from the card schema.
    """
    issues = list(schema_issues)
    return {
        "source": dict(source),
        "complete": not issues,
        "mapped": _mapped(card, sources, overrides),
        "missing_required": [f for f in _REQUIRED if not has_field(card, f)],
        "missing_for_policies": _missing_for_policies(card),
        "not_parsed": list(warnings),
        "schema_issues": issues,
    }
