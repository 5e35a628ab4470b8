"""The policy test runner's building blocks: merge patches, exact thresholds, discovery."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from policyengine.errors import ConfigError
from policyengine.policy.testing import (
    RuleCoverage,
    TestReport,
    find_test_files,
    merge_patch,
    parse_threshold,
)


def test_merge_patch_rfc7396():
    """Objects merge recursively, null deletes, lists and scalars replace (RFC 7396 §2)."""
    target = {"a": {"b": 1, "c": 2}, "l": [1, 2], "k": "v"}
    patch = {"a": {"b": None, "d": 3}, "l": [3], "k": None, "n": {"x": None}}
    assert merge_patch(target, patch) == {"a": {"c": 2, "d": 3}, "l": [3], "n": {}}
    assert target["a"] == {"b": 1, "c": 2}


@pytest.mark.parametrize(("text", "value"), [("100", Fraction(100)), ("99.99", Fraction(9999, 100)),
                                             ("0", Fraction(0))])
def test_parse_threshold_is_exact(text, value):
    """Thresholds are exact fractions, so 99.99 never rounds up to 100."""
    assert parse_threshold(text) == value


@pytest.mark.parametrize("text", ["abc", "101", "-1"])
def test_parse_threshold_rejects(text):
    """Non-numbers and values outside 0-100 are ConfigErrors."""
    with pytest.raises(ConfigError):
        parse_threshold(text)


def test_coverage_needs_pass_and_fail():
    """A rule seen only passing is not covered; 2 of 3 covered is 200/3 percent exactly."""
    report = TestReport(coverage={
        "p/a": RuleCoverage("p/a", passed=True, failed=True),
        "p/b": RuleCoverage("p/b", passed=True, failed=True),
        "p/c": RuleCoverage("p/c", passed=True, failed=False)})
    assert report.percent() == Fraction(200, 3) < 100


def test_find_test_files(tmp_path: Path):
    """tests/*.yaml and *_test.yaml are test files; policy files are not."""
    for name in ("pack/p.yaml", "pack/tests/a.yaml", "pack/b_test.yml", "pack/notes.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x: 1\n")
    found = [p.relative_to(tmp_path).as_posix() for p in find_test_files([tmp_path])]
    assert found == ["pack/b_test.yml", "pack/tests/a.yaml"]


def test_find_test_files_in_a_tests_directory_named_directly(tmp_path: Path):
    """Naming a pack's tests/ directory itself finds the files in it."""
    (tmp_path / "pack" / "tests").mkdir(parents=True)
    (tmp_path / "pack" / "tests" / "a.yaml").write_text("x: 1\n")
    tests = tmp_path / "pack" / "tests"
    assert find_test_files([tests]) == [tests / "a.yaml"]
