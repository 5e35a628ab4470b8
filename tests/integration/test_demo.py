"""scripts/demo.sh (the README demo) runs end to end on the embedded default."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.gatecli import REPO, environ


@pytest.mark.parametrize("ci", ["", "true"])
def test_demo_runs(tmp_path, ci):
    """The demo shows deny, approvals, allow, promotion and a verified log and receipt (exit 0)."""
    env = environ(PATH=f"{Path(sys.executable).parent}:{environ()['PATH']}", TMPDIR=str(tmp_path))
    if ci:
        env["CI"] = ci
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "demo.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "DENY credit-risk-scorer 2.3.0" in out and "ALLOW credit-risk-scorer 2.3.0" in out
    assert out.index("DENY") < out.index("recorded signed approval") < out.index("ALLOW")
    assert "promoted credit-risk-scorer 2.3.0 to production" in out
    # 6 entries: the policy bundle (once, before the first decision), deny, two
    # approvals, allow (seq 4), promotion.
    assert "ok: 6 entries" in out and "receipt for seq 4 verifies" in out
    assert "demo complete" in out
