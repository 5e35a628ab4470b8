"""Approver keys and the trust file the history tests share."""

from __future__ import annotations

import pytest

from audit.keys import generate_key
from policyengine.approvals import load_trust


@pytest.fixture
def keys():
    """Keys for bob (model-risk), carol (domain-owner) and mallory (untrusted)."""
    return {n: generate_key(n) for n in ("bob", "carol", "mallory")}


@pytest.fixture
def trust(tmp_path, keys):
    """The trust file for bob and carol."""
    path = tmp_path / "approvers.yaml"
    path.write_text(
        "approvers:\n"
        f"  - {{id: bob, roles: [model-risk], keys: ['{keys['bob'][1]}']}}\n"
        f"  - {{id: carol, roles: [domain-owner], keys: ['{keys['carol'][1]}']}}\n"
    )
    return load_trust(path)
