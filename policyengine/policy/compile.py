"""Compile linted policy documents into an immutable, digest-named policy set.

Compilation happens once per load: each ``expr`` and ``message`` is
transpiled by the CEL seam once, cached on its document, and reused by every
later :func:`compile_policies` call (params only change the activation, not
the code). Param overrides (``--params FILE``, ``--set policy.param=value``)
are applied here, checked against the params each policy declares, and are
part of each policy's canonical form, so they change the bundle digest.

Canonical form of a policy: the document as loaded with ``spec.params``
replaced by the effective params and every number a double
(:mod:`.numbers`), serialised with RFC 8785 (JCS). Policy digest = SHA-256
of those bytes; bundle digest = SHA-256 of the RFC 8785 list of
``{name, version, digest}`` sorted by name.

This module owns compilation and digests; it reads no files and evaluates
nothing.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import rfc8785
import yaml

from policyengine.errors import ConfigError, PolicyLoadError
from policyengine.policy import cel
from policyengine.policy.cel_ast import Path as ReadPath
from policyengine.policy.limits import DEFAULT_LIMITS, Limits
from policyengine.policy.lint import lint_documents
from policyengine.policy.load import PolicyDocument
from policyengine.policy.numbers import normalise, to_cel

__all__ = [
    "CompiledPolicy",
    "CompiledPolicySet",
    "CompiledRule",
    "compile_policies",
    "digest_of",
    "merge_overrides",
    "parse_set",
]


def digest_of(value: Any) -> str:
    """``sha256:<hex>`` of the RFC 8785 canonical JSON of ``value``."""
    return "sha256:" + hashlib.sha256(rfc8785.dumps(value)).hexdigest()


@dataclass(frozen=True)
class CompiledRule:
    """One rule, ready to evaluate."""

    policy: str
    """Name of the policy holding the rule."""
    policy_version: str
    id: str
    description: str
    severity: str
    """deny | warn | info."""
    expr: cel.Program
    message: cel.Program
    remediation: str
    reads: tuple[ReadPath, ...]
    """Member paths the expression reads (leaves only), for the values shown."""
    checks: tuple[ReadPath, ...]
    """Every path read outside has(), shortest first, to name a missing field."""
    file: str
    line: int


@dataclass(frozen=True)
class CompiledPolicy:
    """One policy with its effective params and compiled rules."""

    name: str
    version: str
    mode: str
    """enforce | audit."""
    applies_to: Mapping[str, tuple[str, ...]]
    """events / stages / riskTiers; a missing key means any."""
    params: Mapping[str, Any]
    """Effective params (after overrides), numbers as floats."""
    params_cel: Any = field(repr=False)
    digest: str
    source: str
    rules: tuple[CompiledRule, ...]
    references: tuple[str, ...] = ()
    """metadata.references (regulations, standards): carried by failing results."""

    def __post_init__(self) -> None:
        if not self.rules:  # fail closed: an empty policy never allows (STYLE.md §4)
            raise ValueError(f"policy {self.name!r} has no rules")


@dataclass(frozen=True)
class CompiledPolicySet:
    """The policies one decision is made against, named by their bundle digest."""

    policies: tuple[CompiledPolicy, ...]
    bundle_digest: str
    limits: Limits = DEFAULT_LIMITS

    def __post_init__(self) -> None:
        if not self.policies:
            raise ValueError("a policy set needs at least one policy")

    def rules(self) -> list[CompiledRule]:
        """Every rule of every policy, in order."""
        return [rule for policy in self.policies for rule in policy.rules]


def parse_set(text: str) -> tuple[str, str, Any]:
    """Parse ``policy.param=value`` (value read as a YAML scalar: 0.9, true, text).

    Raises:
        ConfigError: when the text is not of that form.
    """
    target, sep, raw = text.partition("=")
    policy, dot, param = target.rpartition(".")
    if not sep or not dot or not policy or not param:
        raise ConfigError(f"bad --set {text!r}: expected policy.param=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return policy, param, value


def merge_overrides(*layers: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Merge override layers ``{policy: {param: value}}``; later layers win per param."""
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers:
        if not layer:
            continue
        if not isinstance(layer, Mapping):
            raise ConfigError("bad params: expected a mapping {policy-name: {param: value}}")
        for policy, values in layer.items():
            if not isinstance(values, Mapping):
                raise ConfigError(f"bad params for {policy!r}: expected a mapping of param: value")
            merged.setdefault(str(policy), {}).update(values)
    return merged


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    names: dict[type, str] = {str: "a string", list: "a list", dict: "an object"}
    return names.get(type(value), "null")


def _effective_params(docs: list[PolicyDocument],
                      overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    by_name = {doc.name: doc for doc in docs if doc.name}
    problems: list[str] = []
    result: dict[str, dict[str, Any]] = {}
    for name, doc in by_name.items():
        result[name] = dict(doc.data["spec"].get("params") or {})
    for policy, values in overrides.items():
        if policy not in result:
            problems.append(f"params override for unknown policy {policy!r}; "
                            f"loaded: {', '.join(sorted(result))}")
            continue
        for param, value in values.items():
            if param not in result[policy]:
                declared = ", ".join(sorted(result[policy])) or "none"
                problems.append(f"{policy}: unknown param {param!r} (declared: {declared})")
            elif _kind(value) != _kind(result[policy][param]) and result[policy][param] is not None:
                problems.append(f"{policy}: param {param!r} expected "
                                f"{_kind(result[policy][param])}, got {_kind(value)}")
            else:
                result[policy][param] = value
    if problems:
        raise ConfigError("; ".join(problems))
    return result


def _program(doc: PolicyDocument, path: tuple[Any, ...]) -> tuple[cel.Program, cel.ExprInfo]:
    key = ("program", path)
    if key not in doc.cache:
        prepared: cel.Prepared = doc.cache[path]
        assert prepared.info is not None  # lint rejects expressions it could not analyse
        doc.cache[key] = (prepared.program(), prepared.info)
    program, info = doc.cache[key]
    return program, info


def _leaves(paths: list[ReadPath]) -> tuple[ReadPath, ...]:
    unique = list(dict.fromkeys(paths))
    return tuple(p for p in unique if not any(len(q) > len(p) and q[: len(p)] == p
                                              for q in unique))


def _compile_rule(doc: PolicyDocument, i: int, rule: dict[str, Any],
                  name: str, version: str) -> CompiledRule:
    expr, info = _program(doc, ("spec", "rules", i, "expr"))
    message, _ = _program(doc, ("spec", "rules", i, "message"))
    line, _ = doc.position(("spec", "rules", i))
    return CompiledRule(
        policy=name, policy_version=version, id=rule["id"],
        description=rule.get("description", ""), severity=rule["severity"],
        expr=expr, message=message, remediation=rule.get("remediation", ""),
        reads=_leaves(info.paths),
        checks=tuple(sorted(dict.fromkeys(info.paths), key=len)),
        file=doc.file, line=line,
    )


def _compile_policy(doc: PolicyDocument, params: dict[str, Any]) -> CompiledPolicy:
    data = doc.data
    name, version = data["metadata"]["name"], data["metadata"]["version"]
    canonical = copy.deepcopy(data)
    canonical["spec"]["params"] = params
    canonical = normalise(canonical)
    try:
        digest = digest_of(canonical)
    except (TypeError, ValueError) as exc:  # NaN/Infinity in params
        raise ConfigError(f"{name}: params are not canonical JSON: {exc}") from exc
    applies = data["spec"].get("appliesTo") or {}
    return CompiledPolicy(
        name=name, version=version, mode=data["spec"].get("mode", "enforce"),
        applies_to={k: tuple(v) for k, v in applies.items()},
        params=normalise(params), params_cel=to_cel(params),
        digest=digest, source=doc.file,
        rules=tuple(_compile_rule(doc, i, r, name, version)
                    for i, r in enumerate(data["spec"]["rules"])),
        references=tuple(str(r) for r in data["metadata"].get("references") or ()),
    )


def compile_policies(docs: list[PolicyDocument],
                     params: Mapping[str, Mapping[str, Any]] | None = None,
                     *, limits: Limits = DEFAULT_LIMITS) -> CompiledPolicySet:
    """Compile documents from :func:`~.load.load_policies` into a policy set.

    Args:
        docs: loaded (and linted) policy documents.
        params: overrides ``{policy-name: {param: value}}``.
        limits: run-time limits for every evaluation of this set.

    Returns:
        The compiled set; ``bundle_digest`` covers every policy's canonical form.

    Raises:
        PolicyLoadError: documents that were never linted and do not lint clean.
        ConfigError: overrides for unknown policies or params, or of the wrong type.
    """
    if any(("spec", "rules", 0, "expr") not in doc.cache for doc in docs):
        problems = lint_documents(docs, limits)
        if problems:
            raise PolicyLoadError(problems)
    effective = _effective_params(docs, merge_overrides(params))
    policies = tuple(_compile_policy(doc, effective[doc.name or ""]) for doc in docs)
    if not policies:
        raise ConfigError("no policies to compile; expected at least one policy document")
    bundle = sorted(({"name": p.name, "version": p.version, "digest": p.digest}
                     for p in policies), key=lambda item: item["name"])
    return CompiledPolicySet(policies=policies, bundle_digest=digest_of(bundle), limits=limits)
