"""The Python globals that cel-python's transpiled code runs with (private to the CEL seam).

cel-python transpiles CEL to Python that calls ``celpy.evaluation.*``,
``celpy.celtypes.*`` and ``operator.*`` by name. :data:`GLOBALS` supplies
proxies of those namespaces that:

- compare and combine numbers across int/double (:mod:`.numbers`);
- meter every comprehension macro, and the work one step can do (``+``
  building strings and lists; ``==``, ``!=``, ``in`` and ``string()`` over
  nested lists), against the evaluation's :class:`~.limits.Budget`;
- coerce the Python bools that transpiled ``has()`` yields, as the
  interpreter does.

Only :mod:`policyengine.policy.cel` imports this module. It owns no state
beyond the prebuilt namespaces; the budget comes from a context variable.
"""

from __future__ import annotations

import operator as _operator
import types
from collections.abc import Callable
from typing import Any

import celpy.evaluation as _ev
from celpy import celtypes

from policyengine.policy.limits import current_budget
from policyengine.policy.numbers import arith_operands, as_double, compare_operands

__all__ = ["GLOBALS"]



def _compare(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def compare(left: Any, right: Any) -> Any:
        return fn(*compare_operands(left, right))
    return compare


def _arith(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def arith(left: Any, right: Any) -> Any:
        return as_double(fn(*arith_operands(left, right)))
    return arith


_EQ = _compare(_ev.boolean(_operator.eq))


def _charge_deep(*values: Any) -> None:
    """Charge the element count of any list or map among ``values``, nested ones included.

    Comprehensions can build lists that share one list many times over
    (``xs.map(a, [a, a, a])`` three deep), cheap to build but exponential to
    compare or print. The walk charges as it goes, so it stops at the limit.
    """
    budget = current_budget()
    if budget is None:
        return
    stack = [v for v in values if isinstance(v, list | dict)]
    while stack:
        value = stack.pop()
        budget.charge(len(value))
        items = value.values() if isinstance(value, dict) else value
        stack.extend(v for v in items if isinstance(v, list | dict))


def _deep(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """One-argument ``fn`` after charging the deep size of a list or map argument."""
    def run(value: Any) -> Any:
        if isinstance(value, list | dict):
            _charge_deep(value)
        return fn(value)
    return run


def _deep2(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Two-argument ``fn`` after charging the deep size of list and map arguments."""
    def run(left: Any, right: Any) -> Any:
        if isinstance(left, list | dict) or isinstance(right, list | dict):
            _charge_deep(left, right)
        return fn(left, right)
    return run


# cel-python's result() (celpy/evaluation.py) turns these Python errors into
# CEL errors with these texts; ours does the same without its per-call
# logger.debug (about 3% of an evaluation).
_ERROR_TEXTS: dict[type[BaseException], Callable[[BaseException], str]] = {
    ValueError: lambda ex: "return error for overflow",
    KeyError: lambda ex: f"no such member in mapping: {ex.args[0]!r}",
    TypeError: lambda ex: "no such overload",
    ZeroDivisionError: lambda ex: "divide by zero",
    OverflowError: lambda ex: "return error for overflow",
    IndexError: lambda ex: "invalid_argument",
    UnicodeDecodeError: lambda ex: "invalid UTF-8",
    NameError: lambda ex: f"undeclared reference to {ex.args[0]!r} (in container {ex.args[1:]!r})",
}


def _result(activation: Any, cel_expr: Callable[[Any], Any]) -> Any:
    try:
        return cel_expr(activation)
    except (ValueError, KeyError, TypeError, ZeroDivisionError, OverflowError, IndexError,
            NameError) as ex:
        error = _ev.CELEvalError(_ERROR_TEXTS[ex.__class__](ex), ex.__class__, ex.args)
        error.__cause__ = ex
        return error


def _concat(left: Any, right: Any) -> Any:
    """``+``: numbers as :func:`_arith`; a built string, bytes or list charges its length.

    Without this, ``[s].map(a, [a + a + ... + a])`` chained a few times builds
    gigabytes inside one comprehension step, before the step's own charge.
    """
    result = _ADD(left, right)
    if isinstance(result, str | bytes | list):
        budget = current_budget()
        if budget is not None:
            budget.charge(len(result))
    return result


def _operator_in(item: Any, container: Any) -> Any:
    if isinstance(container, list):
        eq = _EQ
        for element in container:
            try:
                if eq(item, element):
                    return celtypes.BoolType(True)
            except TypeError:
                continue
        return celtypes.BoolType(False)
    return _ev.operator_in(item, container)


def _metered(macro: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a comprehension macro so each step charges the current Budget."""

    def run(activation: Any, var: str, raw_expr: Callable[[Any], Any],
            cel_gen: Callable[[Any], Any]) -> Any:
        def cel_expr(act: Any) -> Any:
            # A transpiled has() yields a Python bool; the macros fold their steps with
            # celtypes.logical_and/or, which refuse it from the second step on ("no
            # such overload": `[a, b].all(d, has(d.x))` errored). Coerce, as below.
            value = raw_expr(act)
            return celtypes.BoolType(value) if type(value) is bool else value

        budget = current_budget()
        if budget is None:
            return macro(activation, var, cel_expr, cel_gen)

        def gen(act: Any) -> Any:
            items = cel_gen(act)
            budget.charge(1 + (len(items) if isinstance(items, list | dict) else 0))
            return items

        def body(act: Any) -> Any:
            budget.charge(1)
            value = cel_expr(act)
            if isinstance(value, list | dict | str):
                budget.charge(len(value))
            return value

        return macro(activation, var, body, gen)

    return run


def _bool(value: Any) -> Any:
    return celtypes.BoolType(value) if type(value) is bool else value


def _boolify1(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def apply(value: Any) -> Any:
        return fn(_bool(value))
    return apply


def _boolify2(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def apply(left: Any, right: Any) -> Any:
        return fn(_bool(left), _bool(right))
    return apply


def _boolify_condition(fn: Callable[[Any, Any, Any], Any]) -> Callable[[Any, Any, Any], Any]:
    def apply(cond: Any, left: Any, right: Any) -> Any:
        return fn(_bool(cond), left, right)
    return apply


def _namespaces() -> dict[str, Any]:
    evaluation = types.SimpleNamespace(**vars(_ev))
    # cel-python's bool_lt(a, b) is boolean(operator.lt)(a, b): it builds the
    # wrapper (functools.wraps) on every comparison. Build each one once.
    for name in ("lt", "le", "gt", "ge", "eq", "ne"):
        setattr(evaluation, f"bool_{name}", _compare(_ev.boolean(getattr(_operator, name))))
    evaluation.bool_eq, evaluation.bool_ne = _deep2(evaluation.bool_eq), _deep2(evaluation.bool_ne)
    evaluation.operator_in = _deep2(_operator_in)
    evaluation.result = _result
    for name in ("macro_map", "macro_filter", "macro_exists", "macro_exists_one", "macro_all"):
        setattr(evaluation, name, _metered(getattr(_ev, name)))
    ops = types.SimpleNamespace(**{k: getattr(_operator, k) for k in dir(_operator)
                                   if not k.startswith("_")})
    for name in ("sub", "mul", "truediv", "mod"):
        setattr(ops, name, _arith(getattr(_operator, name)))
    ops.add = _concat
    ops.neg = lambda value: as_double(_operator.neg(value))
    # cel-python's transpiler emits has() as a Python bool, which its own
    # logical_and/or/not/condition reject ("no such overload"); the interpreter
    # accepts it. Coerce, so both modes agree.
    types_ns = types.SimpleNamespace(**vars(celtypes))
    for name in ("logical_and", "logical_or"):
        setattr(types_ns, name, _boolify2(getattr(celtypes, name)))
    types_ns.logical_not = _boolify1(celtypes.logical_not)
    types_ns.logical_condition = _boolify_condition(celtypes.logical_condition)
    types_ns.StringType = _deep(celtypes.StringType)  # string(list) prints every element
    return {
        "__builtins__": __builtins__,
        "celpy": types.SimpleNamespace(evaluation=evaluation, celtypes=types_ns),
        "operator": ops,
        "CELEvalError": _ev.CELEvalError,
    }


_ADD = _arith(_operator.add)
GLOBALS = _namespaces()
"""Module globals for transpiled code; copy per evaluation (cel.Program does)."""
