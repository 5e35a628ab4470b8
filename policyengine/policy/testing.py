"""Policy tests: run the named cases beside each pack and measure rule coverage.

Test files (``<pack>/tests/*.yaml``, ``<pack>/*_test.yaml``; format in
``schemas/policy-test.schema.json`` and docs/policy-language.md) give a
card, event, history, params and time per case and the expected decision
and per-rule outcomes. Each case is evaluated against its pack only.

Coverage: a rule is covered when some case saw it ``pass`` and some case
saw it ``fail`` or ``error`` (a ``waived`` result counts as the outcome it
waived). Percent = covered / rules * 100, kept as an exact fraction so a
threshold of 100 is not met by 99.99. Rules of every policy under the
given paths count, so a pack without tests lowers coverage.

This module reads test and data files and never writes anything.
"""

from __future__ import annotations

import copy
import datetime as _dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any

from policyengine import resources
from policyengine.decision import Decision
from policyengine.errors import ConfigError, Diagnostic, InputError, PolicyLoadError
from policyengine.policy.compile import CompiledPolicySet, compile_policies, merge_overrides
from policyengine.policy.evaluate import Context, evaluate
from policyengine.policy.load import (
    PolicyDocument,
    find_policy_files,
    is_test_file,
    load_data,
    load_policies,
    parse_documents,
    read_text,
)
from policyengine.policy.waivers import parse_time

__all__ = ["DEFAULT_NOW", "CaseResult", "RuleCoverage", "TestReport", "find_test_files",
           "merge_patch", "parse_threshold", "run_tests"]

DEFAULT_NOW = "2026-01-01T00:00:00Z"
"""Evaluation time of a case that gives none."""


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one test case."""

    file: str
    line: int
    name: str
    failures: tuple[str, ...] = ()
    """Expected-vs-actual lines; empty when the case passed."""
    error: str | None = None
    """Why the case could not run (bad input), if it could not."""

    @property
    def ok(self) -> bool:
        """True when the case ran and met every expectation."""
        return not self.failures and self.error is None


@dataclass
class RuleCoverage:
    """Which outcomes the tests exercised for one rule."""

    key: str
    passed: bool = False
    failed: bool = False

    @property
    def covered(self) -> bool:
        """Exercised both pass and fail-or-error."""
        return self.passed and self.failed


@dataclass
class TestReport:
    """All case results of a run and the coverage they reached."""

    __test__ = False  # not a pytest class

    cases: list[CaseResult] = field(default_factory=list)
    coverage: dict[str, RuleCoverage] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every case passed."""
        return all(c.ok for c in self.cases)

    def __bool__(self) -> bool:
        return self.ok

    def percent(self) -> Fraction:
        """Covered rules / all rules * 100, exactly (100 when there are no rules)."""
        if not self.coverage:
            return Fraction(100)
        covered = sum(1 for c in self.coverage.values() if c.covered)
        return Fraction(covered * 100, len(self.coverage))


def parse_threshold(text: str) -> Fraction:
    """``--threshold`` as an exact fraction (``"99.99"`` stays below 100).

    Raises:
        ConfigError: not a number between 0 and 100.
    """
    try:
        value = Fraction(Decimal(text))
    except (InvalidOperation, ValueError):
        raise ConfigError(f"bad --threshold {text!r}: expected a number 0-100") from None
    if not 0 <= value <= 100:
        raise ConfigError(f"bad --threshold {text!r}: expected a number 0-100")
    return value


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def find_test_files(paths: Iterable[Path]) -> list[Path]:
    """Pack test files under ``paths`` (files named directly are taken as given)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in {".yaml", ".yml"}
                            and p.is_file()
                            and (path.name == "tests" or is_test_file(p, path)))
        elif path.is_file():
            found.append(path)
    return list(dict.fromkeys(found))


def _pack_dir(test_file: Path) -> Path:
    parent = test_file.parent
    return parent.parent if parent.name == "tests" else parent


class _Runner:
    """Caches packs and data files across the cases of one run."""

    def __init__(self) -> None:
        self.packs: dict[tuple[Path, ...], list[PolicyDocument]] = {}
        self.data: dict[Path, Any] = {}
        self.report = TestReport()

    def pack(self, paths: list[Path]) -> list[PolicyDocument]:
        """Load a pack once per run and register its rules for coverage."""
        key = tuple(p.resolve() for p in paths)
        if key not in self.packs:
            self.packs[key] = load_policies(paths)
            for doc in self.packs[key]:
                for rule in doc.data["spec"]["rules"]:
                    name = f"{doc.name}/{rule['id']}"
                    self.report.coverage.setdefault(name, RuleCoverage(name))
        return self.packs[key]

    def file_data(self, base: Path, name: str, what: str) -> Any:
        """A card or history file relative to the test file (read once, copied per case)."""
        path = (base / name).resolve()
        if path not in self.data:
            self.data[path] = load_data(path, what)
        return copy.deepcopy(self.data[path])


def _test_document(path: Path) -> PolicyDocument:
    text = read_text(path, "test file")
    docs, problems = parse_documents(text, str(path))
    if not problems and len(docs) != 1:
        problems.append(Diagnostic(str(path), 1, 1, None, None,
                                   f"expected one yaml document, got {len(docs)}"))
    for doc in docs[:1]:
        for error in resources.validator("policy-test").iter_errors(doc.data):
            where = tuple(error.absolute_path)
            line, col = doc.position(where)
            problems.append(Diagnostic(str(path), line, col, None, None,
                                       f"bad test file at {'/'.join(map(str, where)) or 'top'}: "
                                       f"{error.message}"))
    if problems:
        raise PolicyLoadError(problems)
    return docs[0]


def _inputs(runner: _Runner, base: Path, case: dict[str, Any],
            defaults: dict[str, Any]) -> tuple[Context, dict[str, Any], _dt.datetime]:
    def pick(a: str, b: str) -> dict[str, Any]:
        source = case if (a in case or b in case) else defaults
        if a in source:
            return copy.deepcopy(source[a])
        return runner.file_data(base, source[b], a) if b in source else {}

    card = pick("card", "cardFile")
    card = merge_patch(merge_patch(card, defaults.get("cardPatch", {})), case.get("cardPatch", {}))
    history = pick("history", "historyFile")
    if not isinstance(card, dict) or not isinstance(history, dict):
        raise InputError("card and history must be objects")
    found = card.get("model")
    model: dict[str, Any] = found if isinstance(found, dict) else {}
    event = {"model": model.get("name", ""), "version": str(model.get("version", "")),
             "digest": model.get("artifact_digest", ""), "actor": "policy-test"}
    event.update(case.get("event", defaults.get("event", {})))
    params = merge_overrides(defaults.get("params"), case.get("params"))
    now_text = case.get("now", defaults.get("now", DEFAULT_NOW))
    now = parse_time(now_text)
    if now is None:
        raise InputError(f"bad now {now_text!r}: expected RFC 3339 with a zone")
    return Context(card=card, event=event, history=history or {}), params, now


def _lookup(decision: Decision, key: str) -> tuple[Any, str | None]:
    if "/" in key:
        found = [r for r in decision.results if r.key == key]
    else:
        found = [r for r in decision.results if r.rule == key]
    if not found:
        return None, f"{key}: no such rule in the policies under test"
    if len(found) > 1:
        return None, f"{key}: rule id is ambiguous; write policy-name/{key}"
    return found[0], None


def _check(decision: Decision, expect: dict[str, Any]) -> list[str]:
    failures = []
    if "decision" in expect and expect["decision"] != decision.decision:
        reasons = "; ".join(decision.reasons) or "no rule denied"
        failures.append(f"decision: expected {expect['decision']}, got {decision.decision} "
                        f"({reasons})")
    for key, want in (expect.get("rules") or {}).items():
        result, problem = _lookup(decision, key)
        if problem:
            failures.append(problem)
        elif result.outcome != want:
            detail = f" (message: {result.message})" if result.message else ""
            failures.append(f"{result.key}: expected {want}, got {result.outcome}{detail}")
    for key, text in (expect.get("messages") or {}).items():
        result, problem = _lookup(decision, key)
        if problem:
            failures.append(problem)
        elif text not in result.message:
            failures.append(f"{result.key}: expected message containing {text!r}, "
                            f"got {result.message!r}")
    return failures


def _record(report: TestReport, decision: Decision) -> None:
    for r in decision.results:
        seen = r.waived_outcome if r.outcome == "waived" else r.outcome
        entry = report.coverage.setdefault(r.key, RuleCoverage(r.key))
        if seen == "pass":
            entry.passed = True
        elif seen in {"fail", "error"}:
            entry.failed = True


def _run_case(runner: _Runner, doc: PolicyDocument, index: int,
              docs: list[PolicyDocument]) -> CaseResult:
    case = doc.data["cases"][index]
    line, _ = doc.position(("cases", index))
    base = Path(doc.file).parent
    try:
        ctx, params, now = _inputs(runner, base, case, doc.data.get("defaults") or {})
        cps: CompiledPolicySet = compile_policies(docs, params)
    except (InputError, ConfigError) as exc:
        return CaseResult(doc.file, line, case["name"], error=exc.diagnostics())
    decision = evaluate(cps, ctx, now)
    _record(runner.report, decision)
    return CaseResult(doc.file, line, case["name"], tuple(_check(decision, case["expect"])))


def run_tests(paths: list[Path]) -> TestReport:
    """Run every pack test under ``paths``.

    Args:
        paths: directories (searched for packs and their tests) or test files.

    Returns:
        Every case's result and the per-rule coverage.

    Raises:
        PolicyLoadError: a pack or a test file is invalid (all problems listed).
    """
    runner = _Runner()
    dirs = [p for p in paths if p.is_dir()]
    if dirs and list(find_policy_files(dirs)):
        runner.pack(dirs)
    for test_file in find_test_files(paths):
        doc = _test_document(test_file)
        base = test_file.parent
        targets = [base / p for p in doc.data.get("policies", [])] or [_pack_dir(test_file)]
        docs = runner.pack(targets)
        for index in range(len(doc.data["cases"])):
            runner.report.cases.append(_run_case(runner, doc, index, docs))
    return runner.report
