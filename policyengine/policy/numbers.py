"""Number normalisation: one decision whichever way a number was written.

JSON and YAML do not distinguish ``1`` from ``1.0`` in meaning, but CEL does:
cel-python raises "no such overload" for ``1 >= 0.9`` (int against double).
So a card saying ``"value": 1`` and one saying ``"value": 1.0`` could give
different decisions. This module fixes that in two steps:

1. Every number that comes from data (card, event, history, params) becomes
   a CEL ``double`` (:func:`to_cel`, :func:`normalise`). ``0.93``, ``93e-2``,
   ``1`` and ``1.0`` are then the same value. Ints beyond 2**53 lose
   precision; no field of a model card needs them. A number no double can
   hold (``10**400``, ``nan``, ``inf``: no JSON Schema ``number`` is one) is
   refused as bad input naming its JSON path, never an OverflowError.
2. Ints still arise inside expressions: literals (``365``) and ``size()``.
   The CEL seam (:mod:`policyengine.policy.cel`) compares numbers across
   int/uint/double by value (CEL spec "heterogeneous numeric comparison",
   cel-spec langdef "Numeric values") via :func:`compare_operands`, and
   promotes mixed int/double arithmetic to double via :func:`arith_operands`
   (an extension of CEL, documented in docs/policy-language.md). Pure int
   arithmetic stays int, so list indexes such as ``xs[size(xs) - 1]`` work.

Booleans are never numbers here, although Python's ``bool`` is an ``int``.
This module owns these conversions only; it does no I/O.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping
from typing import Any

from celpy import celtypes

from policyengine.errors import InputError

__all__ = ["arith_operands", "as_double", "compare_operands", "normalise", "plain_to_cel", "to_cel"]

_INTS = (celtypes.IntType, celtypes.UintType)


def _double(value: int | float, path: str) -> float:
    """``value`` as a finite double, or bad input naming ``path`` (never OverflowError)."""
    try:
        result = float(value)
    except OverflowError:
        result = math.inf
    if math.isfinite(result):
        return result
    shown = "nan" if result != result else ("a number" if isinstance(value, int) else value)
    raise InputError(f"{path}: {shown} is out of range; expected a finite number of at most "
                     "1.8e308 in magnitude")


def normalise(value: Any, path: str = "$") -> Any:
    """Plain JSON data with every number as a float (bools untouched).

    Args:
        value: JSON-like data (dict, list, str, int, float, bool, None).
        path: JSON path of ``value``, named when a number is refused.

    Returns:
        A copy in which ints are floats; the input digest and the values a
        rule read are computed from this form.

    Raises:
        InputError: a number no double holds (``10**400``, nan, inf).
    """
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return _double(value, path)
    if isinstance(value, Mapping):
        return {str(k): normalise(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalise(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, _dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, _dt.date):
        return value.isoformat()
    return value


def to_cel(value: Any) -> Any:
    """Convert JSON-like data to CEL values, every number a ``double``.

    Args:
        value: JSON-like data, as for :func:`normalise`.

    Returns:
        celtypes values (MapType, ListType, StringType, DoubleType, BoolType,
        None for null).

    Raises:
        TypeError: for values JSON cannot hold (sets, objects).
        InputError: a number no double holds.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, int | float):
        return celtypes.DoubleType(_double(value, "$"))
    if isinstance(value, str):
        return celtypes.StringType(value)
    if isinstance(value, Mapping):
        return celtypes.MapType(
            {celtypes.StringType(str(k)): to_cel(v) for k, v in value.items()}
        )
    if isinstance(value, list | tuple):
        return celtypes.ListType([to_cel(v) for v in value])
    if isinstance(value, _dt.datetime):
        return celtypes.TimestampType(value)
    if isinstance(value, _dt.date):
        return celtypes.StringType(value.isoformat())
    raise TypeError(f"expected JSON data, got {type(value).__name__}")


def plain_to_cel(value: Any) -> Any:
    """:func:`to_cel` of plain data (dict, list, str, float, bool, None only), faster.

    For data that went through the fast path's walk (every int already a
    float); anything else, a non-finite float included, takes :func:`to_cel`
    so errors stay the reference's.
    """
    kind = type(value)
    if kind is str:
        return celtypes.StringType(value)
    if kind is float and math.isfinite(value):
        return celtypes.DoubleType(value)
    if kind is dict:
        return celtypes.MapType({celtypes.StringType(k): plain_to_cel(v)
                                 for k, v in value.items()})
    if kind is list:
        return celtypes.ListType([plain_to_cel(v) for v in value])
    if kind is bool:
        return celtypes.BoolType(value)
    return to_cel(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool | celtypes.BoolType)


def as_double(value: Any) -> Any:
    """Re-wrap a plain Python float as a CEL double.

    cel-python 0.5's DoubleType arithmetic returns plain ``float``
    (``0.93 * 2``), which its comparisons then reject; arithmetic results
    pass through here so they stay CEL doubles.
    """
    return celtypes.DoubleType(value) if type(value) is float else value


def compare_operands(left: Any, right: Any) -> tuple[Any, Any]:
    """Make two CEL numbers comparable by value (int/uint against double).

    Non-numbers pass through unchanged, so CEL's own type errors still apply
    (``"a" < 1`` is still "no such overload").
    """
    if type(left) is type(right) or not (_is_number(left) and _is_number(right)):
        return left, right
    if isinstance(left, float) or isinstance(right, float):
        return celtypes.DoubleType(float(left)), celtypes.DoubleType(float(right))
    # int against uint: compare as Python ints (exact).
    return celtypes.IntType(int(left)), celtypes.IntType(int(right))


def arith_operands(left: Any, right: Any) -> tuple[Any, Any]:
    """Promote mixed int/double operands of + - * / % to double."""
    if type(left) is type(right) or not (_is_number(left) and _is_number(right)):
        return left, right
    if isinstance(left, float) or isinstance(right, float):
        lf, rf = float(left), float(right)
        if math.isfinite(lf) and math.isfinite(rf):
            return celtypes.DoubleType(lf), celtypes.DoubleType(rf)
    return left, right
