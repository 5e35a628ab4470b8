"""The CEL seam: syntax positions, static analysis, and cel-python quirks it corrects."""

from __future__ import annotations

import threading

import pytest
from celpy import celtypes

from policyengine.policy import cel
from policyengine.policy.limits import Budget, Limits
from policyengine.policy.numbers import to_cel

ROOTS = frozenset({"card", "event", "history", "params", "now"})


def _eval(source: str, **variables):
    program = cel.compile_program(cel.parse(source), source)
    act = cel.activation({k: to_cel(v) for k, v in variables.items()})
    return program.evaluate(act, Budget(Limits()))


@pytest.mark.parametrize(("source", "line", "column"), [
    ("card.x +", 1, 8), ("card..x", 1, 6), ("true &&\n  card.x )", 2, 10), ("a ! b", 1, 3)])
def test_syntax_error_positions(source, line, column):
    """Syntax errors carry 1-based line and column inside the expression."""
    with pytest.raises(cel.CelSyntaxError) as info:
        cel.parse(source)
    assert (info.value.line, info.value.column) == (line, column)
    assert info.value.message.startswith("syntax error")


def test_analyse_paths_resolve_comprehension_variables():
    """f.value inside card.fairness.all(f, ...) is recorded as card.fairness[*].value."""
    source = "card.fairness.filter(f, f.metric == 'x').all(g, g.value > params.m)"
    info = cel.analyse(cel.parse(source), ROOTS)
    assert ("card", "fairness", None, "value") in info.paths
    assert ("card", "fairness", None, "metric") in info.paths
    assert [p.name for p in info.params] == ["m"]


def test_analyse_has_paths_are_optional():
    """Paths inside has() are kept apart: they may be missing."""
    info = cel.analyse(cel.parse("has(card.slo) && card.x == 1"), ROOTS)
    assert ("card", "slo") in info.optional_paths and ("card", "slo") not in info.paths


def test_analyse_reports_free_variables_and_functions():
    """Unbound identifiers and called functions are listed with positions."""
    info = cel.analyse(cel.parse("foo.bar && card.s.startsWith('a') && size(card.l) > 0"), ROOTS)
    assert [v.name for v in info.variables] == ["foo", "card", "card"]
    assert {f.name for f in info.functions} == {"startsWith", "size"}


def test_measure_depth_and_comprehensions():
    """measure() counts nested sub-expressions and nested macros."""
    depth, macros = cel.measure(cel.parse("[1].all(a, [1].exists(b, (((a == b)))))"))
    assert macros == 2 and depth >= 5


def test_has_inside_logical_and_works():
    """has() && has() evaluates (cel-python's transpiler alone says no such overload)."""
    assert _eval("has(card.a) && has(card.a.b)", card={"a": {"b": 1}}) is not False
    assert bool(_eval("has(card.a) && has(card.a.b)", card={"a": {"b": 1}}))
    assert not _eval("has(card.z) || !has(card.a)", card={"a": {}})


def test_double_arithmetic_stays_double():
    """0.93 * 2 stays a CEL double, so it compares with an int literal."""
    assert _eval("card.v * 2 >= 1 && 1 <= card.v * 2 && -card.v < 0", card={"v": 0.93})


def test_missing_member_is_eval_failure():
    """A missing key raises CelEvalFailure, not KeyError."""
    with pytest.raises(cel.CelEvalFailure):
        _eval("card.nope > 1", card={})


def test_non_cel_python_error_is_eval_failure():
    """Field selection on a number is a CelEvalFailure, not an AttributeError."""
    with pytest.raises(cel.CelEvalFailure):
        _eval("card.n.x == 1", card={"n": 1})


def test_timestamps_and_now():
    """now and timestamp()/duration() work together."""
    source = 'now - duration("24h") > timestamp("2026-01-01T00:00:00Z")'
    program = cel.compile_program(cel.parse(source), source)
    act = cel.activation({"now": celtypes.TimestampType("2026-11-26T00:00:00Z")})
    assert program.evaluate(act, Budget(Limits()))


def test_concurrent_evaluations_do_not_interfere():
    """Programs evaluate correctly from many threads at once (no shared globals)."""
    program = cel.compile_program(cel.parse("card.xs.all(x, x == card.v)"), "x")
    failures = []

    def worker(v: int) -> None:
        act = cel.activation({"card": to_cel({"xs": [v] * 50, "v": v})})
        for _ in range(20):
            if not program.evaluate(act, Budget(Limits())):
                failures.append(v)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_parser_cache_lives_in_a_private_user_directory(tmp_path, monkeypatch):
    """The grammar cache (a pickle) goes to $XDG_CACHE_HOME/policyengine, mode 0700."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("POLICYENGINE_PARSER_CACHE", raising=False)
    path = cel._parser_cache("grammar")
    assert isinstance(path, str) and path.startswith(str(tmp_path / "policyengine"))
    assert (tmp_path / "policyengine").stat().st_mode & 0o777 == 0o700


def test_parser_cache_refuses_shared_directories(tmp_path, monkeypatch):
    """A group- or world-writable cache directory is not used; the env switch turns it off."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "policyengine").mkdir(mode=0o777)
    (tmp_path / "policyengine").chmod(0o777)
    assert cel._parser_cache("grammar") is False
    monkeypatch.setenv("POLICYENGINE_PARSER_CACHE", "off")
    assert cel._parser_cache("grammar") is False


EXPRESSIONS = [
    "card.fairness.filter(f, f.metric == 'dp').all(f, f.value >= params.min)",
    "has(card.slo) && card.slo.p95 <= params.limits[card.tier]",
    '"below " + string(params.min)',
]


@pytest.mark.parametrize("source", EXPRESSIONS)
def test_cached_expression_behaves_like_a_fresh_one(source, tmp_path, monkeypatch):
    """The second prepare() reads the cache (no tree) and yields the same analysis and results."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    fresh = cel.prepare(source, ROOTS, max_depth=24, max_comprehensions=3)
    first = fresh.program()
    cached = cel.prepare(source, ROOTS, max_depth=24, max_comprehensions=3)
    assert fresh.tree is not None and cached.tree is None and cached.python is not None
    assert (cached.depth, cached.macros, cached.literal) == (fresh.depth, fresh.macros,
                                                             fresh.literal)
    assert cached.info == fresh.info
    act = cel.activation({
        "card": to_cel({"fairness": [{"metric": "dp", "value": 0.9}], "slo": {"p95": 80},
                        "tier": "high"}),
        "params": to_cel({"min": 0.8, "limits": {"high": 100}})})
    assert first.evaluate(act, Budget(Limits())) == cached.program().evaluate(act, Budget(Limits()))


def test_a_cached_program_compiles_when_first_evaluated(tmp_path, monkeypatch):
    """A program read from the cache is compiled on its first evaluation, once, and decides
    like the freshly transpiled one."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    source = "card.a + 1 == 2"
    fresh = cel.prepare(source, ROOTS, max_depth=24, max_comprehensions=3).program()
    program = cel.prepare(source, ROOTS, max_depth=24, max_comprehensions=3).program()
    assert "code" in vars(fresh) and "code" not in vars(program)
    act = cel.activation({"card": to_cel({"a": 1})})
    assert program.evaluate(act, Budget(Limits())) == fresh.evaluate(act, Budget(Limits()))
    code = vars(program)["code"]
    program.evaluate(act, Budget(Limits()))
    assert vars(program)["code"] is code


def test_corrupt_cache_entry_is_ignored(tmp_path, monkeypatch):
    """A damaged entry is rebuilt from a fresh parse, not trusted."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cel.prepare("card.a == 1", ROOTS, max_depth=24, max_comprehensions=3).program()
    (entry,) = (tmp_path / "policyengine" / "expressions").glob("*.json")
    entry.write_text("{not json")
    again = cel.prepare("card.a == 1", ROOTS, max_depth=24, max_comprehensions=3)
    assert again.tree is not None


def test_expressions_over_the_limits_are_not_analysed_or_cached(tmp_path, monkeypatch):
    """Too-deep expressions are measured only, and never stored."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    deep = "(" * 30 + "true" + ")" * 30
    prepared = cel.prepare(deep, ROOTS, max_depth=24, max_comprehensions=3)
    assert prepared.depth > 24 and prepared.info is None
    assert not (tmp_path / "policyengine" / "expressions").exists()
