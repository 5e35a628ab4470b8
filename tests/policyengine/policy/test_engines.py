"""The fast path decides exactly as the reference; known differences never qualify."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from policyengine.policy import Context, cel, compile_policies, evaluate, load_policies
from policyengine.policy.cel_qualify import Kind, qualify

ROOT = Path(__file__).resolve().parents[3]
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def _examples() -> list[tuple[str, str | None]]:
    cards = sorted((ROOT / "examples/cards").glob("*.yaml"))
    histories = sorted((ROOT / "examples/history").glob("*.yaml"))
    return [(c.name, h.name if h else None) for c in cards for h in [None, *histories]]


@pytest.fixture(scope="module")
def engines() -> dict[str, object]:
    """The built-in packs compiled for each engine."""
    docs = load_policies([ROOT / "policies"])
    return {e: compile_policies(docs, engine=e) for e in ("reference", "fast", "shadow")}


def test_most_builtin_rules_qualify(engines: dict[str, object]) -> None:
    """Most built-in rules run natively on the fast path."""
    rules = engines["fast"].rules()  # type: ignore[attr-defined]
    assert sum(r.native is not None for r in rules) >= 30


@pytest.mark.parametrize(("card", "history"), _examples())
@pytest.mark.parametrize(("event", "stage"), [("promote", "production"), ("promote", "staging"),
                                              ("register", "none")])
def test_examples_decide_alike(engines: dict[str, object], card: str, history: str | None,
                               event: str, stage: str) -> None:
    """Every example card and history gives identical Decisions on both paths."""
    data = yaml.safe_load((ROOT / "examples/cards" / card).read_text())
    hist = yaml.safe_load((ROOT / "examples/history" / history).read_text()) if history else {}
    ctx = Context(data, {"type": event, "stage": stage}, hist)
    reference = evaluate(engines["reference"], ctx, NOW).to_dict()  # type: ignore[arg-type]
    assert evaluate(engines["fast"], ctx, NOW).to_dict() == reference  # type: ignore[arg-type]
    assert evaluate(engines["shadow"], ctx, NOW).to_dict() == reference  # type: ignore[arg-type]


ROOTS = {"card": Kind(frozenset({"map"})), "now": Kind(frozenset({"timestamp"})),
         "params": Kind(frozenset({"map"}), fields={"n": Kind(frozenset({"double"})),
                                                     "s": Kind(frozenset({"string"}))})}


@pytest.mark.parametrize("expr", [
    '"a" == 1', "true == 1", "params.s == params.n", "params.s in [1, 2]",
    "card.x == params.s",                       # unknown kind on one side
    'string(params.n) == "1"', "string(true) == \"true\"", "string(null) == \"null\"",
    'string([1]) == "[1]"', 'timestamp("2026-01-01 00:00:00Z") < now',
    'duration("1d") > duration("1h")', "type(params.n) == double", "params.n / 2.0 > 1.0",
    "params.n % 2.0 == 0.0", "card.m.all(k, k != \"\")",  # iteration over a map
    'dyn(params.n) == 1', 'int("1") == 1', '[1, 2][-1] == 2',
    '["a"].map(x, x + x).size() > 0',          # concatenation inside a comprehension
])
def test_known_differences_do_not_qualify(expr: str) -> None:
    """Each known semantic difference between the runtimes keeps the rule on the reference."""
    assert qualify(cel.parse(expr), ROOTS) is None


@pytest.mark.parametrize("expr", [
    "params.n >= 1", "params.s == \"x\"", "params.n == 1", "string(int(params.n)) == \"1\"",
    'now - timestamp("2026-01-01T00:00:00Z") < duration(string(int(params.n) * 24) + "h")',
    '[params.s].exists(v, v.startsWith("a"))', "card.x == null",
])
def test_safe_expressions_qualify(expr: str) -> None:
    """Expressions with one proven kind per comparison qualify."""
    assert qualify(cel.parse(expr), ROOTS) is not None
