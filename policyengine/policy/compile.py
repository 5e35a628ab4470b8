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
of those bytes.

Bundle digest (:data:`BUNDLE_DIGEST_VERSION` 2) = SHA-256 of the RFC 8785
object ``{"digest_version": 2, "policies": [{name, version, digest}] sorted
by name, "files": [{path, sha256}] sorted}``, where each policy file's
``path`` is relative to its policies root and ``sha256`` is the hex SHA-256
of its UTF-8 text as loaded (:func:`file_digests`): exactly what a
``policy_bundle`` log entry records, so replay derives the same digest from
the entry, and any edit of a file (a comment, whitespace) changes it.
Version 1, the digest of decisions recorded before, is the RFC 8785 list of
``{name, version, digest}`` alone; replay recompiles a bundle entry without
a ``digest_version`` marker under it (``bundles.compile_bundle``).

This module owns compilation and digests; it reads no files and evaluates
nothing.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from audit import canonical
from audit.errors import CanonicalizationError
from policyengine import resources
from policyengine.errors import ConfigError, PolicyLoadError
from policyengine.policy import cel, cel_native
from policyengine.policy.cel_ast import Path as ReadPath
from policyengine.policy.cel_qualify import Kind, kind_of_schema, kind_of_value, qualify
from policyengine.policy.explain import compile_reads
from policyengine.policy.limits import DEFAULT_LIMITS, Limits
from policyengine.policy.lint import lint_documents
from policyengine.policy.load import PolicyDocument
from policyengine.policy.numbers import normalise, to_cel
from policyengine.policy.params import merge_overrides, parse_set

__all__ = [
    "BUNDLE_DIGEST_VERSION",
    "ENGINES",
    "HISTORY_FIELDS",
    "CompiledPolicy",
    "CompiledPolicySet",
    "CompiledRule",
    "compile_policies",
    "digest_of",
    "engine_setting",
    "file_digests",
    "file_path",
    "history_reads",
    "merge_overrides",
    "parse_set",
]


def digest_of(value: Any) -> str:
    """``sha256:<hex>`` of the RFC 8785 canonical JSON of ``value``.

    Raises:
        ValueError: NaN, infinity or another value RFC 8785 cannot hold.
    """
    try:
        data = canonical.dumps(value)
    except CanonicalizationError as exc:
        raise ValueError(str(exc)) from exc
    return "sha256:" + hashlib.sha256(data).hexdigest()


BUNDLE_DIGEST_VERSION = 2
"""How :func:`compile_policies` defines the bundle digest (module docstring).

Recorded in every ``policy_bundle`` entry. Decisions recorded under version 1
(policy canonical forms only: a comment-only edit kept the digest) stay in
logs that must replay for as long as they are kept, so version 1 is
recognised by the entry's missing marker rather than guessed from the digest
string (both are ``sha256:<hex>``) or by trying both definitions."""


def file_path(doc: PolicyDocument) -> str:
    """The path a bundle records for ``doc``'s file: relative to its root, else its name."""
    return doc.path or os.path.basename(doc.file)


def file_digests(docs: Iterable[PolicyDocument]) -> list[dict[str, str]]:
    """``{path, sha256}`` of each distinct file of ``docs``, sorted: part of the bundle digest.

    ``sha256`` is over the file's UTF-8 text as loaded (``read_text`` drops a
    leading BOM and nothing else), the text a ``policy_bundle`` entry records.
    """
    found = {(file_path(doc), hashlib.sha256(doc.text.encode("utf-8")).hexdigest())
             for doc in docs}
    return [{"path": path, "sha256": digest} for path, digest in sorted(found)]


INPUT_NAMES = frozenset({"card", "event", "history", "now"})
"""The top-level inputs every rule may name (besides ``params``)."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _inputs_named(rules: tuple[CompiledRule, ...]) -> frozenset[str]:
    """The inputs whose name appears as an identifier in any rule's expr or message."""
    words: set[str] = set()
    for rule in rules:
        words.update(_IDENTIFIER.findall(rule.expr.source))
        words.update(_IDENTIFIER.findall(rule.message.source))
    return INPUT_NAMES & words


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
    native: cel_native.NativeProgram | None = None
    """The expression on the native runtime, when it qualifies (:mod:`.cel_qualify`)."""
    read_values: Callable[[dict[str, Any]], dict[str, Any]] = field(
        default=lambda data: {}, repr=False, compare=False)
    """:func:`~.explain.values_read` of ``reads``, planned at compile time."""


HISTORY_FIELDS: frozenset[str] = frozenset({
    "approvals", "waivers", "decisions", "promotions", "events", "evidence",
    "rejected_approvals"})
"""Every top-level field of ``history`` (schemas/history.schema.json)."""

# `history` then `.name`, `.?name`, `?.name` or `["name"]`; any other use of the
# variable (passed whole, a macro over its keys, a computed index) reads every field.
_HISTORY_USE = re.compile(
    r"\bhistory\b(?:\s*(?:\.\s*\??|\?\s*\.)\s*(\w+)|\s*\[\s*[\"'](\w+)[\"']\s*\])?")


def history_reads(texts: Iterable[str]) -> frozenset[str]:
    """The ``history`` fields CEL text can read: a conservative scan of its words.

    Each ``history.name`` (or ``history["name"]``) naming a history field reads
    that field; any other mention of the word (the variable passed whole,
    ``history.all(k, ...)`` over its keys, a computed index, the word inside a
    string literal) reads every field, so nothing a rule could read is left out.
    """
    found: set[str] = set()
    for text in texts:
        for match in _HISTORY_USE.finditer(text):
            key = match.group(1) or match.group(2)
            if key not in HISTORY_FIELDS:
                return HISTORY_FIELDS
            found.add(key)
    return frozenset(found)


def _cel_texts(docs: Iterable[PolicyDocument]) -> Iterator[str]:
    """Every CEL text of the documents (each rule's ``expr`` and ``message``)."""
    for doc in docs:
        for rule in doc.data["spec"]["rules"]:
            yield str(rule.get("expr", ""))
            yield str(rule.get("message", ""))


ENGINES = ("reference", "fast", "shadow")
"""reference: cel-python only; fast: native where a rule qualifies; shadow: both, compared."""


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
    inputs_read: frozenset[str] = INPUT_NAMES
    """Which of card, event, history, now its rules' sources name (a superset of
    what they read: CEL has no dynamic variable lookup, so a name that never
    appears in the text is never read). The fast path converts only these."""

    def __post_init__(self) -> None:
        if not self.rules:  # fail closed: an empty policy never allows (STYLE.md §4)
            raise ValueError(f"policy {self.name!r} has no rules")


@dataclass(frozen=True)
class CompiledPolicySet:
    """The policies one decision is made against, named by their bundle digest."""

    policies: tuple[CompiledPolicy, ...]
    bundle_digest: str
    limits: Limits = DEFAULT_LIMITS
    engine: str = "reference"
    """One of :data:`ENGINES`; never part of a digest (every engine decides alike)."""
    native_env: cel_native.NativeEnv | None = field(default=None, repr=False, compare=False)
    """The native runtime of the fast and shadow engines (None on the reference)."""
    params_json: bytes = field(default=b"", repr=False, compare=False)
    """RFC 8785 bytes of ``{policy name: params}``, part of every input digest."""
    params_sizes: tuple[int, int] = (0, 0)
    """Sizes (:func:`.cel_native.plain_and_sizes`) of every policy's params."""
    history_reads: frozenset[str] = HISTORY_FIELDS
    """The ``history`` fields the rules can read (:func:`history_reads`); never in a digest."""

    def __post_init__(self) -> None:
        if not self.policies:
            raise ValueError("a policy set needs at least one policy")
        if not self.params_json:
            params = {p.name: p.params for p in self.policies}
            object.__setattr__(self, "params_json", canonical.dumps(params))
            object.__setattr__(self, "params_sizes", cel_native.plain_and_sizes(params)[1])

    def rules(self) -> list[CompiledRule]:
        """Every rule of every policy, in order."""
        return [rule for policy in self.policies for rule in policy.rules]


_ENGINE: contextvars.ContextVar[str | None] = contextvars.ContextVar("policyengine_engine",
                                                                    default=None)


@contextlib.contextmanager
def engine_setting(engine: str | None) -> Iterator[None]:
    """Within the block, :func:`compile_policies` defaults to ``engine`` (None: no change).

    The CLI's ``--engine`` flag reaches compilations inside library calls
    (the gate) this way; it wins over ``$POLICYENGINE_ENGINE``.
    """
    token = _ENGINE.set(engine) if engine else None
    try:
        yield
    finally:
        if token is not None:
            _ENGINE.reset(token)


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


def _schema_kind(name: str) -> Kind:
    schema = resources.schema(name)
    return kind_of_schema(schema, schema)


def _native(doc: PolicyDocument, i: int, params: dict[str, Any],
            env: cel_native.NativeEnv | None, index: int) -> cel_native.NativeProgram | None:
    """The rule's expression on the native runtime, when it qualifies."""
    if env is None:
        return None
    prepared: cel.Prepared = doc.cache[("spec", "rules", i, "expr")]
    roots = {"card": _schema_kind("model-card"), "history": _schema_kind("history"),
             "event": Kind(frozenset({"map"})), "now": Kind(frozenset({"timestamp"})),
             "params": kind_of_value(params)}
    tree = prepared.tree or cel.parse(prepared.text)
    shape = qualify(tree, roots)
    if shape is None:
        return None
    return env.compile(cel_native.bind_params(tree, prepared.text, index), shape)


def _compile_rule(doc: PolicyDocument, i: int, rule: dict[str, Any], name: str, version: str,
                  params: dict[str, Any], env: cel_native.NativeEnv | None,
                  index: int) -> CompiledRule:
    expr, info = _program(doc, ("spec", "rules", i, "expr"))
    message, _ = _program(doc, ("spec", "rules", i, "message"))
    line, _ = doc.position(("spec", "rules", i))
    reads = _leaves(info.paths)
    return CompiledRule(
        policy=name, policy_version=version, id=rule["id"],
        description=rule.get("description", ""), severity=rule["severity"],
        expr=expr, message=message, remediation=rule.get("remediation", ""),
        reads=reads,
        checks=tuple(sorted(dict.fromkeys(info.paths), key=len)),
        file=doc.file, line=line, native=_native(doc, i, params, env, index),
        read_values=compile_reads(reads),
    )


def _compile_policy(doc: PolicyDocument, params: dict[str, Any],
                    env: cel_native.NativeEnv | None, index: int) -> CompiledPolicy:
    data = doc.data
    name, version = data["metadata"]["name"], data["metadata"]["version"]
    canonical_form = copy.deepcopy(data)
    canonical_form["spec"]["params"] = params
    canonical_form = normalise(canonical_form)
    try:
        digest = digest_of(canonical_form)
    except (TypeError, ValueError) as exc:  # NaN/Infinity in params
        raise ConfigError(f"{name}: params are not canonical JSON: {exc}") from exc
    applies = data["spec"].get("appliesTo") or {}
    plain = normalise(params)
    if env is not None:
        env.params[cel_native.params_name(index)] = plain
    rules = tuple(_compile_rule(doc, i, r, name, version, plain, env, index)
                  for i, r in enumerate(data["spec"]["rules"]))
    return CompiledPolicy(
        name=name, version=version, mode=data["spec"].get("mode", "enforce"),
        applies_to={k: tuple(v) for k, v in applies.items()},
        params=plain, params_cel=to_cel(params),
        digest=digest, source=doc.file,
        rules=rules,
        references=tuple(str(r) for r in data["metadata"].get("references") or ()),
        inputs_read=_inputs_named(rules),
    )


def compile_policies(docs: list[PolicyDocument],
                     params: Mapping[str, Mapping[str, Any]] | None = None,
                     *, limits: Limits = DEFAULT_LIMITS,
                     engine: str | None = None,
                     digest_version: int = BUNDLE_DIGEST_VERSION) -> CompiledPolicySet:
    """Compile documents from :func:`~.load.load_policies` into a policy set.

    Args:
        docs: loaded (and linted) policy documents.
        params: overrides ``{policy-name: {param: value}}``.
        limits: run-time limits for every evaluation of this set.
        engine: one of :data:`ENGINES`; default: the :func:`engine_setting` in force,
            else ``$POLICYENGINE_ENGINE``, else reference.
        digest_version: the bundle digest definition (:data:`BUNDLE_DIGEST_VERSION`);
            1 only to replay a bundle recorded under it.

    Returns:
        The compiled set; ``bundle_digest`` covers every policy's canonical form
        (effective params included) and every policy file's path and exact text.

    Raises:
        PolicyLoadError: documents that were never linted and do not lint clean.
        ConfigError: overrides for unknown policies or params, or of the wrong type;
            an unknown ``digest_version``.
    """
    if digest_version not in (1, BUNDLE_DIGEST_VERSION):
        raise ConfigError(f"unknown bundle digest version {digest_version!r}; "
                          f"expected 1 or {BUNDLE_DIGEST_VERSION}")
    engine = engine or _ENGINE.get() or os.environ.get("POLICYENGINE_ENGINE") or "reference"
    if engine not in ENGINES:
        raise ConfigError(f"bad engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if any(("spec", "rules", 0, "expr") not in doc.cache for doc in docs):
        problems = lint_documents(docs, limits)
        if problems:
            raise PolicyLoadError(problems)
    effective = _effective_params(docs, merge_overrides(params))
    env = (cel_native.NativeEnv(len(docs))
           if engine != "reference" and cel_native.AVAILABLE else None)
    policies = tuple(_compile_policy(doc, effective[doc.name or ""], env, index)
                     for index, doc in enumerate(docs))
    if not policies:
        raise ConfigError("no policies to compile; expected at least one policy document")
    bundle: Any = sorted(({"name": p.name, "version": p.version, "digest": p.digest}
                          for p in policies), key=lambda item: item["name"])
    if digest_version != 1:
        bundle = {"digest_version": digest_version, "policies": bundle,
                  "files": file_digests(docs)}
    return CompiledPolicySet(policies=policies, bundle_digest=digest_of(bundle), limits=limits,
                             engine=engine, native_env=env,
                             history_reads=history_reads(_cel_texts(docs)))
