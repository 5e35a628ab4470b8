"""YAML -> policy documents, with a file:line:col for every node.

Policies are read with ``yaml.compose`` so every mapping key, value and list
item keeps its source mark; any later error (schema, lint, CEL syntax) can
then name the exact line and column. For CEL text inside YAML scalars,
:meth:`PolicyDocument.text_position` maps a position inside the expression
back to the file, accounting for block scalars (``>`` folds lines, ``|``
keeps them) and indentation.

This module owns reading policy files and data files (cards, history,
params) from disk; it validates shape against ``schemas/policy.schema.json``
via :mod:`policyengine.policy.lint` and never evaluates anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from policyengine.errors import Diagnostic, InputError, PolicyLoadError
from policyengine.policy.document import JsonPath, PolicyDocument, Span
from policyengine.policy.lint import lint_documents
from policyengine.policy.params import merge_overrides, parse_set

__all__ = [
    "PolicyDocument",
    "find_policy_files",
    "is_test_file",
    "load_data",
    "load_overrides",
    "load_policies",
    "parse_documents",
    "read_text",
]

class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe loader that also reads YAML 1.2 / JSON exponent floats (``93e-2``, ``1e0``).

    PyYAML follows YAML 1.1, where a float needs a dot, so ``93e-2`` would be
    the string "93e-2" in a YAML card and the number 0.93 in a JSON one.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)
_BOOL = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


class _Builder:
    """Turns a composed YAML node tree into data plus marks for one document."""

    def __init__(self, doc: PolicyDocument, problems: list[Diagnostic]) -> None:
        self.doc = doc
        self.problems = problems

    def build(self, node: yaml.Node, path: JsonPath) -> Any:
        """Plain data for ``node``, recording marks for it and its children."""
        self.doc.marks[path] = (node.start_mark.line, node.start_mark.column)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in out:
                    line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                    self.problems.append(self.doc.diagnostic(
                        path, f"duplicate key {key!r}", at=(line, col)))
                self.doc.key_marks[(*path, key)] = (key_node.start_mark.line,
                                                    key_node.start_mark.column)
                out[key] = self.build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)  # composer yields only these three kinds
        return self.scalar(node, path)

    def scalar(self, node: yaml.ScalarNode, path: JsonPath) -> Any:
        """A scalar by its resolved tag; timestamps stay strings."""
        tag, raw = node.tag.rsplit(":", 1)[-1], node.value
        if tag == "null":
            return None
        if tag == "bool":
            return _BOOL.get(raw.lower(), raw)
        if tag == "int":
            return yaml.SafeLoader.construct_yaml_int(_CONSTRUCTOR, node)
        if tag == "float":
            return yaml.SafeLoader.construct_yaml_float(_CONSTRUCTOR, node)
        self.doc.spans[path] = Span(node.start_mark.index, node.end_mark.index, node.style)
        return raw


_CONSTRUCTOR = yaml.SafeLoader("")


MAX_FILE_BYTES = 16 * 1024 * 1024
"""Largest policy, card, history, params or test file read (a card is kilobytes)."""

MAX_YAML_NODES = 1_000_000
"""Largest YAML document counted with its aliases expanded: ``&a [*b, *b, ...]``
nine deep ("billion laughs") is tiny on disk and exponential once walked."""


def read_text(path: Path, what: str) -> str:
    """Read a UTF-8 file (a BOM is dropped) of at most :data:`MAX_FILE_BYTES`.

    Raises:
        InputError: unreadable, not UTF-8, a directory, or too big; one line naming the file.
    """
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(f"{path}: cannot read {what}: {size} bytes, limit {MAX_FILE_BYTES}")
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError(f"{path}: cannot read {what}: {reason}; expected a UTF-8 text "
                         "file") from exc


def check_expansion(node: yaml.Node | None) -> None:
    """Raise ``ValueError`` when ``node`` has more than :data:`MAX_YAML_NODES` nodes, aliases
    expanded; the walk stops at the limit, so it costs at most that many steps."""
    count, stack = 0, [node] if node is not None else []
    while stack:
        current = stack.pop()
        count += 1
        if count > MAX_YAML_NODES:
            raise ValueError(f"yaml expands to more than {MAX_YAML_NODES} nodes (aliases "
                             "repeated inside aliases?); write the data out plainly")
        if isinstance(current, yaml.MappingNode):
            stack.extend(v for pair in current.value for v in pair)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)


def parse_documents(text: str, file: str) -> tuple[list[PolicyDocument], list[Diagnostic]]:
    """Compose every YAML document in ``text``; returns documents and problems."""
    docs: list[PolicyDocument] = []
    problems: list[Diagnostic] = []
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
        for node in nodes:
            check_expansion(node)
    except ValueError as exc:
        problems.append(Diagnostic(file, 1, 1, None, None, str(exc)))
        return docs, problems
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problems.append(Diagnostic(file, line, col, None, None,
                                   f"invalid yaml: {exc.problem or exc.context}"))
        return docs, problems
    for index, node in enumerate(nodes):
        if node is None:
            continue
        doc = PolicyDocument(file=file, index=index, data=None, text=text)
        doc.data = _Builder(doc, problems).build(node, ())
        docs.append(doc)
    return docs, problems


def is_test_file(path: Path, root: Path | None = None) -> bool:
    """True for pack test files: ``*_test.yaml`` or anything under a ``tests`` dir."""
    stem = path.name.rsplit(".", 1)[0]
    if root is not None and path.is_relative_to(root):
        in_tests = "tests" in path.relative_to(root).parts[:-1]  # the root's own name never counts
    else:
        in_tests = path.parent.name == "tests"
    return stem.endswith("_test") or in_tests


def find_policy_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Policy files named by ``paths``: files as given, directories searched recursively.

    Directories yield every ``*.yaml``/``*.yml`` except pack tests
    (:func:`is_test_file`), in sorted order.
    """
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in {".yaml", ".yml"})
            yield from (p for p in found if p.is_file() and not is_test_file(p, path))
        else:
            yield path


OTHER_KINDS = frozenset({"Approvers", "PolicyTest"})
"""Document kinds that may sit beside policies and are not policies (skipped).

Any other ``kind`` is linted as a policy, so a typo such as ``kind: Polcy``
is an error rather than a silently ignored document."""


def _other_kind(doc: PolicyDocument) -> bool:
    return isinstance(doc.data, dict) and doc.data.get("kind") in OTHER_KINDS


def load_policies(paths: list[Path]) -> list[PolicyDocument]:
    """Load, schema-check and lint every policy document under ``paths``.

    Args:
        paths: policy files or directories (searched recursively). Documents
            of a kind in :data:`OTHER_KINDS` (an approvers trust file) are
            skipped.

    Returns:
        The documents, in file order, each with its CEL parsed and analysed.

    Raises:
        PolicyLoadError: with every problem found in every file, together.
    """
    docs: list[PolicyDocument] = []
    problems: list[Diagnostic] = []
    for file in find_policy_files(paths):
        try:
            text = read_text(file, "policy file")
        except InputError as exc:
            problems.append(Diagnostic(str(file), 0, 0, None, None,
                                       str(exc).removeprefix(f"{file}: ")))
            continue
        found, issues = parse_documents(text, str(file))
        docs.extend(doc for doc in found if not _other_kind(doc))
        problems.extend(issues)
    if not docs and not problems:
        where = ", ".join(str(p) for p in paths) or "(no paths)"
        problems.append(Diagnostic(where, 0, 0, None, None,
                                   "no policy documents found; expected *.yaml policy files"))
    problems.extend(lint_documents(docs))
    if problems:
        raise PolicyLoadError(problems)
    return docs


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Refuse duplicate JSON keys: a card saying one thing twice is ambiguous."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def load_data(path: Path, what: str = "input") -> Any:
    """Read a JSON or YAML data file (card, history, params); timestamps stay strings.

    Raises:
        InputError: unreadable file or invalid JSON/YAML, naming the file and line.
    """
    text = read_text(path, what)
    if path.suffix == ".json":
        try:
            return json.loads(text, object_pairs_hook=_no_duplicates)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{exc.lineno}:{exc.colno}: invalid json: {exc.msg}") from exc
        except ValueError as exc:
            raise InputError(f"{path}: invalid json: {exc}") from exc
    docs, problems = parse_documents(text, str(path))
    if problems:
        raise InputError(str(problems[0]).replace(": -: ", ": "))
    if len(docs) != 1:
        raise InputError(f"{path}: expected one yaml document, got {len(docs)}")
    return docs[0].data


def load_overrides(params_file: Path | None, sets: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """Param overrides from ``--params FILE`` then ``--set policy.param=value`` (later wins).

    Raises:
        InputError: the params file cannot be read or parsed.
        ConfigError: it is not ``{policy-name: {param: value}}`` or a --set is malformed.
    """
    layers: list[Any] = []
    if params_file is not None:
        layers.append(load_data(params_file, "params") or {})
    for text in sets:
        policy, param, value = parse_set(text)
        layers.append({policy: {param: value}})
    return merge_overrides(*layers)
