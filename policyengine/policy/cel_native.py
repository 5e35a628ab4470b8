"""The native CEL runtime, cel-expr-python (private to the CEL seam).

Only rules that :mod:`.cel_qualify` proved free of the known semantic
differences run here, on plain normalised JSON data (every number a double,
as the reference sees it). A native result is used only when it is a bool;
anything else (an error, a missing field) is answered by the reference, so
every error outcome and every message is the reference's. The native
runtime has no cost budget: the engine bounds each evaluation from the
rule's :class:`~.cel_qualify.CostShape` and the input sizes
(:func:`plain_and_sizes`) before it runs.

One :class:`NativeEnv` per compiled policy set declares card, event,
history, now and one params variable per policy, so a decision builds one
native activation for all its rules.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lark import Token, Tree

from policyengine.policy.cel_qualify import CostShape

try:
    import cel_expr_python.cel as _cel
except ImportError:  # pragma: no cover - a wheel exists for every platform we ship
    _cel = None

__all__ = ["AVAILABLE", "NativeEnv", "NativeProgram", "bind_params", "plain_and_sizes"]

AVAILABLE = _cel is not None
"""Whether cel-expr-python is importable here."""

_PARAMS_PREFIX = "_pe_params_"
"""Prefix of the per-policy params variables (a rule's ``params`` is renamed to one)."""


def params_name(index: int) -> str:
    """Name of policy ``index``'s params in the one native activation of a decision."""
    return f"{_PARAMS_PREFIX}{index}"


def bind_params(tree: Tree[Token], text: str, index: int) -> str:
    """``text`` with every ``params`` identifier renamed to :func:`params_name` (index).

    One activation then serves every policy of a decision: each policy's
    params sit under their own name, bound once at compile time. Only
    identifier nodes are renamed (never a field ``x.params``); a comprehension
    variable named ``params`` is renamed with its uses, which keeps its
    meaning, and :mod:`.cel_qualify` refuses variables with the reserved prefix.
    """
    starts = sorted(
        (node.children[0].start_pos for node in tree.iter_subtrees()
         if node.data == "ident" and isinstance(node.children[0], Token)
         and str(node.children[0]) == "params"
         and node.children[0].start_pos is not None), reverse=True)
    out = text
    for start in starts:
        out = out[:start] + params_name(index) + out[start + len("params"):]
    return out


class NativeEnv:
    """The native environment of one compiled policy set (one params variable per policy)."""

    def __init__(self, policies: int) -> None:
        dyn = _cel.Type.DYN
        names = {"card": dyn, "event": dyn, "history": dyn, "now": _cel.Type.TIMESTAMP}
        names.update({params_name(i): dyn for i in range(policies)})
        self._env = _cel.NewEnv(variables=names)
        self.params: dict[str, Any] = {}
        """Plain params of every policy under its :func:`params_name`."""

    def compile(self, source: str, shape: CostShape) -> NativeProgram | None:
        """Compile ``source`` natively, or None when cel-expr-python refuses it."""
        try:
            return NativeProgram(self._env.compile(source), shape)
        except Exception:
            return None

    def activation(self, plain: Mapping[str, Any], now: _dt.datetime) -> Any:
        """The one native activation of a decision: card, event, history, now, params."""
        return self._env.Activation({**self.params, "card": plain["card"],
                                     "event": plain["event"], "history": plain["history"],
                                     "now": now.astimezone(_dt.UTC)})


@dataclass(frozen=True)
class NativeProgram:
    """One qualified expression compiled natively, with its cost shape."""

    expression: Any
    shape: CostShape

    def evaluate(self, act: Any) -> bool | None:
        """The rule's bool, or None when the reference must answer (any non-bool)."""
        value = self.expression.eval(act)
        result = value.value() if value.type() == _BOOL else None
        return result if isinstance(result, bool) else None


_BOOL = _cel.Type.BOOL if _cel is not None else None


class _NotPlain(Exception):
    pass


def plain_and_sizes(value: Any) -> tuple[Any, tuple[int, int]]:
    """:func:`~.numbers.normalise` of JSON data and its sizes, in one walk.

    Sizes are (longest list, largest charge one step can make): the charge
    bound is the count of every list and map element plus the longest
    string, the most one ``==``, ``+`` or comprehension step charges in the
    reference (:mod:`.limits`).

    Raises:
        TypeError: ``value`` holds something other than JSON data (the
            caller then takes the reference path).
    """
    sizes = [0, 0, 0]  # longest list, elements, longest string
    try:
        plain = _walk(value, sizes)
    except _NotPlain:
        raise TypeError("not plain JSON data") from None
    return plain, (sizes[0], sizes[1] + sizes[2])


def _walk(value: Any, sizes: list[int]) -> Any:
    kind = type(value)
    if kind is str:
        if len(value) > sizes[2]:
            sizes[2] = len(value)
        return value
    if kind is float or value is None or kind is bool:
        return value
    if kind is int:
        try:
            return float(value)
        except OverflowError:
            raise _NotPlain from None
    if kind is dict:
        sizes[1] += len(value)
        if not all(type(k) is str for k in value):
            raise _NotPlain
        return {k: _walk(v, sizes) for k, v in value.items()}
    if kind is list:
        if len(value) > sizes[0]:
            sizes[0] = len(value)
        sizes[1] += len(value)
        return [_walk(v, sizes) for v in value]
    raise _NotPlain
