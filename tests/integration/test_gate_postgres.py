"""The promotion story against a PostgreSQL log (skipped with the reason when no server)."""

from __future__ import annotations

import pytest

from tests.integration.gatecli import DIGEST, MODEL, VERSION, approve, cli

pytestmark = pytest.mark.postgres


def test_gate_approve_promote_on_postgres(approvers, workdir, pg_url, monkeypatch):
    """With POLICYENGINE_LOG_URL on PostgreSQL: deny, two approvals, allow, promote, verify."""
    monkeypatch.setenv("POLICYENGINE_LOG_URL", pg_url)
    assert cli("gate", "card.yaml", "--to", "production").code == 1
    assert approve(approvers, "bob@bank.example", "model-risk").code == 0
    assert approve(approvers, "carol@bank.example", "domain-owner").code == 0
    assert cli("gate", "card.yaml", "--to", "production").code == 0
    promoted = cli(
        "promote", "--model", MODEL, "--version", VERSION, "--digest", DIGEST, "--to", "production"
    )
    assert promoted.code == 0, promoted.err
    verified = cli("audit", "verify")
    # policy bundle, deny, two approvals, allow, promotion
    assert verified.code == 0 and verified.out.startswith("ok: 6 entries"), verified.err
    assert not (workdir / ".policyengine" / "audit.db").exists()
