"""Start-up of the gate's commands: they import only what they use."""

from __future__ import annotations

import subprocess
import sys

from tests.integration.gatecli import environ

_PROBE = """
import io, sys
from policyengine.cli import main
code = main(sys.argv[1:], out=io.StringIO(), err=io.StringIO())
heavy = sorted(m for m in ("structlog", "fastapi", "uvicorn") if m in sys.modules)
print(code)
print(",".join(heavy))
"""


def test_gate_does_not_import_logging_or_service_stacks(workdir):
    """A gate run imports neither structlog nor the service stack (start-up time)."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, "gate", "card.yaml", "--to", "staging"],
        cwd=workdir,
        env=environ(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    code, heavy = [*proc.stdout.splitlines(), "", ""][:2]
    assert code in ("0", "1"), proc.stdout + proc.stderr
    assert heavy == "", f"imported: {heavy}"
