"""Lint policy documents: schema, uniqueness, CEL syntax, names and limits.

Every check runs on every document and every problem is reported, so one
``policyengine check`` run shows all of them (OPA's compiler does the same).
Checks, in order:

1. shape against ``schemas/policy.schema.json`` (unknown fields, bad
   severity, missing fields, empty rules list), located at the offending key;
2. duplicate policy names in a set and duplicate rule ids in a policy;
3. for each ``expr`` and ``message``: length, CEL syntax (with the column,
   mapped from inside the YAML scalar to the file), nesting and
   comprehension depth (:mod:`.limits`), unknown variables (only ``card``,
   ``event``, ``history``, ``params``, ``now``), unknown functions, params
   the policy does not declare, and literals of the wrong type.

Parsed expressions are cached on the document so compilation does not parse
twice. This module owns these checks; it reads no files.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from policyengine import resources
from policyengine.errors import Diagnostic
from policyengine.policy import cel
from policyengine.policy.document import JsonPath, PolicyDocument
from policyengine.policy.limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:  # jsonschema loads only when a document is invalid (start-up time)
    from jsonschema.exceptions import ValidationError

__all__ = ["ROOTS", "lint_documents"]

ROOTS = frozenset({"card", "event", "history", "params", "now"})
"""The variables a rule may read."""

_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
               int: "a number", float: "a number", type(None): "null"}


def lint_documents(docs: Iterable[PolicyDocument],
                   limits: Limits = DEFAULT_LIMITS) -> list[Diagnostic]:
    """Every problem in ``docs`` (empty when they are all valid)."""
    docs = list(docs)
    problems: list[Diagnostic] = []
    seen: dict[str, PolicyDocument] = {}
    for doc in docs:
        problems.extend(_schema_problems(doc))
        name = doc.name
        if name in seen:
            other = seen[name]
            line, _ = other.position(("metadata", "name"))
            problems.append(doc.diagnostic(("metadata", "name"),
                f"duplicate policy name {name!r}; first defined at {other.file}:{line}"))
        elif name:
            seen[name] = doc
        problems.extend(_rule_problems(doc, limits))
    return problems


def _field(path: JsonPath) -> str:
    parts = [p for p in path if isinstance(p, str)]
    return parts[-1] if parts else "document"


def _schema_problems(doc: PolicyDocument) -> list[Diagnostic]:
    if resources.is_valid("policy", doc.data):  # jsonschema-rs; the reference words errors
        return []
    errors = resources.validator("policy").iter_errors(doc.data)
    out: list[Diagnostic] = []
    for error in sorted(errors, key=lambda e: list(map(str, e.absolute_path))):
        out.extend(_from_schema_error(doc, error))
    return out


def _from_schema_error(doc: PolicyDocument, error: ValidationError) -> list[Diagnostic]:
    path: JsonPath = tuple(error.absolute_path)
    kind, value, instance = error.validator, error.validator_value, error.instance
    name = _field(path)
    if kind == "additionalProperties" and isinstance(instance, dict):
        known = error.schema.get("properties", {})
        where = name if path else "document"
        return [doc.diagnostic((*path, key), f"unknown field {key!r} in {where}; "
                               f"expected one of {', '.join(sorted(known))}", key=True)
                for key in instance if key not in known]
    if kind == "required" and isinstance(instance, dict):
        return [doc.diagnostic(path, f"missing required field {key!r} in "
                               f"{name if path else 'document'}", key=True)
                for key in value if key not in instance]
    if kind == "enum":
        message = f"bad {name}: expected one of {', '.join(map(str, value))}, got {instance!r}"
    elif kind == "const":
        message = f"bad {name}: expected {value!r}, got {instance!r}"
    elif kind == "type":
        got = _JSON_TYPES.get(type(instance), type(instance).__name__)
        message = f"bad {name}: expected {value}, got {got}"
        if name == "version" and isinstance(instance, int | float):
            message += " (quote the version)"
    elif kind == "minItems" and value == 1:
        message = f"{name} must not be empty" + (
            "; a policy needs at least one rule" if name == "rules" else "")
    elif kind == "minLength":
        message = f"{name} must not be empty"
    elif kind == "pattern":
        message = f"bad {name} {instance!r}: expected to match {value}"
    else:
        message = f"bad {name}: {error.message}"
    return [doc.diagnostic(path, message)]


def _rule_problems(doc: PolicyDocument, limits: Limits) -> list[Diagnostic]:
    spec = doc.data.get("spec") if isinstance(doc.data, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("rules"), list):
        return []
    rules: list[Any] = spec["rules"]
    params = spec["params"] if isinstance(spec.get("params"), dict) else {}
    out: list[Diagnostic] = []
    ids: dict[str, int] = {}
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            continue
        rid = rule.get("id")
        if isinstance(rid, str):
            if rid in ids:
                line, _ = doc.position(("spec", "rules", ids[rid], "id"))
                out.append(doc.diagnostic(("spec", "rules", i, "id"),
                           f"duplicate rule id {rid!r}; first used on line {line}"))
            else:
                ids[rid] = i
        for key in ("expr", "message"):
            if isinstance(rule.get(key), str):
                out.extend(check_expression(doc, ("spec", "rules", i, key), set(params), limits))
    return out


def check_expression(doc: PolicyDocument, path: JsonPath, params: set[str],
                     limits: Limits = DEFAULT_LIMITS) -> list[Diagnostic]:
    """Problems in one CEL expression; caches the prepared expression on the document."""
    text: str = doc.data["spec"]["rules"][path[2]][path[3]]
    kind = path[3]
    hint = ("; message is CEL: quote plain text, e.g. '\"text\"'"
            if kind == "message" else "")
    if len(text) > limits.max_expr_length:
        return [doc.diagnostic(path, f"{kind} too long: {len(text)} characters, "
                               f"limit {limits.max_expr_length}")]
    try:
        prepared = cel.prepare(text, ROOTS, max_depth=limits.max_depth,
                               max_comprehensions=limits.max_comprehension_depth,
                               max_operators=limits.max_operators)
    except cel.CelTooComplexError as exc:
        return [doc.diagnostic(path, f"{kind}: {exc.message}")]
    except cel.CelSyntaxError as exc:
        at = doc.text_position(path, exc.line, exc.column)
        return [doc.diagnostic(path, f"{kind}: {exc.message}{hint}", at=at)]
    depth, macros = prepared.depth, prepared.macros
    if depth > limits.max_depth:
        return [doc.diagnostic(path, f"{kind} nested too deeply: depth {depth}, "
                               f"limit {limits.max_depth}")]
    if macros > limits.max_comprehension_depth:
        return [doc.diagnostic(path, f"{kind} nests {macros} comprehensions, "
                               f"limit {limits.max_comprehension_depth}")]
    assert prepared.info is not None  # analysed whenever within the limits
    out = _name_problems(doc, path, prepared.info, params, hint)
    literal = prepared.literal
    want = "bool" if kind == "expr" else "string"
    if literal and literal != want:
        out.append(doc.diagnostic(path, f"{kind} must yield a {want}, got a {literal} literal"
                                  + (hint if literal != "string" else "")))
    doc.cache[path] = prepared
    if not out:
        try:  # compiled here so that code too deep for CPython is a lint error with a place
            doc.cache[("program", path)] = (prepared.program(), prepared.info)
        except cel.CelTooComplexError as exc:
            out.append(doc.diagnostic(path, f"{kind}: {exc.message}"))
    return out


def _name_problems(doc: PolicyDocument, path: JsonPath, info: cel.ExprInfo,
                   params: set[str], hint: str) -> list[Diagnostic]:
    kind = path[3]
    out: list[Diagnostic] = []
    for ref in info.variables:
        if ref.name not in ROOTS:
            out.append(doc.diagnostic(path, f"{kind}: unknown variable {ref.name!r}; expected "
                       "one of card, event, history, params, now" + hint,
                       at=doc.text_position(path, ref.line, ref.column)))
    for ref in info.functions:
        if ref.name not in cel.FUNCTIONS:
            out.append(doc.diagnostic(path, f"{kind}: unknown function {ref.name!r}",
                       at=doc.text_position(path, ref.line, ref.column)))
    for ref in info.params:
        if ref.name not in params:
            declared = ", ".join(sorted(params)) or "none"
            out.append(doc.diagnostic(path, f"{kind}: params.{ref.name} is not declared in "
                       f"spec.params (declared: {declared})",
                       at=doc.text_position(path, ref.line, ref.column)))
    for ref in info.problems:
        out.append(doc.diagnostic(path, f"{kind}: {ref.name}",
                   at=doc.text_position(path, ref.line, ref.column)))
    return out
