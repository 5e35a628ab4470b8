"""The fast path decides as the reference on mutated inputs; its parts agree with theirs."""

from __future__ import annotations

import copy
import datetime as dt
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policyengine import resources
from policyengine.policy import DEFAULT_LIMITS, Context, compile_policies, evaluate, load_policies
from policyengine.policy.explain import compile_reads, values_read
from policyengine.policy.numbers import normalise

ROOT = Path(__file__).resolve().parents[3]
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
CARDS = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "examples/cards").glob("*.yaml"))]
HISTORIES = [{}] + [yaml.safe_load(p.read_text())
                    for p in sorted((ROOT / "examples/history").glob("*.yaml"))]
EVENTS = [("promote", "production"), ("promote", "staging"), ("register", "none")]
_DOCS = load_policies([ROOT / "policies"])
# Both engines are compared on meaning, so the wall-clock backstops are taken out of play:
# on a loaded machine a slow reference evaluation would otherwise end as a time-limit
# `error` the native one never meets. The cost limits, which are deterministic, stay.
_UNTIMED = replace(DEFAULT_LIMITS, max_seconds=3600.0, max_decision_seconds=3600.0)
REFERENCE = compile_policies(_DOCS, engine="reference", limits=_UNTIMED)
FAST = compile_policies(_DOCS, engine="fast", limits=_UNTIMED)
_SETTINGS = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _slots(doc: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) pair of a document."""
    out: list[tuple[Any, Any]] = []
    stack = [doc]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) \
            if isinstance(node, list) else ()
        for key, value in items:
            out.append((node, key))
            stack.append(value)
    return out


_TIMES = st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2027, 12, 31)).map(
    lambda t: t.replace(microsecond=0).isoformat() + "Z")


@st.composite
def _mutated(draw: st.DrawFn, doc: Any) -> Any:
    """``doc`` with a few values changed, lists shortened or grown, keys dropped or retyped."""
    doc = copy.deepcopy(doc)
    pool = [v for c, k in _slots(doc) if isinstance(v := c[k], str)][:50] or ["x"]
    for _ in range(draw(st.integers(1, 5))):
        slots = _slots(doc)
        if not slots:
            break
        node, key = draw(st.sampled_from(slots))
        value, action = node[key], draw(st.sampled_from(["value", "value", "shape", "retype"]))
        if action == "shape" and isinstance(value, list) and value:
            node[key] = value[: draw(st.integers(0, len(value)))] + value * draw(st.integers(0, 2))
        elif action == "shape" and isinstance(node, dict):
            del node[key]
        elif action == "retype":
            node[key] = draw(st.one_of(st.none(), st.booleans(), st.integers(-3, 400),
                                       st.sampled_from(pool), st.just([]), st.just({})))
        elif isinstance(value, bool):
            node[key] = not value
        elif isinstance(value, int | float):
            node[key] = draw(st.one_of(st.integers(0, 4000), st.floats(-1, 2),
                                       st.sampled_from([0.8, 0.1, 1.0, 0.05, 30.0])))
        elif isinstance(value, str):
            node[key] = draw(st.one_of(st.sampled_from(pool), _TIMES, st.text(max_size=8)))
    return doc


@_SETTINGS
@given(data=st.data())
def test_mutated_inputs_decide_alike(data: st.DataObject) -> None:
    """Mutated example cards and histories give identical Decisions on reference and fast."""
    card = data.draw(_mutated(data.draw(st.sampled_from(CARDS))))
    history = data.draw(st.sampled_from(HISTORIES))
    history = data.draw(_mutated(history)) if history else history
    event, stage = data.draw(st.sampled_from(EVENTS))
    ctx = Context(card, {"type": event, "stage": stage}, history)
    assert evaluate(FAST, ctx, NOW).to_dict() == evaluate(REFERENCE, ctx, NOW).to_dict()


@_SETTINGS
@given(data=st.data())
def test_fast_validator_agrees_with_reference(data: st.DataObject) -> None:
    """jsonschema-rs and jsonschema give the same verdict, and invalid documents the same errors."""
    for name, docs in (("model-card", CARDS), ("history", HISTORIES[1:])):
        doc = data.draw(_mutated(data.draw(st.sampled_from(docs))))
        reference = resources.validator(name)
        assert resources.is_valid(name, doc) == reference.is_valid(doc)
        fast_paths = sorted(str(list(e.instance_path)) for e in
                            resources.fast_validator(name).iter_errors(doc))
        reference_paths = sorted(str(list(e.absolute_path)) for e in reference.iter_errors(doc))
        assert set(fast_paths) == set(reference_paths)


@_SETTINGS
@given(data=st.data())
def test_planned_reads_equal_values_read(data: st.DataObject) -> None:
    """The compile-time plan of each rule's reads shows the same values as values_read."""
    card = data.draw(_mutated(data.draw(st.sampled_from(CARDS))))
    history = data.draw(st.sampled_from(HISTORIES))
    for policy in FAST.policies:
        plain = {"card": normalise(card), "event": {}, "history": normalise(history),
                 "params": policy.params}
        for rule in policy.rules:
            assert compile_reads(rule.reads)(plain) == values_read(rule.reads, plain)


def test_every_builtin_rule_qualifies_but_those_reading_evidence() -> None:
    """Built-in rules run natively, except those over history.evidence (no closed schema
    pins the kinds of recorded reports, so the reference evaluates them)."""
    for policy in FAST.policies:
        for rule in policy.rules:
            reads_evidence = "history.evidence" in rule.expr.source
            assert (rule.native is None) == reads_evidence, f"{policy.name}/{rule.id}"


def test_schema_checked_inputs_skip_validation_alike() -> None:
    """A caller-validated context decides as an unvalidated one."""
    ctx = Context(CARDS[0], {"type": "promote", "stage": "production"}, HISTORIES[-1])
    checked = Context(ctx.card, ctx.event, ctx.history, schema_checked=True)
    assert evaluate(FAST, checked, NOW).to_dict() == evaluate(REFERENCE, ctx, NOW).to_dict()


_RUNAWAY = textwrap.dedent("""
    import datetime as dt, sys
    from pathlib import Path
    from policyengine.policy import Context, compile_policies, evaluate, load_policies
    root = Path(sys.argv[1])
    policy = root / "runaway.yaml"
    policy.write_text('''
    apiVersion: policyengine/v1
    kind: Policy
    metadata: {name: runaway, version: 1.0.0}
    spec:
      rules:
        - id: nested
          severity: deny
          expr: >-
            card.limitations.all(a, card.limitations.all(b, card.limitations.all(c,
            size(a + b + c) > 0)))
          message: '"runaway"'
        - id: doubling
          severity: deny
          expr: >-
            [card.author + card.author + card.author + card.author + card.author
            + card.author + card.author + card.author].all(a, [a + a + a + a + a + a + a + a]
            .all(b, [b + b + b + b + b + b + b + b].all(c, size(c + c + c + c) > 0)))
          message: '"runaway"'
    ''')
    card = {"author": "x" * 4000, "limitations": ["y" * 2000] * 60}
    for engine in ("reference", "fast"):
        try:
            cps = compile_policies(load_policies([policy]), engine=engine)
        except Exception as exc:
            sys.exit(exc.diagnostics())
        decision = evaluate(cps, Context(card, {"type": "promote", "stage": "production"}, {}),
                            dt.datetime(2026, 11, 26, tzinfo=dt.UTC))
        print(engine, sorted({r.outcome for r in decision.results}))
    # VmHWM is this process image's own peak: ru_maxrss would also count the parent's
    # resident set at fork (Linux carries it across exec), so it grows with the suite.
    status = Path("/proc/self/status").read_text().splitlines()
    print(next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")))  # KiB
""")


def test_runaway_rules_error_within_memory(tmp_path: Path) -> None:
    """Nested comprehensions and string doubling end as error on both paths, under 512 MB."""
    done = subprocess.run([sys.executable, "-c", _RUNAWAY, str(tmp_path)], capture_output=True,
                          text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["reference ['error']", "fast ['error']"]
    # The child's own peak (RUSAGE_CHILDREN would be the largest of every child this
    # test process ever waited for, other tests' servers included; see VmHWM above).
    peak_kib = int(done.stdout.split("\n")[2])
    # Bounded, not runaway: an unbounded doubling reaches gigabytes; about 80 MB is
    # measured here, and a whole `policyengine eval` process over the same rules peaks
    # near 90 MB.
    assert peak_kib < 512 * 1024


@pytest.mark.parametrize("engine", ["bogus", "Fast"])
def test_bad_engine_flag_exits_2(engine: str) -> None:
    """An unknown --engine value is a usage error (exit 2)."""
    from policyengine.cli import main

    code = main(["eval", str(ROOT / "examples/cards" / "credit-risk-scorer.yaml"), "--event",
                 "promote", "--to", "production", "--engine", engine])
    assert code == 2


def test_engine_flag_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """--engine overrides POLICYENGINE_ENGINE, and the setting is scoped to its block."""
    from policyengine.policy.compile import engine_setting

    monkeypatch.setenv("POLICYENGINE_ENGINE", "reference")
    with engine_setting("fast"):
        assert compile_policies(_DOCS).engine == "fast"
    assert compile_policies(_DOCS).engine == "reference"
