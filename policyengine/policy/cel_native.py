"""The native CEL runtime, cel-expr-python (private to the CEL seam).

Only rules that :mod:`.cel_qualify` proved free of the known semantic
differences run here, on plain normalised JSON data (every number a double,
as the reference sees it). A native result is used only when it is a bool;
anything else (an error, a missing field) is answered by the reference, so
every error outcome and every message is the reference's. The native
runtime has no cost budget: :func:`within_budget` bounds each evaluation
from the rule's :class:`~.cel_qualify.CostShape` and the input sizes before
it runs.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policyengine.policy.cel_qualify import CostShape

try:
    import cel_expr_python.cel as _cel
except ImportError:  # pragma: no cover - a wheel exists for every platform we ship
    _cel = None

__all__ = ["AVAILABLE", "NativeProgram", "activation", "compile_native", "input_sizes"]

AVAILABLE = _cel is not None
"""Whether cel-expr-python is importable here."""

_ENV: Any = None


def _env() -> Any:
    global _ENV
    if _ENV is None:
        dyn = _cel.Type.DYN
        _ENV = _cel.NewEnv(variables={"card": dyn, "event": dyn, "history": dyn, "params": dyn,
                                      "now": _cel.Type.TIMESTAMP})
    return _ENV


@dataclass(frozen=True)
class NativeProgram:
    """One qualified expression compiled natively, with its cost shape."""

    expression: Any
    shape: CostShape

    def evaluate(self, act: Any) -> bool | None:
        """The rule's bool, or None when the reference must answer (any non-bool)."""
        value = self.expression.eval(act)
        result = value.value() if value.type() == _cel.Type.BOOL else None
        return result if isinstance(result, bool) else None


def compile_native(source: str, shape: CostShape) -> NativeProgram | None:
    """Compile ``source`` natively, or None when cel-expr-python refuses it."""
    if _cel is None:
        return None
    try:
        return NativeProgram(_env().compile(source), shape)
    except Exception:
        return None


def activation(plain: Mapping[str, Any], now: _dt.datetime) -> Any:
    """A native activation over plain data (card, event, history, params)."""
    return _env().Activation({**plain, "now": now.astimezone(_dt.UTC)})


def input_sizes(*values: Any) -> tuple[int, int]:
    """(longest list, largest charge one step can make) over ``values``.

    The charge bound is the count of every list and map element plus the
    longest string: the most one ``==``, ``+`` or comprehension step charges
    in the reference (:mod:`.limits`).
    """
    longest, elements, chars = 0, 0, 0
    stack = list(values)
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            elements += len(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            longest = max(longest, len(value))
            elements += len(value)
            stack.extend(value)
        elif isinstance(value, str):
            chars = max(chars, len(value))
    return longest, elements + chars
