"""Conformance cases (tests/policy_cases/*.yaml), and agreement with cel-python's interpreter.

The engine runs CEL in cel-python's transpiled mode. Each case's rules are
also evaluated by cel-python's interpreter with the same number semantics;
the outcome (pass, fail or error) must be the same, which is the evidence
that choosing the faster mode changes no decision.
"""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Any

import celpy
import celpy.evaluation as ev
import pytest
import yaml
from celpy import celtypes

from policyengine.policy import (
    Context,
    cel_runtime,
    compile_policies,
    evaluate,
    load_data,
    load_policies,
)
from policyengine.policy.numbers import (
    arith_operands,
    as_double,
    compare_operands,
    normalise,
    to_cel,
)
from policyengine.policy.waivers import parse_time

CASES = Path(__file__).resolve().parents[2] / "policy_cases"


def _cases() -> list[Any]:
    out = []
    for file in sorted(CASES.glob("*.yaml")):
        for case in load_data(file)["cases"]:
            out.append(pytest.param(case, id=case["note"]))
    return out


def _decide(case: dict[str, Any], tmp_path: Path) -> tuple[Any, Any]:
    policies = case.get("policies") or [case["policy"]]
    path = tmp_path / "policy.yaml"
    path.write_text("---\n".join(yaml.safe_dump(p, sort_keys=False) for p in policies))
    cps = compile_policies(load_policies([path]), case.get("params"))
    facts = case["facts"]
    ctx = Context(card=facts.get("card", {}), event=facts.get("event", {}),
                  history=facts.get("history", {}))
    return cps, evaluate(cps, ctx, parse_time(case["now"]))


@pytest.mark.parametrize("case", _cases())
def test_conformance_case(case: dict[str, Any], tmp_path: Path) -> None:
    """Each case gives its wanted decision, outcomes and messages."""
    _, decision = _decide(case, tmp_path)
    assert decision.decision == case["want_decision"], decision.reasons
    by_rule = {r.rule: r for r in decision.results}
    got = {rule: by_rule[rule].outcome for rule in case.get("want_outcomes", {})}
    assert got == case.get("want_outcomes", {})
    for rule, text in (case.get("want_messages") or {}).items():
        assert text in by_rule[rule].message


def _interpreter_functions() -> dict[str, Any]:
    def cmp(fn: Any) -> Any:
        return lambda a, b: fn(*compare_operands(a, b))

    def arith(fn: Any) -> Any:
        return lambda a, b: as_double(fn(*arith_operands(a, b)))

    return {"_<_": cmp(ev.bool_lt), "_<=_": cmp(ev.bool_le), "_>_": cmp(ev.bool_gt),
            "_>=_": cmp(ev.bool_ge), "_==_": cmp(ev.bool_eq), "_!=_": cmp(ev.bool_ne),
            "_+_": arith(operator.add), "_-_": arith(operator.sub), "_*_": arith(operator.mul),
            "_/_": arith(operator.truediv), "_%_": arith(operator.mod),
            "_in_": cel_runtime._operator_in}


def _interpreted(env: Any, expr: str, variables: dict[str, Any]) -> str:
    runner = celpy.InterpretedRunner(env, env.compile(expr), _interpreter_functions())
    try:
        value = runner.evaluate(variables)
    except ev.CELEvalError:
        return "error"
    if not isinstance(value, bool | celtypes.BoolType):
        return "error"
    return "pass" if value else "fail"


@pytest.mark.parametrize("case", [c for c in _cases() if not c.id.startswith("limits/")])
def test_transpiled_and_interpreted_agree(case: dict[str, Any], tmp_path: Path) -> None:
    """For every applicable rule, the interpreter gives the engine's pass/fail/error."""
    cps, decision = _decide(case, tmp_path)
    env = celpy.Environment(runner_class=celpy.CompiledRunner)
    facts = case["facts"]
    base = {k: to_cel(normalise(facts.get(k, {}))) for k in ("card", "event", "history")}
    base["now"] = celtypes.TimestampType(case["now"])
    policies = {p.name: p for p in cps.policies}
    sources = {(p.name, r.id): r.expr.source for p in cps.policies for r in p.rules}
    for result in decision.results:
        if result.outcome == "skipped":
            continue
        engine = result.waived_outcome or result.outcome
        variables = dict(base, params=policies[result.policy].params_cel)
        assert _interpreted(env, sources[(result.policy, result.rule)], variables) == engine, \
            result.key


REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("card_file", sorted((REPO / "examples" / "cards").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_builtin_packs_agree_with_interpreter(card_file: Path) -> None:
    """On every example card, each built-in rule has the same outcome in both CEL modes."""
    import datetime as dt

    cps = compile_policies(load_policies([REPO / "policies"]))
    card = load_data(card_file)
    history = load_data(REPO / "examples" / "history" / "credit-risk-scorer-approvals.yaml")
    event = {"type": "promote", "stage": "production", "model": card["model"]["name"],
             "version": card["model"]["version"], "digest": card["model"].get("artifact_digest")}
    now = dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC)
    decision = evaluate(cps, Context(card, event, history), now)
    env = celpy.Environment(runner_class=celpy.CompiledRunner)
    base = {"card": to_cel(normalise(card)), "event": to_cel(normalise(event)),
            "history": to_cel(normalise(history)), "now": celtypes.TimestampType(now)}
    rules = {(p.name, r.id): (p, r) for p in cps.policies for r in p.rules}
    for result in decision.results:
        if result.outcome == "skipped":
            continue
        policy, rule = rules[(result.policy, result.rule)]
        got = _interpreted(env, rule.expr.source, dict(base, params=policy.params_cel))
        assert got == (result.waived_outcome or result.outcome), result.key
