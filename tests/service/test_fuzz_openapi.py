"""Schemathesis over the served OpenAPI of a real ``policyengine serve`` process.

One run per token (admin, evaluator, auditor), every check on, bounded in
time; each run's requests are read back from its HAR report and summarised
(operations, requests, statuses) on stdout. The test fails on any 5xx or any
response the published document does not describe (schemathesis exits
non-zero on a failed check).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.service.conftest import TOKENS
from tests.service.servers import start_service

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

# Seconds of generation per token; three tokens keep the test within a few minutes.
_MAX_TIME_S = int(os.environ.get("POLICYENGINE_FUZZ_SECONDS", "40"))
_ROLES = ("admin", "evaluator", "auditor")


def _schemathesis() -> list[str]:
    exe = Path(sys.executable).with_name("schemathesis")
    if not exe.exists():
        pytest.fail("schemathesis is not installed: pip install -e '.[test]'")
    return [str(exe)]


def summarise(har_path: Path) -> dict[str, object]:
    """Operations, request count and statuses of one run, from its HAR report."""
    entries = json.loads(har_path.read_text())["log"]["entries"] if har_path.exists() else []
    statuses: Counter[int] = Counter()
    operations: set[tuple[str, str]] = set()
    for entry in entries:
        req = entry["request"]
        path = "/" + req["url"].split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
        operations.add((req["method"], path))
        statuses[int(entry["response"]["status"])] += 1
    return {
        "requests": len(entries),
        "distinct_paths": len(operations),
        "statuses": dict(sorted(statuses.items())),
        "server_errors": sum(n for s, n in statuses.items() if s >= 500),
    }


def failure_summary(text: str) -> list[str]:
    """schemathesis' closing summary: operations tested, failures by check, test cases."""
    lines = text.splitlines()
    try:
        start = max(i for i, ln in enumerate(lines) if ln.strip() == "API Operations:")
    except ValueError:
        return lines[-5:]
    return [ln.strip() for ln in lines[start:] if ln.strip() and not ln.startswith("=")][:20]


def _run(url: str, role: str, out: Path) -> tuple[int, str, dict[str, object]]:
    har = out / f"{role}.har"
    cmd = [
        *_schemathesis(),
        "--config-file",
        str(Path(__file__).with_name("schemathesis.toml")),
        "run",
        f"{url}/openapi.json",
        "--header",
        f"Authorization: Bearer {TOKENS[role]}",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-time",
        str(_MAX_TIME_S),
        "--max-examples",
        "50",
        "--workers",
        "1",
        "--seed",
        "20240601",
        "--no-color",
        "--continue-on-failure",
        "--report",
        "har",
        "--report-har-path",
        str(har),
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=_MAX_TIME_S * 4 + 120, cwd=out
    )
    return proc.returncode, proc.stdout + proc.stderr, summarise(har)


def test_schemathesis_finds_no_server_error_or_schema_violation(tmp_path: Path) -> None:
    """Every token's fuzzing run over the served OpenAPI passes every schemathesis check."""
    server = start_service(tmp_path, f"sqlite:///{tmp_path / 'audit.db'}")
    failures: list[str] = []
    try:
        for role in _ROLES:
            out = tmp_path / role
            out.mkdir()
            code, text, summary = _run(server.url, role, out)
            (out / "schemathesis.txt").write_text(text)
            closing = " | ".join(failure_summary(text))
            print(f"fuzz token={role} exit={code} {json.dumps(summary)} :: {closing}")
            if code != 0 or summary["server_errors"]:
                failures.append(f"--- {role} (exit {code}): {closing}\n{text[:8000]}")
    finally:
        server.stop()
    assert not failures, "\n".join(failures)
