"""`policyengine test [PATH...] [--coverage] [--threshold N]`: run pack tests.

Prints one line per failing case with expected vs actual and the rule's
message, then a summary with coverage (rules exercised both passing and
failing). Exit 0 when every case passes and coverage meets the threshold,
1 otherwise, 2 when a pack or test file is invalid or a case's input
cannot be read.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, TextIO

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add the ``test`` command."""
    parser = subparsers.add_parser("test", help="run policy pack tests with coverage",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                        help="pack directories or test files (default: the built-in packs)")
    parser.add_argument("--coverage", action="store_true", help="list coverage per rule")
    parser.add_argument("--threshold", metavar="N",
                        help="fail when coverage percent is below N (exact: 99.99 < 100)")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.set_defaults(func=run)


def _percent(value: Any) -> str:
    return f"{math.floor(value * 100) / 100:.2f}"  # floor: 99.999 never prints as 100.00


def _text(report: Any, show_coverage: bool) -> str:
    lines = []
    for case in report.cases:
        if case.ok:
            continue
        lines.append(f"FAIL {case.file}:{case.line} {case.name}")
        if case.error:
            lines.append(f"  error: {case.error}")
        lines += [f"  {failure}" for failure in case.failures]
    if show_coverage:
        for cov in sorted(report.coverage.values(), key=lambda c: c.key):
            state = "covered" if cov.covered else "NOT COVERED"
            lines.append(f"  {cov.key}: pass={'yes' if cov.passed else 'no'} "
                         f"fail={'yes' if cov.failed else 'no'} {state}")
    failed = sum(1 for c in report.cases if not c.ok)
    covered = sum(1 for c in report.coverage.values() if c.covered)
    lines.append(f"{len(report.cases)} cases, {failed} failed; coverage "
                 f"{_percent(report.percent())}% ({covered}/{len(report.coverage)} rules)")
    return "\n".join(lines) + "\n"


def _json(report: Any) -> str:
    body = {
        "ok": report.ok,
        "cases": [{"file": c.file, "line": c.line, "name": c.name, "ok": c.ok,
                   "failures": list(c.failures), "error": c.error} for c in report.cases],
        "coverage": {"percent": float(report.percent()),
                     "rules": {c.key: {"pass": c.passed, "fail": c.failed, "covered": c.covered}
                               for c in report.coverage.values()}},
    }
    return json.dumps(body, indent=2) + "\n"


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run the tests; 0 all pass and coverage >= threshold, 1 otherwise, 2 bad input."""
    from policyengine import resources
    from policyengine.policy.testing import parse_threshold, run_tests

    threshold = parse_threshold(args.threshold) if args.threshold is not None else None
    paths = list(args.paths) or [resources.policies_dir()]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        from policyengine.errors import InputError
        raise InputError(f"no such file or directory: {', '.join(missing)}")
    report = run_tests(paths)
    out.write(_json(report) if args.format == "json" else _text(report, args.coverage))
    if not report.cases:
        err.write("no test cases found; expected <pack>/tests/*.yaml or *_test.yaml\n")
        return 1
    if any(c.error for c in report.cases):
        return 2
    if threshold is not None and report.percent() < threshold:
        err.write(f"coverage {_percent(report.percent())}% is below the threshold "
                  f"{args.threshold}%\n")
        return 1
    return 0 if report.ok else 1
