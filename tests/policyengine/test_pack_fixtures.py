"""The built-in packs' test fixtures equal the examples; an installed copy runs the packs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from policyengine.policy.load import load_data

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "policies" / "testdata"


@pytest.mark.parametrize(
    "fixture", sorted(FIXTURES.rglob("*.json")), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_fixture_equals_example(fixture: Path) -> None:
    """Each pack-test fixture is the example file of the same name, as JSON."""
    example = REPO / "examples" / fixture.parent.name / f"{fixture.stem}.yaml"
    assert json.loads(fixture.read_text()) == load_data(example)


def test_pack_tests_use_shipped_fixtures() -> None:
    """No pack test reads a file outside policies/, which an installed copy would lack."""
    for test_file in (REPO / "policies").glob("*/tests/*.yaml"):
        for line in test_file.read_text().splitlines():
            if "File:" in line:
                target = (test_file.parent / line.split("File:", 1)[1].strip()).resolve()
                assert target.is_relative_to(REPO / "policies"), f"{test_file}: {line.strip()}"
                assert target.is_file(), f"{test_file}: {line.strip()}"


@pytest.mark.slow
def test_installed_wheel_checks_tests_and_evaluates(tmp_path: Path) -> None:
    """A wheel installed outside the checkout finds its packs and schemas from an empty dir."""
    pytest.importorskip("hatchling", reason="building the wheel offline needs hatchling installed")
    wheels, target, work = tmp_path / "whl", tmp_path / "site", tmp_path / "work"
    work.mkdir()
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(wheels), str(REPO)],
                   check=True, capture_output=True, timeout=300)
    subprocess.run([*pip, "install", "-q", "--no-deps", "--no-index", "--target", str(target),
                    *map(str, wheels.glob("*.whl"))], check=True, capture_output=True, timeout=300)
    # The installed copy first on the path; dependencies come from this interpreter.
    env = dict(os.environ, PYTHONPATH=str(target), POLICYENGINE_PARSER_CACHE="off")
    vpy = sys.executable

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([vpy, "-m", "policyengine", *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=300)

    where = subprocess.run([vpy, "-c", "import policyengine; print(policyengine.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(target)), "the test must exercise the installed copy"
    assert run("check").returncode == 0
    tested = run("test", "--coverage", "--threshold", "100")
    assert tested.returncode == 0, tested.stdout[-2000:] + tested.stderr[-2000:]
    card = work / "card.yaml"
    card.write_text((REPO / "examples/cards/resume-screener.yaml").read_text())
    denied = run("eval", "card.yaml", "--event", "promote", "--to", "staging",
                 "--now", "2026-11-26T12:00:00Z")
    assert denied.returncode == 1 and "demographic-parity-ratio" in denied.stdout
    card.write_text(card.read_text().replace("artifact_digest:", "artifact_digest_x:"))
    invalid = run("eval", "card.yaml", "--event", "promote", "--to", "staging")
    assert invalid.returncode == 2 and "$.model" in invalid.stderr + invalid.stdout
