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
column when known, and the JSON path. This module reads files and JSON and
picks the syntax; the limits and data checks live in
:mod:`policyengine._input_checks` and the YAML loader in
:mod:`policyengine._yaml_input`, and callers import every name from here.
Policies are composed by the YAML loader too (with marks, see
:func:`compose_all`); turning their nodes into data with source positions
stays in :mod:`policyengine.policy.load`. Nothing here validates schemas or
evaluates.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Any

from policyengine._input_checks import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NUMBER_CHARS,
    MAX_YAML_NODES,
    Bad,
    DocumentError,
    Duplicated,
    check_data,
    decode,
    json_path,
    no_nul,
    short,
)
from policyengine._yaml_input import Loader, PyLoader, check_node, compose_all, parse_yaml

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


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out and not isinstance(out, Duplicated):
            out = Duplicated(out)
            out.key = key
        out[key] = value
    return out


def _int(text: str) -> Any:
    if len(text) > MAX_NUMBER_CHARS:
        return Bad(f"number {short(text)} is out of range; expected at most "
                    f"{sys.float_info.max:.3g} in magnitude")
    return int(text)


def _float(text: str) -> Any:
    value = float(text)
    if math.isfinite(value):
        return value
    return Bad(f"number {short(text)} is out of range; expected at most "
                f"{sys.float_info.max:.3g} in magnitude")


def _constant(text: str) -> Any:
    return Bad(f"{text} is not a number JSON allows; expected a finite number")


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
    text = decode(text, source) if isinstance(text, bytes) else no_nul(text, source)
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
