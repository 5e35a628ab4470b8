"""RFC 8785 (JSON Canonicalization Scheme) bytes for envelopes and payloads.

Owns the one function that turns a JSON value into the bytes the log hashes.
Two paths give the same bytes:

- a fast path through :func:`json.dumps` with sorted keys and no whitespace,
  which equals RFC 8785 output only for objects built from ``str``, ``bool``,
  ``None``, integers of magnitude below 2**53, lists and dicts whose keys lie
  in the Basic Multilingual Plane (RFC 8785 §3.2.3 sorts keys by UTF-16 code
  units; Python sorts by code point, and the two orders differ only above
  U+FFFF);
- the ``rfc8785`` package for everything else (floats need the ECMAScript
  number serialisation of RFC 8785 §3.2.2.3).

Envelopes must take the fast path: :func:`dumps_envelope` refuses floats and
large integers instead of falling back, so the stored envelope bytes never
depend on float formatting. Storage and hashing are not handled here.
"""

from __future__ import annotations

from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

import rfc8785

from audit.errors import CanonicalizationError

__all__ = ["dumps", "dumps_envelope", "json_string"]

# RFC 8785 §3.2.2.3 / I-JSON (RFC 7493 §2.2): integers are exact only within
# the IEEE 754 double range of 53 bits.
_MAX_SAFE_INT = 2**53 - 1

def _not_json(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not a JSON value")


# The C encoder json.dumps(ensure_ascii=False, sort_keys=True, separators=(",", ":"),
# allow_nan=False) builds on every call, built once. No circular-reference markers:
# every value is walked first (_fast_path_problem, _jcs_ready), which a cycle
# never gets through.
_c_encode = c_make_encoder(
    None, _not_json, encode_basestring, None, ":", ",", True, False, False)


def _fast_path_problem(obj: Any, where: str) -> str | None:
    """Return why ``obj`` cannot take the fast path, or None when it can."""
    if obj is None or obj is True or obj is False or type(obj) is str:
        return None
    if type(obj) is int:
        if -_MAX_SAFE_INT <= obj <= _MAX_SAFE_INT:
            return None
        return f"{where}: integer {obj} is outside +-(2**53-1)"
    if type(obj) is dict:
        for key, value in obj.items():
            if type(key) is not str:
                return f"{where}: object key {key!r} is not a string"
            # ASCII keys (nearly all) exit at once; otherwise the largest code
            # point decides whether UTF-16 order can differ (RFC 8785 §3.2.3).
            if not key.isascii() and max(key) > "\uffff":
                return f"{where}: object key {key!r} has a character above U+FFFF"
            if type(value) is str:
                continue
            problem = _fast_path_problem(value, f"{where}.{key}")
            if problem is not None:
                return problem
        return None
    if type(obj) is list:
        for i, value in enumerate(obj):
            problem = _fast_path_problem(value, f"{where}[{i}]")
            if problem is not None:
                return problem
        return None
    if type(obj) is float:
        return f"{where}: float {obj!r} is not allowed"
    return f"{where}: {type(obj).__name__} is not a JSON value"


def _encode_fast(obj: Any) -> bytes:
    try:
        return "".join(_c_encode(obj, 0)).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalizationError(
            f"string holds a lone surrogate: expected valid unicode, got {exc.reason}"
        ) from exc


def json_string(value: str, where: str) -> bytes:
    """Return the RFC 8785 bytes of one string, quotes included (RFC 8785 §3.2.2.2).

    The escaping is the fast path's (``encode_basestring`` is what the
    encoder applies to every string when ``ensure_ascii`` is off).

    Raises:
        CanonicalizationError: ``value`` is not a ``str`` or holds a lone surrogate.
    """
    if type(value) is not str:
        raise CanonicalizationError(f"{where}: {type(value).__name__} is not a JSON string")
    try:
        return encode_basestring(value).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalizationError(
            f"{where}: string holds a lone surrogate: expected valid unicode, got {exc.reason}"
        ) from exc


def dumps_envelope(obj: dict[str, Any]) -> bytes:
    """Return the RFC 8785 bytes of an envelope, refusing floats and big integers.

    Args:
        obj: the envelope (a JSON object of strings, integers, booleans,
            null, nested objects and lists).

    Returns:
        UTF-8 bytes identical to RFC 8785 canonical JSON.

    Raises:
        CanonicalizationError: a float, an integer beyond 2**53-1, a non-string
            key, a key above U+FFFF, or a value that is not JSON.
    """
    if type(obj) is not dict:
        raise CanonicalizationError(
            f"envelope must be a JSON object: expected dict, got {type(obj).__name__}"
        )
    problem = _fast_path_problem(obj, "envelope")
    if problem is not None:
        raise CanonicalizationError(
            f"{problem}; envelopes hold only strings, integers within 2**53, booleans, "
            "null, lists and objects with BMP keys"
        )
    return _encode_fast(obj)


# RFC 8785 §3.2.2.3 prints a number as ECMAScript's Number::toString does. For
# floats Python's repr has the same shortest digits and differs only in form:
# an integral float prints "1.0" (ECMAScript: "1"), and repr switches to
# exponent form below 1e-4 (ECMAScript: below 1e-6) and from 1e16 (ECMAScript:
# from 1e21). So an integral float below 2**53 prints as the int it equals,
# a non-integral float of magnitude 1e-4 or more prints as its repr, and
# every other float takes the rfc8785 package.
_MIN_PLAIN_FRACTION = 1e-4
_INFINITY = float("inf")


class _Slow(Exception):
    """The value needs the rfc8785 package (astral key, odd float, big int)."""


def _jcs_ready(obj: Any) -> Any:
    """``obj`` with integral floats as ints, so json.dumps prints it as RFC 8785 does.

    Returns the same object where nothing changes (strings, and containers
    without floats), so the common case allocates little.

    Raises:
        _Slow: a value whose RFC 8785 form json.dumps cannot print.
    """
    kind = type(obj)
    if kind is str or obj is None or kind is bool:
        return obj
    if kind is float:
        if obj.is_integer():
            if -_MAX_SAFE_INT <= obj <= _MAX_SAFE_INT:
                return int(obj)
        elif _MIN_PLAIN_FRACTION <= abs(obj) < _INFINITY:  # NaN fails every comparison
            return obj
        raise _Slow
    if kind is int:
        if -_MAX_SAFE_INT <= obj <= _MAX_SAFE_INT:
            return obj
        raise _Slow
    if kind is dict:
        out = None
        for key, value in obj.items():
            if type(key) is not str or (not key.isascii() and max(key) > "\uffff"):
                raise _Slow
            kind = type(value)  # strings and safe integers inline: no call for the common leaves
            if kind is str or (kind is int and -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT):
                continue
            ready = _jcs_ready(value)
            if ready is not value:
                if out is None:
                    out = dict(obj)
                out[key] = ready
        return obj if out is None else out
    if kind is list:
        items = None
        for i, value in enumerate(obj):
            kind = type(value)
            if kind is str or (kind is int and -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT):
                continue
            ready = _jcs_ready(value)
            if ready is not value:
                if items is None:
                    items = list(obj)
                items[i] = ready
        return obj if items is None else items
    raise _Slow


def dumps(obj: Any) -> bytes:
    """Return the RFC 8785 canonical bytes of any JSON value.

    Takes the fast path (:func:`json.dumps`, floats re-typed by
    :func:`_jcs_ready`) when it is byte-identical to RFC 8785 and the
    ``rfc8785`` package otherwise (tiny or huge floats, big integers, astral
    keys, NaN and infinity).

    Args:
        obj: a JSON value built from dict, list, str, int, float, bool, None.

    Returns:
        UTF-8 bytes of the canonical form.

    Raises:
        CanonicalizationError: the value is not representable (NaN, infinity,
            integers beyond the I-JSON range, non-JSON types, lone surrogates).
    """
    try:
        ready = _jcs_ready(obj)
    except _Slow:
        pass
    else:
        return _encode_fast(ready)
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise CanonicalizationError(f"value is not canonical JSON: {exc}") from exc
