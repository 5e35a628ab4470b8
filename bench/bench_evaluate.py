"""Benchmark: whole decisions per second, both engines, against raw CEL on the same rules.

Evaluates the built-in packs (whatever is in policies/ when run; the
conformance-case policies when it is empty) on a full card in process, on
the reference engine and on the fast path, and in the same run evaluates
the same rule expressions with plain cel-python (transpiled and
interpreted) and plain cel-expr-python (one activation per pass), over the
same inputs; then card validations/s with jsonschema and jsonschema-rs.
The engine does more per rule than a raw baseline (number semantics,
metering, values read, waivers, digests); the ratios say what that costs.

Run: .venv/bin/python bench/bench_evaluate.py [--seconds 3]
Not a timed test: it only prints figures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

import celpy
import yaml
from celpy import celtypes

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from policyengine import resources  # noqa: E402
from policyengine.policy import Context, compile_policies, evaluate, load_data, load_policies  # noqa: E402
from policyengine.policy.numbers import normalise, to_cel  # noqa: E402

NOW = dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC)


def _policy_paths(tmp: Path) -> list[Path]:
    packs = resources.policies_dir()
    if packs.is_dir() and any(packs.rglob("*.yaml")):
        return [packs]
    out = []
    for i, file in enumerate(sorted((REPO / "tests" / "policy_cases").glob("*.yaml"))):
        for j, case in enumerate(load_data(file)["cases"]):
            if "policy" in case and not case["note"].startswith("limits/"):
                policy = dict(case["policy"], metadata=dict(case["policy"]["metadata"],
                                                             name=f"case-{i}-{j}"))
                path = tmp / f"case-{i}-{j}.yaml"
                path.write_text(yaml.safe_dump(policy))
                out.append(path)
    return out


def _inputs() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    card = load_data(REPO / "examples" / "cards" / "credit-risk-scorer.yaml")
    history_file = REPO / "examples" / "history" / "credit-risk-scorer-approvals.yaml"
    history = load_data(history_file) if history_file.is_file() else {}
    model = card["model"]
    event = {"type": "promote", "stage": "production", "model": model["name"],
             "version": model["version"], "digest": model.get("artifact_digest", ""),
             "actor": "bench"}
    return card, event, history


def _rate(fn: Any, seconds: float) -> float:
    fn()  # warm up
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        count += 1
    return count / (time.perf_counter() - start)


def _raw(cps: Any, card: Any, event: Any, history: Any, runner: type) -> Any:
    env = celpy.Environment(runner_class=runner)
    plain = {"card": to_cel(normalise(card)), "event": to_cel(normalise(event)),
             "history": to_cel(normalise(history)), "now": celtypes.TimestampType(NOW)}
    programs = []
    for policy in cps.policies:
        applies = policy.applies_to
        if (event["type"] not in applies.get("events", [event["type"]])
                or event["stage"] not in applies.get("stages", [event["stage"]])
                or card.get("risk_tier") not in applies.get("riskTiers", [card.get("risk_tier")])):
            continue
        context = dict(plain, params=policy.params_cel)
        programs += [(env.program(env.compile(r.expr.source)), context) for r in policy.rules]

    def run() -> None:
        for program, context in programs:
            with contextlib.suppress(celpy.CELEvalError):
                program.evaluate(context)
    return run, len(programs)


def _raw_native(cps: Any, card: Any, event: Any, history: Any) -> Any:
    import cel_expr_python.cel as cel

    dyn = cel.Type.DYN
    env = cel.NewEnv(variables={"card": dyn, "event": dyn, "history": dyn, "params": dyn,
                                "now": cel.Type.TIMESTAMP})
    plain = {"card": normalise(card), "event": normalise(event), "history": normalise(history),
             "now": NOW}
    programs = [(env.compile(r.expr.source), policy.params) for policy in cps.policies
                for r in policy.rules]

    def run() -> None:  # params differ per policy: one activation per policy and pass
        act, last = None, None
        for program, params in programs:
            if params is not last:
                act, last = env.Activation({**plain, "params": params}), params
            program.eval(act)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = parser.parse_args()
    import logging
    import tempfile

    import jsonschema_rs  # noqa: F401  (fail early when the fast validator is missing)

    # cel-python logs each has() misfire of its transpiled mode at ERROR level.
    logging.getLogger("celpy").setLevel(logging.CRITICAL)

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        docs = load_policies(_policy_paths(Path(tmp)))
        cps = compile_policies(docs, engine="reference")
        load_ms = (time.perf_counter() - start) * 1000
        fast_cps = compile_policies(docs, engine="fast")
    card, event, history = _inputs()
    ctx = Context(card, event, history)
    decision = evaluate(cps, ctx, NOW)
    assert evaluate(fast_cps, ctx, NOW).to_dict() == decision.to_dict()
    rules = sum(len(p.rules) for p in cps.policies)
    native = sum(r.native is not None for r in fast_cps.rules())
    reference = _rate(lambda: evaluate(cps, ctx, NOW), args.seconds)
    fast = _rate(lambda: evaluate(fast_cps, ctx, NOW), args.seconds)
    raw_t, applied = _raw(cps, card, event, history, celpy.CompiledRunner)
    raw_i, _ = _raw(cps, card, event, history, celpy.InterpretedRunner)
    transpiled = _rate(raw_t, args.seconds)
    interpreted = _rate(raw_i, args.seconds)
    raw_native = _rate(_raw_native(cps, card, event, history), args.seconds)
    slow_validator = resources.validator("model-card")
    fast_validator = resources.fast_validator("model-card")
    slow_v = _rate(lambda: slow_validator.is_valid(card), args.seconds)
    fast_v = _rate(lambda: fast_validator.is_valid(card), args.seconds)
    print(f"policies: {len(cps.policies)}, rules: {rules} ({applied} applied, {native} native "
          f"on the fast path), decision: {decision.decision} {decision.summary()}")
    print(f"load + lint + compile: {load_ms:.0f} ms (parser and expressions from the per-user "
          "cache when warm)")
    print(f"engine, reference:            {reference:8.1f} decisions/s "
          f"({1000 / reference:.2f} ms each)")
    print(f"engine, fast:                 {fast:8.1f} decisions/s "
          f"({1000 / fast:.2f} ms each) -> {fast / reference:.1f}x the reference")
    print(f"raw cel-python, transpiled:   {transpiled:8.1f} rule-set passes/s "
          f"-> reference engine ratio {reference / transpiled:.2f}x")
    print(f"raw cel-python, interpreted:  {interpreted:8.1f} rule-set passes/s "
          f"-> reference engine ratio {reference / interpreted:.2f}x")
    print(f"raw cel-expr-python:          {raw_native:8.1f} rule-set passes/s "
          f"-> fast engine ratio {fast / raw_native:.2f}x (raw / fast = "
          f"{raw_native / fast:.2f})")
    print(f"card validation, jsonschema:    {slow_v:8.1f} cards/s")
    print(f"card validation, jsonschema-rs: {fast_v:8.1f} cards/s -> {fast_v / slow_v:.0f}x")


if __name__ == "__main__":
    main()
