"""Explanations: the values a rule read, and the field whose absence broke it.

Both work on the member paths the CEL seam found at compile time
(``("card", "fairness", None, "value")``, None meaning every element) and
on the plain, number-normalised input data. Output is bounded: at most
:data:`MAX_VALUES` values per rule, long strings cut, big lists and objects
summarised, so a decision stays small whatever the card holds.
Pure functions; no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["MAX_VALUES", "compile_reads", "missing_field", "render_path", "values_read"]

MAX_VALUES = 20
"""Values shown per rule."""
_MAX_TEXT = 120
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

ReadPath = tuple[Any, ...]
"""Steps: str field, int index, None = every element, tuple = key read from that path."""


def _key(step: Any, data: dict[str, Any]) -> Any:
    """Resolve a key-path step (``card.risk_tier``) to its value, or None."""
    if not isinstance(step, tuple):
        return step
    value: Any = data
    for part in step:
        in_map = isinstance(value, dict) and isinstance(part, str) and part in value
        in_list = (isinstance(value, list) and isinstance(part, int)
                   and -len(value) <= part < len(value))
        if not (in_map or in_list):
            return None
        value = value[part]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, str | int) and not isinstance(value, bool) else None


def render_path(path: ReadPath) -> str:
    """``card.fairness[0].value`` style text for a concrete path."""
    out = str(path[0])
    for step in path[1:]:
        if step is None:
            out += "[*]"
        elif isinstance(step, int):
            out += f"[{step}]"
        elif _IDENT.match(step):
            out += f".{step}"
        else:
            out += f"[{json.dumps(step)}]"
    return out


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def missing_field(paths: tuple[ReadPath, ...], data: dict[str, Any]) -> str | None:
    """Describe the first path (shortest first) that cannot be resolved in ``data``.

    Returns e.g. ``"card.fairness is missing"`` or ``"card.slo is a string,
    expected an object"``; None when every path resolves.
    """
    for raw in paths:
        path = tuple(_key(step, data) for step in raw)
        if path and path[0] in data:
            problem = _walk(data[path[0]], path, 1, (path[0],))
            if problem:
                return problem
    return None


def _walk(value: Any, path: ReadPath, i: int, here: ReadPath) -> str | None:
    if i == len(path):
        return None
    step = path[i]
    if step is None:
        items = (enumerate(value) if isinstance(value, list)
                 else value.items() if isinstance(value, dict) else None)
        if items is None:
            return f"{render_path(here)} is {_kind(value)}, expected a list"
        for key, item in items:
            problem = _walk(item, path, i + 1, (*here, key))
            if problem:
                return problem
        return None
    if isinstance(step, int):
        if not isinstance(value, list):
            return f"{render_path(here)} is {_kind(value)}, expected a list"
        if not -len(value) <= step < len(value):
            return f"{render_path((*here, step))} is missing (list has {len(value)} items)"
        return _walk(value[step], path, i + 1, (*here, step))
    if not isinstance(value, dict):
        return f"{render_path(here)} is {_kind(value)}, expected an object"
    if step not in value:
        return f"{render_path((*here, step))} is missing"
    return _walk(value[step], path, i + 1, (*here, step))


def _expand(value: Any, path: ReadPath, i: int, here: ReadPath) -> Iterator[tuple[ReadPath, Any]]:
    if i == len(path):
        yield here, value
        return
    step = path[i]
    if step is None:
        items = (enumerate(value) if isinstance(value, list)
                 else value.items() if isinstance(value, dict) else ())
        for key, item in items:
            yield from _expand(item, path, i + 1, (*here, key))
    elif isinstance(step, int):
        if isinstance(value, list) and -len(value) <= step < len(value):
            yield from _expand(value[step], path, i + 1, (*here, step))
    elif isinstance(value, dict) and step in value:
        yield from _expand(value[step], path, i + 1, (*here, step))


def _shown(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _MAX_TEXT:
        return value[:_MAX_TEXT] + "..."
    if isinstance(value, list | dict):
        text = json.dumps(value, sort_keys=True, default=str)
        if len(text) > _MAX_TEXT:
            return (f"<list of {len(value)} items>" if isinstance(value, list)
                    else f"<object with {len(value)} fields>")
    return value


def values_read(paths: tuple[ReadPath, ...], data: dict[str, Any]) -> dict[str, Any]:
    """Up to :data:`MAX_VALUES` ``{rendered path: value}`` pairs for ``paths``."""
    out: dict[str, Any] = {}
    for raw in paths:
        path = tuple(_key(step, data) for step in raw)
        if not path or path[0] not in data:
            continue
        for concrete, value in _expand(data[path[0]], path, 1, (path[0],)):
            if len(out) >= MAX_VALUES:
                out["..."] = "more values not shown"
                return out
            out[render_path(concrete)] = _shown(value)
    return out


def _fragment(step: str | int) -> str:
    """One concrete step as :func:`render_path` writes it."""
    if isinstance(step, int):
        return f"[{step}]"
    return f".{step}" if _IDENT.match(step) else f"[{json.dumps(step)}]"


def compile_reads(paths: tuple[ReadPath, ...]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """:func:`values_read` for ``paths``, planned once (at compile time).

    Field steps are rendered once; each path is expanded level by level
    (which yields its values in the same order as :func:`values_read`'s
    depth-first walk), so the result is the same dict for the same data.
    """
    plan = tuple((p[0], tuple((s, _fragment(s) if isinstance(s, str | int) else None)
                              for s in p[1:])) for p in paths if p)

    def read(data: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for root, steps in plan:
            if root not in data:
                continue
            level = [(str(root), data[root])]
            for step, fragment in steps:
                if type(step) is tuple:
                    step = _key(step, data)
                    fragment = None if step is None else _fragment(step)
                level = _step(level, step, fragment)
            for text, value in level:
                if len(out) >= MAX_VALUES:
                    out["..."] = "more values not shown"
                    return out
                kind = type(value)
                out[text] = (value if kind is float or kind is bool or value is None
                             or (kind is str and len(value) <= _MAX_TEXT) else _shown(value))
        return out
    return read


def _step(level: list[tuple[str, Any]], step: Any, fragment: str | None) -> list[tuple[str, Any]]:
    nxt: list[tuple[str, Any]] = []
    if step is None:
        for text, value in level:
            if isinstance(value, list):
                nxt.extend((f"{text}[{i}]", item) for i, item in enumerate(value))
            elif isinstance(value, dict):
                nxt.extend((text + _fragment(key), item) for key, item in value.items())
    elif isinstance(step, int):
        for text, value in level:
            if isinstance(value, list) and -len(value) <= step < len(value):
                nxt.append((text + str(fragment), value[step]))
    else:
        for text, value in level:
            if isinstance(value, dict) and step in value:
                nxt.append((text + str(fragment), value[step]))
    return nxt
