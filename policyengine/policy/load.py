"""YAML -> policy documents, with a file:line:col for every node.

Policies are read with ``yaml.compose`` so every mapping key, value and list
item keeps its source mark; any later error (schema, lint, CEL syntax) can
then name the exact line and column. For CEL text inside YAML scalars,
:meth:`PolicyDocument.text_position` maps a position inside the expression
back to the file, accounting for block scalars (``>`` folds lines, ``|``
keeps them) and indentation.

This module owns turning policy files into documents; the bytes are read,
bounded and checked by :mod:`policyengine.inputs` (as are data files:
cards, history, params, through :func:`load_data`). It validates shape
against ``schemas/policy.schema.json`` via :mod:`policyengine.policy.lint`
and never evaluates anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from policyengine.errors import Diagnostic, InputError, PolicyLoadError
from policyengine.inputs import DocumentError, check_data, compose_all, load_document, read_text

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

JsonPath = tuple[str | int, ...]


_BOOL = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


@dataclass(frozen=True)
class _Span:
    """Where a scalar's text sits in the file (absolute character offsets)."""

    start: int
    end: int
    style: str | None


@dataclass
class PolicyDocument:
    """One YAML document of a policy file, as plain data plus source marks."""

    file: str
    """Path as the user named it (used in every diagnostic)."""
    index: int
    """Position of this document in its file (0-based)."""
    data: Any
    """The document as plain JSON-like data (timestamps stay strings)."""
    text: str = field(repr=False)
    """Whole file text (shared by the documents of one file)."""
    marks: dict[JsonPath, tuple[int, int]] = field(default_factory=dict, repr=False)
    """JSON path -> 0-based (line, col) of the value node."""
    key_marks: dict[JsonPath, tuple[int, int]] = field(default_factory=dict, repr=False)
    """JSON path -> 0-based (line, col) of the mapping key naming it."""
    spans: dict[JsonPath, _Span] = field(default_factory=dict, repr=False)
    """JSON path -> source span of string scalars."""
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)
    """Compiled artefacts (parsed and transpiled CEL), filled by lint/compile."""

    @property
    def name(self) -> str | None:
        """metadata.name when it is a string."""
        meta = self.data.get("metadata") if isinstance(self.data, dict) else None
        name = meta.get("name") if isinstance(meta, dict) else None
        return name if isinstance(name, str) else None

    def rule_id(self, path: JsonPath) -> str | None:
        """The id of the rule a path points into (``spec.rules[i]...``)."""
        if len(path) >= 3 and path[:2] == ("spec", "rules") and isinstance(path[2], int):
            try:
                rid = self.data["spec"]["rules"][path[2]].get("id")
            except (KeyError, IndexError, TypeError, AttributeError):
                return None
            return rid if isinstance(rid, str) else None
        return None

    def position(self, path: JsonPath, *, key: bool = False) -> tuple[int, int]:
        """1-based (line, col) of the nearest node on ``path``."""
        table = self.key_marks if key else self.marks
        for cut in range(len(path), -1, -1):
            prefix = path[:cut]
            if prefix in table:
                line, col = table[prefix]
                return line + 1, col + 1
            if prefix in self.marks:
                line, col = self.marks[prefix]
                return line + 1, col + 1
        return 1, 1

    def diagnostic(self, path: JsonPath, message: str, *, key: bool = False,
                   at: tuple[int, int] | None = None) -> Diagnostic:
        """A Diagnostic for ``path`` naming this policy and the rule it is in."""
        line, col = at or self.position(path, key=key)
        return Diagnostic(self.file, line, col, self.name, self.rule_id(path), message)

    def text_position(self, path: JsonPath, line: int, column: int) -> tuple[int, int]:
        """Map a 1-based (line, column) inside the scalar at ``path`` to the file."""
        span = self.spans.get(path)
        value = _get(self.data, path)
        if span is None or not isinstance(value, str):
            return self.position(path)
        lines = value.split("\n")
        line = max(1, min(line, len(lines)))
        offset = sum(len(x) + 1 for x in lines[: line - 1]) + max(column - 1, 0)
        index = _align(value, self.text, span, min(offset, max(len(value) - 1, 0)))
        if index is None:
            return self.position(path)
        before = self.text.rfind("\n", 0, index)
        return self.text.count("\n", 0, index) + 1, index - before


def _get(data: Any, path: JsonPath) -> Any:
    for step in path:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _align(value: str, text: str, span: _Span, offset: int) -> int | None:
    """File index of ``value[offset]``, walking the scalar's source text.

    Source whitespace the value lacks (indentation, folded newlines) is
    skipped; a non-space mismatch (escape sequences in quoted scalars) gives
    up and the caller falls back to the scalar's own position.
    """
    j = span.start
    if span.style in {">", "|"}:
        j = text.find("\n", j, span.end) + 1 or span.end
    elif span.style in {"'", '"'}:
        j += 1
    for k, ch in enumerate(value):
        while j < span.end and text[j] != ch and text[j] in " \t\r\n":
            j += 1
        if j >= span.end or (text[j] != ch and not ch.isspace()):
            return None
        if k == offset:
            return j
        if text[j] == ch:
            j += 1
    return None


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
            for key_node, value_node in node.value:  # keys checked by inputs.check_node
                key = str(key_node.value)
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
        self.doc.spans[path] = _Span(node.start_mark.index, node.end_mark.index, node.style)
        return raw


_CONSTRUCTOR = yaml.SafeLoader("")


def parse_documents(text: str, file: str) -> tuple[list[PolicyDocument], list[Diagnostic]]:
    """Compose every YAML document in ``text``; returns documents and problems.

    Limits, duplicate keys and numbers are checked by :mod:`policyengine.inputs`,
    as for every other input; a refusal becomes a located diagnostic.
    """
    docs: list[PolicyDocument] = []
    try:
        nodes = compose_all(text, file)
    except DocumentError as exc:
        return docs, [Diagnostic(file, exc.line, exc.col, None, None, exc.problem)]
    problems: list[Diagnostic] = []
    for index, node in enumerate(nodes):
        if node is None:
            continue
        doc = PolicyDocument(file=file, index=index, data=None, text=text)
        doc.data = _Builder(doc, problems).build(node, ())
        try:
            check_data(doc.data, file)
        except DocumentError as exc:
            problems.append(doc.diagnostic(exc.path or (), exc.problem))
            continue
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
    from policyengine.policy.lint import lint_documents  # lint imports this module

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


def load_data(path: Path, what: str = "input") -> Any:
    """Read a JSON or YAML data file (card, history, params); timestamps stay strings.

    Raises:
        InputError: unreadable, invalid or refused by a limit of
            :mod:`policyengine.inputs`, naming the file, line and JSON path.
    """
    return load_document(path, what)


def load_overrides(params_file: Path | None, sets: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """Param overrides from ``--params FILE`` then ``--set policy.param=value`` (later wins).

    Raises:
        InputError: the params file cannot be read or parsed.
        ConfigError: it is not ``{policy-name: {param: value}}`` or a --set is malformed.
    """
    from policyengine.policy.compile import merge_overrides, parse_set

    layers: list[Any] = []
    if params_file is not None:
        layers.append(load_data(params_file, "params") or {})
    for text in sets:
        policy, param, value = parse_set(text)
        layers.append({policy: {param: value}})
    return merge_overrides(*layers)
