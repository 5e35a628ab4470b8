"""Resource limits for policy expressions, at compile time and at run time.

cel-python has no cost model, so a rule such as
``[1,2,3].map(x, [1,2,3].map(y, [1,2,3].map(z, ...)))`` could run for as
long as it likes. The engine bounds every expression in two layers:

- Compile time (:mod:`policyengine.policy.lint`): source length, syntactic
  nesting depth, and comprehension (macro) nesting, checked on the parse
  tree before any code is generated. Deeply nested input never reaches the
  recursive transpiler.
- Run time (:class:`Budget`): the CEL seam wraps every comprehension macro
  (``all``, ``exists``, ``exists_one``, ``map``, ``filter``). Each iteration
  costs one unit plus the size of any list, map or string the iteration
  produced, and each macro charges the size of the collection it walks.
  The charges also check a deadline on the evaluating thread's CPU clock:
  the expression's own, or the whole decision's when that comes first. When the cost or the
  deadline is exceeded, :class:`LimitExceeded` unwinds the evaluation and
  the rule's outcome is ``error`` ("evaluation exceeded limit ...").
  Without comprehensions a CEL expression does work linear in its own size
  and its input, so bounding comprehensions bounds the whole evaluation.

The seam also charges work that happens inside one step: ``+`` charges the
length of the string, bytes or list it builds, and ``==``, ``!=``, ``in``
and ``string()`` charge the element count of list and map operands,
nested ones included, so shared sub-lists cannot multiply unseen.
``matches`` runs on RE2 (cel-python uses google-re2): linear time, no
backtracking, and patterns RE2 rejects (back-references, look-around) are
errors. An operator chain too deep for CPython to compile is a lint error
(:class:`~.cel.CelTooComplexError`); one too deep to evaluate is stopped as
a recursion-depth limit.

The budget travels in a :class:`contextvars.ContextVar`, so concurrent
evaluations in threads or tasks each have their own. This module owns the
limits and the accounting; it reads a clock (``Limits.clock``, the thread's
CPU time unless a caller injects another) only to enforce the deadline,
never to stamp a decision.

Why CPU time and not wall time: the deadline is a backstop against rules
that compute too long, and CPU time measures exactly that. Wall time also
counts the time other processes hold the cores, so a busy machine could
turn a rule's ``pass`` into an ``error`` that a replay on a quiet machine
does not reproduce. Reading the thread clock costs a system call (about
2 us, ten times a monotonic read), so it is read once per
:data:`CLOCK_EVERY` units charged rather than on every charge.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["DEFAULT_LIMITS", "Budget", "LimitExceeded", "Limits", "current_budget",
           "decision_deadline"]


@dataclass(frozen=True)
class Limits:
    """Bounds applied to every rule expression and message."""

    max_expr_length: int = 4096
    """Characters in one expression (expr or message)."""
    max_depth: int = 24
    """Nesting of sub-expressions: parentheses, calls, lists, maps, index."""
    max_operators: int = 150
    """Operators nested in one another, chains included (``a + b + c`` nests 2
    ``+`` nodes): CPython compiles at most 200 nested parentheses."""
    max_comprehension_depth: int = 3
    """Macros (all/exists/map/filter/exists_one) nested inside each other."""
    max_cost: int = 20_000
    """Cost units per evaluation of one expression (see module docstring)."""
    max_decision_seconds: float = 10.0
    """CPU-time budget for all rules of one decision: once spent, every later
    comprehension step fails, so a pack of slow rules cannot add up to minutes."""
    max_seconds: float = 2.0
    """CPU-time budget per evaluation of one expression: a backstop for bodies
    whose units are slow (timestamp parsing in nested comprehensions costs
    about 0.5 ms per unit); generous so that load never flips a decision."""
    clock: Callable[[], float] = field(default=time.thread_time, compare=False, repr=False)
    """Seconds the deadlines are measured on (default: the evaluating thread's
    CPU time; one decision is evaluated on one thread). Tests inject a clock
    they advance themselves, so a deadline test never depends on machine speed."""


DEFAULT_LIMITS = Limits()


class LimitExceeded(Exception):
    """Raised inside an evaluation when its budget runs out."""


CLOCK_EVERY = 16
"""Cost units charged between two reads of the clock: with the slowest units
(about 0.5 ms each) a deadline is noticed within about 8 ms."""


class Budget:
    """Cost and deadline accounting for one expression evaluation."""

    __slots__ = ("cost", "deadline", "limits", "next_clock_read", "shared")

    def __init__(self, limits: Limits, decision_deadline: float | None = None) -> None:
        self.limits = limits
        self.cost = 0
        own = limits.clock() + limits.max_seconds
        self.shared = decision_deadline is not None and decision_deadline < own
        self.deadline = decision_deadline if self.shared and decision_deadline else own
        self.next_clock_read = 0

    def charge(self, units: int = 1) -> None:
        """Spend ``units``; raise :class:`LimitExceeded` when over cost or time."""
        self.cost += units
        if self.cost > self.limits.max_cost:
            raise LimitExceeded(
                f"evaluation exceeded limit: cost {self.cost} > {self.limits.max_cost} "
                "(comprehension steps, elements built or compared)"
            )
        if self.cost < self.next_clock_read:
            return
        self.next_clock_read = self.cost + CLOCK_EVERY
        if self.limits.clock() > self.deadline:
            seconds = self.limits.max_decision_seconds if self.shared else self.limits.max_seconds
            what = "decision time" if self.shared else "time"
            raise LimitExceeded(f"evaluation exceeded limit: {what} > {seconds:g}s")


def decision_deadline(limits: Limits) -> float:
    """Deadline for one whole decision on ``limits.clock`` (used only to bound run time)."""
    return limits.clock() + limits.max_decision_seconds


_CURRENT: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "policyengine_budget", default=None
)


def current_budget() -> Budget | None:
    """The budget of the evaluation running in this context, if any."""
    return _CURRENT.get()


def set_budget(budget: Budget | None) -> contextvars.Token[Budget | None]:
    """Install ``budget`` for this context; returns the token to reset it."""
    return _CURRENT.set(budget)


def reset_budget(token: contextvars.Token[Budget | None]) -> None:
    """Restore the budget that was current before :func:`set_budget`."""
    _CURRENT.reset(token)
