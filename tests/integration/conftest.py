"""A clean working directory, approver keys and a trust file for CLI tests of the gate."""

from __future__ import annotations

import shutil

import pytest

from tests.integration.gatecli import _ENV, CARD, DIGEST, MODEL, VERSION, approve, cli, gate


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working directory with the example card, no CI and no policyengine variables."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POLICYENGINE_ACTOR", "ci-bot")
    monkeypatch.chdir(tmp_path)
    shutil.copy(CARD, tmp_path / "card.yaml")
    return tmp_path


@pytest.fixture
def approvers(workdir):
    """Keys for bob (model-risk), carol (domain-owner), alice (the card's author, both roles),
    dave (domain-owner) and mallory (not trusted), and approvers.yaml listing all but mallory."""
    roles = {
        "bob@bank.example": "[model-risk]",
        "carol@bank.example": "[domain-owner]",
        "alice@bank.example": "[model-risk, domain-owner]",
        "dave@bank.example": "[domain-owner]",
    }
    lines = ["approvers:"]
    for who in [*roles, "mallory@evil.example"]:
        assert cli("keys", "generate", who, "--out", "keys").code == 0
    for who, held in roles.items():
        vkey = (workdir / "keys" / f"{who}.pub").read_text().strip()
        lines += [f"  - id: {who}", f"    roles: {held}", f"    keys: ['{vkey}']"]
    (workdir / "approvers.yaml").write_text("\n".join(lines) + "\n")
    return workdir / "keys"


@pytest.fixture
def story(approvers, workdir):
    """Policy bundle (0), deny (1), two approvals (2, 3), allow (4), promotion (5) of the example
    model."""
    assert gate().code == 1
    assert approve(approvers, "bob@bank.example", "model-risk").code == 0
    assert approve(approvers, "carol@bank.example", "domain-owner").code == 0
    assert gate().code == 0
    promoted = cli("promote", "--model", MODEL, "--version", VERSION, "--digest", DIGEST,
                   "--to", "production")
    assert promoted.code == 0, promoted.err
    return workdir
