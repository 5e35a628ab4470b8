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
from pathlib import Path
from typing import Any

import yaml

from policyengine.errors import Diagnostic, InputError, PolicyLoadError
from policyengine.inputs import DocumentError, check_data, compose_all, load_document, read_text
from policyengine.policy import bundle_cache
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
        self.doc.spans[path] = Span(node.start_mark.index, node.end_mark.index, node.style)
        return raw


_CONSTRUCTOR = yaml.SafeLoader("")


def parse_documents(text: str, file: str,
                    path: str = "") -> tuple[list[PolicyDocument], list[Diagnostic]]:
    """Compose every YAML document in ``text``; returns documents and problems.

    ``path`` is the file's path relative to its policies root
    (:attr:`PolicyDocument.path`). Limits, duplicate keys and numbers are
    checked by :mod:`policyengine.inputs`, as for every other input; a refusal
    becomes a located diagnostic.
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
        doc = PolicyDocument(file=file, index=index, data=None, text=text, path=path)
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
    for file, _ in _policy_files(paths):
        yield file


def _policy_files(paths: Iterable[Path]) -> Iterator[tuple[Path, str]]:
    """:func:`find_policy_files`, each with its path relative to the root it was found under."""
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in {".yaml", ".yml"})
            yield from ((p, p.relative_to(path).as_posix()) for p in found
                        if p.is_file() and not is_test_file(p, path))
        else:
            yield path, path.name


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
        A set that loaded clean before is read from the per-user
        :mod:`.bundle_cache` (the files are read and hashed every time).

    Raises:
        PolicyLoadError: with every problem found in every file, together.
    """
    files: list[tuple[str, str, str | Diagnostic]] = []
    for file, relative in _policy_files(paths):
        try:
            text: str | Diagnostic = read_text(file, "policy file")
        except InputError as exc:
            text = Diagnostic(str(file), 0, 0, None, None, str(exc).removeprefix(f"{file}: "))
        files.append((str(file), relative, text))
    readable = [(f, r, t) for f, r, t in files if isinstance(t, str)]
    if len(readable) == len(files) and readable:
        cached = bundle_cache.load(readable)  # a clean set loaded before: no YAML, no lint
        if cached is not None:
            return cached
    docs: list[PolicyDocument] = []
    problems: list[Diagnostic] = []
    for name, relative, text in files:
        if isinstance(text, Diagnostic):
            problems.append(text)
            continue
        found, issues = parse_documents(text, name, relative)
        docs.extend(doc for doc in found if not _other_kind(doc))
        problems.extend(issues)
    if not docs and not problems:
        where = ", ".join(str(p) for p in paths) or "(no paths)"
        problems.append(Diagnostic(where, 0, 0, None, None,
                                   "no policy documents found; expected *.yaml policy files"))
    problems.extend(lint_documents(docs))
    if problems:
        raise PolicyLoadError(problems)
    bundle_cache.store(readable, docs)
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
    layers: list[Any] = []
    if params_file is not None:
        layers.append(load_data(params_file, "params") or {})
    for text in sets:
        policy, param, value = parse_set(text)
        layers.append({policy: {param: value}})
    return merge_overrides(*layers)
