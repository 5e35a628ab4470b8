"""A policy document as loaded: plain data plus the source mark of every node.

Owns :class:`PolicyDocument`, the type loading produces and linting, compiling
and reporting read: JSON paths map to file positions, and a position inside a
CEL scalar maps back to the file (block scalars fold or keep lines). It reads
no files (``load.py`` does) and checks nothing (``lint.py`` does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from policyengine.errors import Diagnostic

__all__ = ["JsonPath", "PolicyDocument", "Span"]

JsonPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Span:
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
    path: str = ""
    """The file's path relative to the policies root it was found under (a file
    named directly: its name), as the ``policy_bundle`` entry records it; with
    ``text``, part of the bundle digest (``compile.py``). Empty: the file's name."""
    marks: dict[JsonPath, tuple[int, int]] = field(default_factory=dict, repr=False)
    """JSON path -> 0-based (line, col) of the value node."""
    key_marks: dict[JsonPath, tuple[int, int]] = field(default_factory=dict, repr=False)
    """JSON path -> 0-based (line, col) of the mapping key naming it."""
    spans: dict[JsonPath, Span] = field(default_factory=dict, repr=False)
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


def _align(value: str, text: str, span: Span, offset: int) -> int | None:
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
