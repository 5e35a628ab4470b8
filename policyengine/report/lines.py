"""Where a value sits in the card file: value path -> 1-based line.

Rule results name the values they read by path (``card.fairness[0].value``,
rendered by :func:`policyengine.policy.explain.render_path`); annotations
(GitHub workflow commands, SARIF regions) point at that line of the card.
:func:`card_lines` indexes every path of a card's text once: YAML through the
node marks of ``yaml.compose`` (no objects are constructed, aliases are walked
once), JSON through a small scanner that records where each member starts, as
:func:`policyengine.cards.validate.parse_document` tells them apart (text that
starts with ``{`` is JSON). Pure; text that does not parse gives no lines, so
annotations fall back to line 1.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable
from typing import Any

import yaml

from policyengine.policy.explain import render_path

__all__ = ["card_lines"]

_Step = str | int
_Add = Callable[[tuple[_Step, ...], int], None]


def card_lines(text: str, root: str = "card") -> dict[str, int]:
    """``{path: line}`` for every member and element of the card in ``text``.

    A mapping member's line is its key's line (where ``value: 0.72`` is read);
    a list element's line is where the element starts. The root is left out:
    it says nothing a line-1 fallback does not.
    """
    out: dict[str, int] = {}

    def add(path: tuple[_Step, ...], line: int) -> None:
        # A repeated JSON key: the last wins, as in json.loads.
        out[render_path((root, *path))] = line

    try:
        if text.lstrip().startswith("{"):
            _JsonIndex(text, add).value(_JsonIndex.skip_ws(text, 0), ())
        else:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            if node is not None:
                _yaml_walk(node, (), add, set())
    except (ValueError, yaml.YAMLError, RecursionError, IndexError):
        return {}  # not parseable here: annotations fall back to line 1
    return out


def _yaml_walk(node: yaml.Node, path: tuple[_Step, ...], add: _Add, seen: set[int]) -> None:
    if id(node) in seen:  # an alias: walked once, so a YAML bomb stays linear
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                add((*path, key.value), key.start_mark.line + 1)
                _yaml_walk(value, (*path, key.value), add, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            add((*path, index), item.start_mark.line + 1)
            _yaml_walk(item, (*path, index), add, seen)


class _JsonIndex:
    """Walks JSON text (RFC 8259) recording the line where each member starts."""

    def __init__(self, text: str, add: _Add) -> None:
        self.text = text
        self.add = add
        self.newlines = [i for i, ch in enumerate(text) if ch == "\n"]
        self.decoder = json.JSONDecoder()

    @staticmethod
    def skip_ws(text: str, pos: int) -> int:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        return pos

    def line(self, pos: int) -> int:
        return bisect.bisect_left(self.newlines, pos) + 1

    def expect(self, pos: int, char: str) -> int:
        pos = self.skip_ws(self.text, pos)
        if self.text[pos] != char:
            raise ValueError(f"expected {char!r} at {pos}")
        return pos + 1

    def value(self, pos: int, path: tuple[_Step, ...]) -> int:
        """Index the value starting at ``pos``; return the position after it."""
        char = self.text[pos]
        if char == "{":
            return self.members(pos + 1, path)
        if char == "[":
            return self.elements(pos + 1, path)
        _, end = self.decoder.raw_decode(self.text, pos)  # a scalar
        return int(end)

    def members(self, pos: int, path: tuple[_Step, ...]) -> int:
        pos = self.skip_ws(self.text, pos)
        if self.text[pos] == "}":
            return pos + 1
        while True:
            key: Any
            key, end = self.decoder.raw_decode(self.text, pos)
            self.add((*path, str(key)), self.line(pos))
            pos = self.skip_ws(self.text, self.expect(end, ":"))
            pos = self.skip_ws(self.text, self.value(pos, (*path, str(key))))
            if self.text[pos] == "}":
                return pos + 1
            pos = self.skip_ws(self.text, self.expect(pos, ","))

    def elements(self, pos: int, path: tuple[_Step, ...]) -> int:
        pos = self.skip_ws(self.text, pos)
        if self.text[pos] == "]":
            return pos + 1
        index = 0
        while True:
            self.add((*path, index), self.line(pos))
            pos = self.skip_ws(self.text, self.value(pos, (*path, index)))
            index += 1
            if self.text[pos] == "]":
                return pos + 1
            pos = self.skip_ws(self.text, self.expect(pos, ","))
