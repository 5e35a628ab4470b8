"""The one bounded reader and parser of input documents (YAML and JSON).

Cards, events, histories, params, policy files and HTTP bodies all pass
through here, so every command and the service refuse the same inputs with
the same one-line message. What is refused, and why:

- files over :data:`MAX_FILE_BYTES`, bytes that are not UTF-8, NUL bytes;
- nesting deeper than :data:`MAX_DEPTH` (checked before the recursive parts
  of the YAML composer and the JSON decoder run, so no recursion error);
- YAML documents that expand to more than :data:`MAX_YAML_NODES` nodes
  through aliases ("billion laughs");
- a key written twice in one mapping (a card that says two things is
  ambiguous: the first or the last would each be a silent guess);
- numbers that no double can hold: ``nan``, ``inf``, ``1.0e+400``,
  ``10**400``, and integers beyond 2**53-1 (the log's RFC 8785 hashing
  refuses them); an integer literal longer than :data:`_MAX_NUMBER_CHARS` is
  refused before ``int()`` sees it (CPython refuses over 4300 digits with a
  ValueError, and converts long ones in quadratic time);
- strings holding NUL or lone surrogates (no log store nor UTF-8 encoder
  takes them), and YAML values that are not JSON data (``!!binary``, ...).

Each refusal is a :class:`DocumentError` naming the source, the line and
column when known, and the JSON path. Policies are composed here too (with
marks, see :func:`compose_all`); turning their nodes into data with source
positions stays in :mod:`policyengine.policy.load`. This module does no
schema validation and evaluates nothing.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from policyengine.errors import InputError

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_YAML_NODES",
    "DocumentError",
    "Loader",
    "PyLoader",
    "check_data",
    "check_node",
    "compose_all",
    "decode",
    "json_path",
    "load_document",
    "parse_document",
    "parse_json",
    "parse_yaml",
    "read_text",
]

MAX_FILE_BYTES = 16 * 1024 * 1024
"""Largest policy, card, history, params or test file read (a card is kilobytes)."""

MAX_YAML_NODES = 1_000_000
"""Largest YAML document counted with its aliases expanded: ``&a [*b, *b, ...]``
nine deep ("billion laughs") is tiny on disk and exponential once walked."""

MAX_DEPTH = 64
"""Deepest nesting of mappings and lists (a card is about five deep). Deeper
documents are refused before anything recursive walks them."""

_MAX_NUMBER_CHARS = 400
"""Longest number literal read: a double's largest value has 309 digits, so a
longer integer is out of range anyway and is refused without ``int()``."""

_MAX_INT = 2**53 - 1
"""Largest integer read: I-JSON (RFC 7493 §2.2) and so RFC 8785, which the log hashes
entries with, allow only integers a double holds exactly; a larger one would pass
``card validate`` and then fail when ``gate`` logs it."""
_JsonPath = tuple[str | int, ...]


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


def json_path(path: _JsonPath) -> str:
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


def _refuse(source: str, problem: str, path: _JsonPath, kind: str,
            mark: Any = None) -> DocumentError:
    problem, _, hint = problem.partition("; ")
    shown = json_path(path)
    if len(shown) > 120:  # a recursive alias makes paths as long as the limit allows
        shown = f"{shown[:60]}...{shown[-50:]}"
    error = DocumentError(source, f"{problem} at {shown}" + (f"; {hint}" if hint else ""), kind,
                          mark=mark)
    error.path = path
    return error


# --- bytes and text ---------------------------------------------------------------------


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
    return _no_nul(text, source)


def _no_nul(text: str, source: str) -> str:
    nul = text.find("\x00")
    if nul >= 0:
        raise DocumentError(source, f"NUL character at offset {nul}; expected a text document",
                            "encoding")
    return text


def read_text(path: str | Path, what: str = "file") -> str:
    """Read a UTF-8 file (a BOM is dropped) of at most :data:`MAX_FILE_BYTES`.

    Raises:
        DocumentError: unreadable, a directory, too big, not UTF-8 or holding
            NUL bytes; one line naming the file.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DocumentError(str(path), f"cannot read {what}: {size} bytes, limit "
                                f"{MAX_FILE_BYTES}", "size")
        raw = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise DocumentError(str(path), f"cannot read {what}: {reason}; expected a UTF-8 text "
                            "file", "encoding") from exc
    try:
        return decode(raw, str(path))
    except DocumentError as exc:
        raise DocumentError(str(path), f"cannot read {what}: {exc.problem}", exc.kind) from exc


# --- JSON -------------------------------------------------------------------------------


class _Bad:
    """Placeholder the JSON hooks leave for a refused number; reported with its path."""

    def __init__(self, problem: str) -> None:
        self.problem, self.kind = problem, "number"


class _Duplicated(dict[str, Any]):
    """A JSON object that named ``key`` twice (reported with its path)."""

    key: str = ""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out and not isinstance(out, _Duplicated):
            out = _Duplicated(out)
            out.key = key
        out[key] = value
    return out


def _short(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:12]}...{text[-6:]} ({len(text)} characters)"


def _int(text: str) -> Any:
    if len(text) > _MAX_NUMBER_CHARS:
        return _Bad(f"number {_short(text)} is out of range; expected at most "
                    f"{sys.float_info.max:.3g} in magnitude")
    return int(text)


def _float(text: str) -> Any:
    value = float(text)
    if math.isfinite(value):
        return value
    return _Bad(f"number {_short(text)} is out of range; expected at most "
                f"{sys.float_info.max:.3g} in magnitude")


def _constant(text: str) -> Any:
    return _Bad(f"{text} is not a number JSON allows; expected a finite number")


# A JSON string, a bracket, or a lone quote (an unterminated string: stop there and
# let the decoder report it). Possessive quantifiers keep the scan linear.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[\]{}]|"', re.S)


def _json_too_deep(text: str, max_depth: int) -> bool:
    depth = 0
    for match in _JSON_TOKEN.finditer(text):
        char = text[match.start()]
        if char in "[{":
            depth += 1
            if depth > max_depth:
                return True
        elif char in "]}":
            depth -= 1
        elif match.end() - match.start() == 1:
            break
    return False


def parse_json(text: str | bytes, source: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse one JSON document under every limit of this module.

    Args:
        text: the document (bytes are decoded as UTF-8).
        source: where it came from, named in every message.
        max_depth: deepest nesting accepted.

    Returns:
        Plain data: dict, list, str, int, float, bool, None.

    Raises:
        DocumentError: invalid JSON (kind ``syntax``, with line and column) or
            any refused input, naming its JSON path.
    """
    text = decode(text, source) if isinstance(text, bytes) else _no_nul(text, source)
    text = text.removeprefix("\ufeff")
    if _json_too_deep(text, max_depth):
        raise DocumentError(source, f"nesting deeper than {max_depth} levels; flatten the "
                            "document", "depth")
    try:
        data = json.loads(text, object_pairs_hook=_pairs, parse_int=_int,
                          parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise DocumentError(source, f"invalid JSON: {exc.msg}", line=exc.lineno,
                            col=exc.colno) from exc
    check_data(data, source, max_depth=max_depth)
    return data


# --- YAML -------------------------------------------------------------------------------

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
    loader = Loader(_no_nul(text, source), source, max_depth)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise _yaml_error(source, exc) from exc
    finally:
        loader.dispose()


def _children(node: Any, path: _JsonPath, source: str) -> Iterator[tuple[Any, _JsonPath]]:
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
            raise _refuse(source, "mapping key is not a string", path, "value", key.start_mark)
        if key.value in seen:
            raise _refuse(source, f"duplicate key {key.value!r}", path, "duplicate_key",
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
    stack: list[tuple[Any, _JsonPath, int]] = [(node, (), 0)]
    while stack:
        current, path, depth = stack.pop()
        count += 1
        if count > MAX_YAML_NODES:
            raise DocumentError(source, f"yaml expands to more than {MAX_YAML_NODES} nodes "
                                "(aliases repeated inside aliases?); write the data out "
                                "plainly", "nodes")
        if depth > max_depth:
            raise _refuse(source, f"nesting deeper than {max_depth} levels", path, "depth",
                          current.start_mark)
        if not isinstance(current, yaml.ScalarNode):
            stack.extend((child, p, depth + 1) for child, p in _children(current, path, source))
        elif current.tag.endswith((":int", ":float")) and len(current.value) > _MAX_NUMBER_CHARS:
            raise _refuse(source, f"number {_short(current.value)} is out of range", path,
                          "number", current.start_mark)


# --- plain data -------------------------------------------------------------------------

_SCALARS = (str, bool, int, float, type(None))


def _value_problem(value: Any) -> tuple[str, str] | None:
    """(problem, kind) for a value JSON data cannot hold, else None."""
    if isinstance(value, _Bad):
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
    stack: list[tuple[Any, _JsonPath]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > max_depth:
            raise _refuse(source, f"nesting deeper than {max_depth} levels", path, "depth")
        if isinstance(value, dict):
            if isinstance(value, _Duplicated):
                raise _refuse(source, f"duplicate key {value.key!r}", path, "duplicate_key")
            for key, item in value.items():
                problem = _string_problem(key) if isinstance(key, str) else (
                    "mapping key is not a string", "value")
                if problem:
                    raise _refuse(source, problem[0], (*path, str(key)[:40]), problem[1])
                stack.append((item, (*path, key)))
        elif isinstance(value, list | tuple):
            stack.extend((item, (*path, i)) for i, item in enumerate(value))
        elif (problem := _value_problem(value)) is not None:
            raise _refuse(source, problem[0], path, problem[1])


# --- files ------------------------------------------------------------------------------


def parse_document(text: str, *, source: str, json_only: bool = False,
                   max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON or YAML text: JSON when ``json_only``, the source ends in ``.json``
    or the text starts with ``{``/``[`` (JSON is YAML 1.2, but the JSON reader keeps
    exact numbers and reports JSON errors); YAML otherwise.

    Raises:
        DocumentError: one line naming the source, line and problem.
    """
    is_json = json_only or str(source).endswith(".json") or text.lstrip(
        "\ufeff \t\r\n").startswith(("{", "["))
    if is_json:
        return parse_json(text, source, max_depth=max_depth)
    return parse_yaml(text, source, max_depth=max_depth)


def load_document(path: str | Path, what: str = "file") -> Any:
    """Read and parse a JSON or YAML file under every limit of this module.

    Raises:
        DocumentError: the file cannot be read, parsed, or is refused (one line).
    """
    return parse_document(read_text(path, what), source=str(path))
