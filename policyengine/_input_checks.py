"""The limits and checks every input document passes, whatever its syntax.

Owns the limits (:data:`MAX_FILE_BYTES`, :data:`MAX_DEPTH`,
:data:`MAX_YAML_NODES`), :class:`DocumentError` with its JSON paths, the
UTF-8 and NUL checks of raw text, and :func:`check_data`, the walk that
proves parsed data is JSON data a policy can read. The JSON and YAML readers
(:mod:`policyengine.inputs`, :mod:`policyengine._yaml_input`) build on it;
callers import everything from :mod:`policyengine.inputs`.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from policyengine.errors import InputError

__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "MAX_NUMBER_CHARS", "MAX_YAML_NODES", "Bad",
           "DocumentError", "Duplicated", "JsonPath", "check_data", "decode", "json_path",
           "no_nul", "refuse", "short"]

MAX_FILE_BYTES = 16 * 1024 * 1024
"""Largest policy, card, history, params or test file read (a card is kilobytes)."""

MAX_YAML_NODES = 1_000_000
"""Largest YAML document counted with its aliases expanded: ``&a [*b, *b, ...]``
nine deep ("billion laughs") is tiny on disk and exponential once walked."""

MAX_DEPTH = 64
"""Deepest nesting of mappings and lists (a card is about five deep). Deeper
documents are refused before anything recursive walks them."""

MAX_NUMBER_CHARS = 400
"""Longest number literal read: a double's largest value has 309 digits, so a
longer integer is out of range anyway and is refused without ``int()``."""

_MAX_INT = 2**53 - 1
"""Largest integer read: I-JSON (RFC 7493 §2.2) and so RFC 8785, which the log hashes
entries with, allow only integers a double holds exactly; a larger one would pass
``card validate`` and then fail when ``gate`` logs it."""
JsonPath = tuple[str | int, ...]



class DocumentError(InputError):
    """An input document refused by a check or limit (code ``bad_input``).

    ``kind`` says which check: ``syntax``, ``depth``, ``size``, ``encoding``,
    ``nodes``, ``duplicate_key``, ``number`` or ``value``; the service answers
    ``syntax`` with 400 and every other kind with 422.
    """

    code: ClassVar[str] = "bad_input"

    def __init__(self, source: str, problem: str, kind: str = "syntax", *, mark: Any = None,
                 line: int = 0, col: int = 0) -> None:
        if mark is not None:  # a PyYAML mark counts from 0
            line, col = mark.line + 1, mark.column + 1
        self.source, self.problem, self.kind, self.line, self.col = source, problem, kind, line, col
        self.path: tuple[str | int, ...] | None = None
        """JSON path of the refused value, when the check knows it."""
        super().__init__(f"{source}:{line}:{col}: {problem}" if line else f"{source}: {problem}")


def json_path(path: JsonPath) -> str:
    """``("metrics", 0, "value")`` as ``$.metrics[0].value``.

    A key's unprintable characters (controls, lone surrogates) are written as
    ``\\u`` and four hex digits (``\\ud800``): the path goes into one-line
    messages and JSON error bodies, and a lone surrogate cannot be encoded as
    UTF-8 at all.
    """
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{_printable(p)}" for p in path)


def _printable(text: str) -> str:
    if text.isprintable() and text.isascii():
        return text
    return "".join(c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF
                   else f"\\u{ord(c):04x}" for c in text)


def refuse(source: str, problem: str, path: JsonPath, kind: str,
            mark: Any = None) -> DocumentError:
    problem, _, hint = problem.partition("; ")
    shown = json_path(path)
    if len(shown) > 120:  # a recursive alias makes paths as long as the limit allows
        shown = f"{shown[:60]}...{shown[-50:]}"
    error = DocumentError(source, f"{problem} at {shown}" + (f"; {hint}" if hint else ""), kind,
                          mark=mark)
    error.path = path
    return error


def decode(raw: bytes, source: str) -> str:
    """UTF-8 bytes as text (a BOM is dropped); NUL bytes refused.

    Raises:
        DocumentError: not UTF-8 or holding a NUL byte, naming the byte offset.
    """
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(source, f"not UTF-8 text (byte {exc.start}); save the file as "
                            "UTF-8", "encoding") from exc
    return no_nul(text, source)


def no_nul(text: str, source: str) -> str:
    nul = text.find("\x00")
    if nul >= 0:
        raise DocumentError(source, f"NUL character at offset {nul}; expected a text document",
                            "encoding")
    return text


class Bad:
    """Placeholder the JSON hooks leave for a refused number; reported with its path."""

    def __init__(self, problem: str) -> None:
        self.problem, self.kind = problem, "number"


class Duplicated(dict[str, Any]):
    """A JSON object that named ``key`` twice (reported with its path)."""

    key: str = ""


def short(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:12]}...{text[-6:]} ({len(text)} characters)"



_SCALARS = (str, bool, int, float, type(None))


def _value_problem(value: Any) -> tuple[str, str] | None:
    """(problem, kind) for a value JSON data cannot hold, else None."""
    if isinstance(value, Bad):
        return value.problem, value.kind
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        if -_MAX_INT <= value <= _MAX_INT:
            return None
        return ("integer is out of range; expected at most 2**53-1 in magnitude (RFC 7493 "
                "I-JSON), or write it as a string", "number")
    if isinstance(value, float):
        if math.isnan(value):
            return "nan is not a number; expected a finite number", "number"
        return None if math.isfinite(value) else (
            f"number {value} is out of range; expected a finite number", "number")
    if isinstance(value, str):
        return _string_problem(value)
    return f"a {type(value).__name__} value is not JSON data", "value"


def _string_problem(text: str) -> tuple[str, str] | None:
    if "\x00" in text:
        return "string holds a NUL character", "encoding"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "string holds a lone surrogate; expected Unicode text", "encoding"
    return None


def check_data(data: Any, source: str, *, max_depth: int = MAX_DEPTH) -> None:
    """Check parsed data is JSON data a policy can read: finite numbers a double holds,
    clean strings, string keys, no key twice, at most ``max_depth`` levels.

    Raises:
        DocumentError: naming the source and the JSON path of the first problem.
    """
    stack: list[tuple[Any, JsonPath]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > max_depth:
            raise refuse(source, f"nesting deeper than {max_depth} levels", path, "depth")
        if isinstance(value, dict):
            if isinstance(value, Duplicated):
                raise refuse(source, f"duplicate key {value.key!r}", path, "duplicate_key")
            for key, item in value.items():
                problem = _string_problem(key) if isinstance(key, str) else (
                    "mapping key is not a string", "value")
                if problem:
                    raise refuse(source, problem[0], (*path, str(key)[:40]), problem[1])
                stack.append((item, (*path, key)))
        elif isinstance(value, list | tuple):
            stack.extend((item, (*path, i)) for i, item in enumerate(value))
        elif (problem := _value_problem(value)) is not None:
            raise refuse(source, problem[0], path, problem[1])
