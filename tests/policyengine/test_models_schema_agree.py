"""The pydantic models and the JSON Schemas describe the same contract.

Both sides are walked: every property path of schemas/model-card.schema.json
and schemas/lifecycle-event.schema.json must exist in the model's own JSON
schema with a compatible type, the same requiredness and the same
unknown-field policy, and vice versa. Every example card round-trips.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from policyengine.cards.validate import card_issues, load_document
from policyengine.models import LifecycleEvent, ModelCard
from policyengine.resources import schema as load_schema

REPO = Path(__file__).resolve().parents[2]
PAIRS = [("model-card", ModelCard), ("lifecycle-event", LifecycleEvent)]

Shape = dict[str, tuple[str, bool, Any, Any]]
"""Path -> (type, required, closed to unknown keys, value constraints) for every node."""

_CONSTRAINTS = ("pattern", "minLength", "maxLength", "minimum", "maximum")


def _deref(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Follow $ref, drop a `null` branch of anyOf (pydantic's Optional)."""
    while True:
        if "$ref" in node:
            target = root
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            continue
        branches = [b for b in node.get("anyOf", []) if b.get("type") != "null"]
        if "anyOf" in node and len(branches) == 1:
            node = {**{k: v for k, v in node.items() if k != "anyOf"}, **branches[0]}
            continue
        return node


def _type(node: dict[str, Any]) -> str:
    if "enum" in node or "const" in node:
        values = node.get("enum", [node.get("const")])
        return "enum:" + ",".join(sorted(map(str, values)))
    return str(node.get("type", "any"))


def _walk(
    node: dict[str, Any], root: dict[str, Any], path: str, required: bool, out: Shape
) -> None:
    node = _deref(node, root)
    kind = _type(node)
    extra = node.get("additionalProperties", True) if kind == "object" else None
    limits = tuple(sorted((k, node[k]) for k in _CONSTRAINTS if k in node))
    out[path] = (kind, required, extra is False, limits)
    for name, child in node.get("properties", {}).items():
        _walk(child, root, f"{path}.{name}", name in node.get("required", []), out)
    if kind == "array" and "items" in node:
        _walk(node["items"], root, f"{path}[]", True, out)


def _shape(schema: dict[str, Any]) -> Shape:
    out: Shape = {}
    _walk(schema, schema, "$", True, out)
    return out


@pytest.mark.parametrize(("schema_name", "model"), PAIRS)
def test_every_schema_path_exists_in_the_model(schema_name: str, model: type[BaseModel]) -> None:
    """Each schema property path is in the model with the same type, requiredness, extras."""
    schema = _shape(copy.deepcopy(load_schema(schema_name)))
    code = _shape(model.model_json_schema())
    missing = sorted(set(schema) - set(code))
    assert not missing, f"in schema, not in {model.__name__}: {missing}"
    differ = {p: (schema[p], code[p]) for p in schema if schema[p] != code[p]}
    assert not differ, f"schema vs model disagree: {differ}"


@pytest.mark.parametrize(("schema_name", "model"), PAIRS)
def test_every_model_path_exists_in_the_schema(schema_name: str, model: type[BaseModel]) -> None:
    """Each model field path is declared in the JSON Schema (no field only in code)."""
    schema = _shape(copy.deepcopy(load_schema(schema_name)))
    code = _shape(model.model_json_schema())
    extra = sorted(set(code) - set(schema))
    assert not extra, f"in {model.__name__}, not in schema: {extra}"


@pytest.mark.parametrize(
    ("path", "edit"),
    [
        (
            "$.metrics[].value",
            lambda s: s["$defs"]["metric"]["properties"].update(value={"type": "string"}),
        ),
        ("$.model.artifact_digest", lambda s: s["$defs"]["digest"].update(pattern="^sha512:")),
        (
            "$.retention.audit_log_days",
            lambda s: s["$defs"]["retention"]["properties"]["audit_log_days"].update(minimum=1),
        ),
        ("$.owner", lambda s: s["$defs"]["owner"].update(additionalProperties=True)),
        ("$.owner.team", lambda s: s["$defs"]["owner"].update(required=[])),
    ],
)
def test_the_shape_walk_sees_a_difference(path: str, edit: Any) -> None:
    """Not vacuous: a change of type, pattern, bound, openness or requiredness shows."""
    schema = copy.deepcopy(load_schema("model-card"))
    before = _shape(schema)
    edit(schema)
    assert before[path] != _shape(schema)[path]


def _example_cards() -> list[Path]:
    return sorted((REPO / "examples" / "cards").glob("*.*"))


@pytest.mark.parametrize("path", _example_cards(), ids=lambda p: p.name)
def test_example_card_round_trips_through_the_model(path: Path) -> None:
    """An example card validates in both the schema and the model and dumps back unchanged."""
    card = load_document(path)
    assert card_issues(card) == []
    assert ModelCard.from_dict(card).to_dict() == card


def test_examples_exist() -> None:
    """At least three example cards are present to round-trip."""
    assert len(_example_cards()) >= 3


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        ({"risk_tier": "extreme"}, "risk_tier"),
        ({"model": {"name": "m", "version": "1", "artifact_digest": "sha256:abc"}}, "model"),
        ({"metrics": [{"name": "auc", "value": "0.9"}]}, "metrics"),
        ({"unknown_top": 1}, "unknown_top"),
    ],
)
def test_schema_and_model_reject_the_same_bad_cards(patch: dict[str, Any], path: str) -> None:
    """A card the schema rejects is also rejected by the model."""
    card = {
        "schema_version": "1.0",
        "model": {"name": "m", "version": "1", "artifact_digest": "sha256:" + "a" * 64},
        "risk_tier": "low",
        **patch,
    }
    issues = card_issues(card)
    assert issues and issues[0].path.startswith(f"$.{path}")
    with pytest.raises(ValidationError):
        ModelCard.from_dict(card)


_LEAVES = [
    None,
    True,
    False,
    0,
    1,
    -1,
    1.5,
    0.25,
    "",
    "x",
    "high",
    "sha256:" + "0" * 64,
    "2026-11-26T10:00:00Z",
    [],
    ["x"],
    {},
    {"name": "x"},
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key/index path inside a JSON value (not the root)."""
    out: list[tuple[Any, ...]] = []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else []
    )
    for key, child in items:
        out.append((*prefix, key))
        out += _paths(child, (*prefix, key))
    return out


@st.composite
def _mutated_cards(draw: st.DrawFn) -> dict[str, Any]:
    """An example card with one value replaced, one key removed, or one unknown key added."""
    card = copy.deepcopy(load_document(draw(st.sampled_from(_example_cards()))))
    path = draw(st.sampled_from(_paths(card)))
    parent = card
    for key in path[:-1]:
        parent = parent[key]
    action = draw(st.sampled_from(["replace", "remove", "add"]))
    if action == "replace":
        parent[path[-1]] = draw(st.sampled_from(_LEAVES))
    elif action == "remove" and isinstance(parent, dict):
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent["unexpected_field"] = draw(st.sampled_from(_LEAVES))
    return card


@settings(max_examples=300, deadline=None)
@given(_mutated_cards())
def test_schema_and_model_accept_and_reject_the_same_cards(card: dict[str, Any]) -> None:
    """For arbitrary one-edit mutations of the examples, schema-valid iff model-valid."""
    schema_ok = not card_issues(card)
    try:
        ModelCard.from_dict(card)
        model_ok = True
    except ValidationError:
        model_ok = False
    assert schema_ok == model_ok, card_issues(card)
