"""Limits: runaway expressions end with a clear error within the limit, never hang."""

from __future__ import annotations

import time

import pytest

from policyengine.policy import cel
from policyengine.policy.limits import CLOCK_EVERY, Budget, LimitExceeded, Limits

TEN = "[1,2,3,4,5,6,7,8,9,10]"


class TickingClock:
    """A monotonic clock that advances ``step`` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now = 1000.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def _result(decision):
    return decision.results[0]


def test_nested_comprehension_growth_stops_with_error(decide):
    """Three nested maps over growing lists end as error 'evaluation exceeded limit'."""
    big = "[" + ",".join(str(i) for i in range(60)) + "]"
    expr = f"{big}.map(a, {big}.map(b, {big}.map(c, a + b + c))).size() > 0"
    d = decide(f"- {{id: boom, severity: deny, expr: '{expr}', message: '\"x\"'}}")
    r = _result(d)
    assert r.outcome == "error" and r.message.startswith("evaluation exceeded limit")
    assert not d.allow


def test_list_growth_is_charged_by_size():
    """Building big lists inside a comprehension costs their size and hits the cost limit."""
    big = "[" + ",".join(["1"] * 200) + "]"
    source = f"{big}.map(a, {big}.map(b, {big})).size() > 0"
    program = cel.compile_program(cel.parse(source), source)
    budget = Budget(Limits(max_cost=20_000, max_seconds=30))
    try:
        program.evaluate(cel.activation({}), budget)
    except LimitExceeded as exc:
        assert "cost" in str(exc)
    else:
        raise AssertionError("expected LimitExceeded")
    # 1 unit for the outer list, 1 + 200 per element built: far fewer than 200*200 steps.
    assert budget.cost < 20_500


def test_cost_limit_is_deterministic():
    """The cost limit triggers on the same count every time, before the deadline."""
    tree = cel.parse(f"{TEN}.map(a, {TEN}.map(b, {TEN}.map(c, a))).size() > 0")
    program = cel.compile_program(tree, "x")
    limits = Limits(max_cost=500, max_seconds=30)
    messages = set()
    for _ in range(3):
        try:
            program.evaluate(cel.activation({}), Budget(limits))
        except LimitExceeded as exc:
            messages.add(str(exc))
    (message,) = messages
    assert message.startswith("evaluation exceeded limit: cost ") and "> 500" in message


def test_deadline_stops_slow_evaluation():
    """With a huge cost budget the deadline still stops evaluation, at the same step each run."""
    tree = cel.parse(f"{TEN}.map(a, {TEN}.map(b, {TEN}.map(c, a))).size() > 0")
    program = cel.compile_program(tree, "x")
    costs = set()
    for _ in range(3):
        # 1 s per clock read against a 5 s budget: the sixth charge is past the deadline.
        budget = Budget(Limits(max_cost=10**9, max_seconds=5, clock=TickingClock(1.0)))
        with pytest.raises(LimitExceeded, match=r"^evaluation exceeded limit: time > 5s$"):
            program.evaluate(cel.activation({}), budget)
        costs.add(budget.cost)
    assert len(costs) == 1 and costs.pop() < 1000


def test_waiting_does_not_spend_the_time_budget():
    """The default deadline counts the thread's CPU time, so time spent off the CPU is free."""
    budget = Budget(Limits(max_seconds=0.05))
    time.sleep(0.2)  # four budgets of wall time pass; almost no CPU time does
    budget.charge(CLOCK_EVERY)  # past the sampling interval: the clock is read
    assert budget.cost == CLOCK_EVERY


def test_a_busy_thread_spends_the_time_budget():
    """CPU work past the deadline stops the next sampled charge."""
    budget = Budget(Limits(max_seconds=0.01))
    end = time.thread_time() + 0.05
    while time.thread_time() < end:
        pass
    with pytest.raises(LimitExceeded, match=r"^evaluation exceeded limit: time > 0.01s$"):
        budget.charge(1)


def test_small_comprehensions_are_within_budget(decide):
    """Ordinary rules over card lists never come near the limit."""
    d = decide("- {id: ok, severity: deny, message: '\"x\"',\n"
               "   expr: 'card.fairness.all(f, f.value > 0.5)'}")
    assert _result(d).outcome == "pass"


def test_limit_exceeded_does_not_leak_budget():
    """After an evaluation ends, no budget stays installed in the context."""
    from policyengine.policy.limits import current_budget
    tree = cel.parse(f"{TEN}.map(a, {TEN}.map(b, a)).size() > 0")
    program = cel.compile_program(tree, "x")
    with pytest.raises(LimitExceeded):
        program.evaluate(cel.activation({}), Budget(Limits(max_cost=5)))
    assert current_budget() is None


def test_decision_deadline_bounds_a_pack_of_slow_rules(write, h):
    """Once a decision's time budget is spent, the remaining heavy rules error quickly."""
    from policyengine.policy import Context, compile_policies, evaluate, load_policies
    from policyengine.policy.limits import Limits as _Limits

    twenty = "[" + ",".join(str(i) for i in range(20)) + "]"
    heavy = f"{twenty}.map(a, {twenty}.map(b, {twenty}.map(c, a))).size() > 0"
    rules = "".join(h.rule(f"r{i}", heavy) for i in range(4))
    # The test owns the clock: each read advances 0.01 s, so the 0.05 s decision
    # budget is spent after a handful of steps of the first rule, however slow the
    # machine, and every later rule fails at its first step.
    limits = _Limits(max_cost=10**9, max_seconds=30, max_decision_seconds=0.05,
                     clock=TickingClock(0.01))
    cps = compile_policies(load_policies([write(h.policy_yaml(rules))]), limits=limits)
    d = evaluate(cps, Context(h.CARD, h.EVENT, {}), h.NOW)
    assert [r.outcome for r in d.results] == ["error"] * 4
    assert {r.message for r in d.results} == {
        "evaluation exceeded limit: decision time > 0.05s"
    }


def _fails_fast(decide, expr: str) -> None:
    # The cost limit (not the time backstop) must be what stops the rule.
    r = _result(decide(f"- {{id: boom, severity: deny, expr: '{expr}', message: '\"x\"'}}"))
    assert r.outcome == "error" and r.message.startswith("evaluation exceeded limit: cost")


def test_concatenation_inside_one_step_is_charged(decide):
    """a + a + ... + a in a comprehension body is charged per character, not after the step."""
    chain = "+".join(["a"] * 70)
    text = '"' + "x" * 600 + '"'
    _fails_fast(decide, f"[{text}].map(a, [{chain}]).map(b, [b[0] + b[0]]).size() > 0")


def test_shared_sublists_are_charged_when_compared_or_printed(decide):
    """Lists that share one list 200 times, three deep, cannot be compared or printed unseen."""
    row = "[" + ",".join(str(i) for i in range(100)) + "]"
    def grown(var: str) -> str:
        wide = ",".join([var] * 200)
        return f"[{row}]" + "".join(f".map({var}, [{wide}])" for _ in range(3))

    _fails_fast(decide, f"size(string({grown('a')})) > 0")
    _fails_fast(decide, f"{grown('a')} == {grown('b')}")


@pytest.mark.parametrize("expr", ["+".join(["1"] * 300) + " > 0", "card" + ".a" * 600 + " == 1",
                                  "!" * 400 + "true"])
def test_chains_too_deep_to_compile_are_lint_errors(write, expr):
    """Operator chains CPython cannot compile are reported with file and rule, not a traceback."""
    from policyengine.errors import PolicyLoadError
    from policyengine.policy import load_policies
    from tests.policyengine.policy.conftest import policy_yaml

    path = write(policy_yaml(f"- {{id: long, severity: deny, expr: '{expr}', message: '\"x\"'}}"))
    with pytest.raises(PolicyLoadError) as info:
        load_policies([path])
    assert "long: expr: too complex" in info.value.diagnostics()


def test_backtracking_regex_is_linear_and_bad_patterns_are_named(decide):
    """matches runs on RE2: (a+)+$ on a long text ends; a back-reference is an error."""
    # A backtracking engine would need about 2**50000 steps here and never return.
    card = {"model": {"description": "a" * 50_000 + "!"}}
    d = decide("- {id: re, severity: deny, expr: 'card.model.description.matches(\"^(a+)+$\")', "
               "message: '\"x\"'}", card)
    assert _result(d).outcome == "fail"
    d = decide("- {id: re, severity: deny, expr: 'card.model.description.matches(\"(a)\\\\1\")', "
               "message: '\"x\"'}", card)
    assert _result(d).outcome == "error" and "bad RE2 pattern" in _result(d).message
