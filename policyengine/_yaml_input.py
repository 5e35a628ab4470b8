"""The bounded YAML reader: one safe, JSON-shaped loader and its node checks.

Owns :class:`Loader` (libyaml's parser when present) and :class:`PyLoader`
(pure Python), :func:`compose_all` (policy files, whose nodes keep their
source marks), :func:`parse_yaml` and :func:`check_node`, which walks a
composed document with its aliases expanded before anything is constructed
("billion laughs", depth, duplicate keys, number literals). Callers import
these from :mod:`policyengine.inputs`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from policyengine._input_checks import (
    MAX_DEPTH,
    MAX_NUMBER_CHARS,
    MAX_YAML_NODES,
    DocumentError,
    JsonPath,
    check_data,
    no_nul,
    refuse,
    short,
)

__all__ = ["Loader", "PyLoader", "check_node", "compose_all", "parse_yaml"]

_CParser = getattr(getattr(yaml, "cyaml", None), "CParser", None)
_MERGE = "tag:yaml.org,2002:merge"


class _BoundedComposer(Composer):  # type: ignore[misc]  # PyYAML ships no type hints
    """PyYAML's composer with a depth limit: it recurses once per level, so a
    100,000-level flow document would otherwise exhaust the stack."""

    max_depth: int = MAX_DEPTH
    source: str = "document"
    _depth: int = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self._depth >= self.max_depth:
            mark = self.peek_event().start_mark
            raise DocumentError(self.source, f"nesting deeper than {self.max_depth} levels; "
                                "flatten the document", "depth", mark=mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _LoaderBase(_BoundedComposer, SafeConstructor, Resolver):  # type: ignore[misc]
    """What both loaders share: the bounded composer, the checks, JSON-shaped data."""

    def __init__(self, stream: str, source: str = "document",
                 max_depth: int = MAX_DEPTH) -> None:
        self._init_parser(stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self.source, self.max_depth = source, max_depth

    def _init_parser(self, stream: str) -> None:
        # Each loader names its parser (PyLoader: pure Python; Loader: libyaml when present).
        raise TypeError(f"{type(self).__name__} must choose a YAML parser")

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        check_node(node, self.source, max_depth=self.max_depth)
        data = self.construct_document(node)
        check_data(data, self.source, max_depth=self.max_depth)
        return data

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[str, Any]:
        # check_node has refused duplicate and non-scalar keys; `<<` merges stay YAML's.
        self.flatten_mapping(node)
        return {str(k.value): self.construct_object(v, deep=deep) for k, v in node.value}


class PyLoader(_LoaderBase, yaml.reader.Reader, yaml.scanner.Scanner,  # type: ignore[misc]
               yaml.parser.Parser):
    """:class:`Loader` on PyYAML's pure-Python parser (stricter about tabs than libyaml;
    the Hugging Face importer reports third-party front matter with it)."""

    def _init_parser(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)


class Loader(_LoaderBase, *((_CParser,) if _CParser else  # type: ignore[misc]
                            (yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser))):
    """The one YAML loader: safe, bounded, JSON-shaped, on libyaml's parser when present.

    Timestamps stay the strings written (as in JSON); YAML 1.2 / JSON
    exponent floats (``93e-2``) are numbers, as PyYAML's YAML 1.1 rules
    would make them strings; mapping keys are the key text. ``yaml.load(text,
    Loader=Loader)`` applies every check of :func:`parse_yaml`.
    """

    def _init_parser(self, stream: str) -> None:
        if _CParser:
            _CParser.__init__(self, stream)
        else:
            PyLoader._init_parser(self, stream)  # type: ignore[arg-type]


_LoaderBase.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_LoaderBase.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _yaml_error(source: str, exc: yaml.YAMLError) -> DocumentError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None)
    if isinstance(exc, yaml.reader.ReaderError):
        problem = f"unacceptable character #x{exc.character:04x} at offset {exc.position}"
    problem = problem or (str(exc).splitlines() or ["unreadable"])[0]
    return DocumentError(source, f"invalid YAML: {problem}", mark=mark)


def compose_all(text: str, source: str, *, max_depth: int = MAX_DEPTH) -> list[Any]:
    """Compose every YAML document of ``text`` (nodes keep their marks), each checked
    by :func:`check_node`; empty documents are None.

    Raises:
        DocumentError: invalid YAML or a refused document (with line and column).
    """
    loader = Loader(text, source, max_depth)
    try:
        nodes = []
        while loader.check_node():
            node = loader.get_node()
            check_node(node, source, max_depth=max_depth)
            nodes.append(node)
        return nodes
    except yaml.YAMLError as exc:
        raise _yaml_error(source, exc) from exc
    finally:
        loader.dispose()


def parse_yaml(text: str, source: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse one YAML document into plain JSON-like data under every limit.

    Raises:
        DocumentError: invalid YAML or a refused document.
    """
    loader = Loader(no_nul(text, source), source, max_depth)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise _yaml_error(source, exc) from exc
    finally:
        loader.dispose()


def _children(node: Any, path: JsonPath, source: str) -> Iterator[tuple[Any, JsonPath]]:
    """A node's children with their paths; refuses duplicate and non-scalar keys."""
    if isinstance(node, yaml.SequenceNode):
        yield from ((item, (*path, i)) for i, item in enumerate(node.value))
        return
    seen: set[str] = set()
    for key, value in node.value:
        if key.tag == _MERGE:
            yield value, path
            continue
        if not isinstance(key, yaml.ScalarNode):
            raise refuse(source, "mapping key is not a string", path, "value", key.start_mark)
        if key.value in seen:
            raise refuse(source, f"duplicate key {key.value!r}", path, "duplicate_key",
                          key.start_mark)
        seen.add(key.value)
        yield value, (*path, key.value)


def check_node(node: Any, source: str, *, max_depth: int = MAX_DEPTH) -> None:
    """Check a composed YAML node with its aliases expanded: at most
    :data:`MAX_YAML_NODES` nodes and ``max_depth`` levels, no key twice in one
    mapping, no number literal longer than a double's. The walk stops at the
    first problem, so it costs at most :data:`MAX_YAML_NODES` steps.

    Raises:
        DocumentError: naming the line, column and JSON path.
    """
    count = 0
    stack: list[tuple[Any, JsonPath, int]] = [(node, (), 0)]
    while stack:
        current, path, depth = stack.pop()
        count += 1
        if count > MAX_YAML_NODES:
            raise DocumentError(source, f"yaml expands to more than {MAX_YAML_NODES} nodes "
                                "(aliases repeated inside aliases?); write the data out "
                                "plainly", "nodes")
        if depth > max_depth:
            raise refuse(source, f"nesting deeper than {max_depth} levels", path, "depth",
                          current.start_mark)
        if not isinstance(current, yaml.ScalarNode):
            stack.extend((child, p, depth + 1) for child, p in _children(current, path, source))
        elif current.tag.endswith((":int", ":float")) and len(current.value) > MAX_NUMBER_CHARS:
            raise refuse(source, f"number {short(current.value)} is out of range", path,
                          "number", current.start_mark)
