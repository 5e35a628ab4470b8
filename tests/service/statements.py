"""Signed approval statements for the service tests, timed relative to now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DIGEST = "sha256:" + "e" * 64


def trust_file(root: Path, approver: str = "approver-1") -> tuple[Path, str]:
    """Write a trust file listing a fresh key for ``approver`` in role model-risk; (path, skey)."""
    from audit.keys import generate_key

    skey, vkey = generate_key(approver)
    path = root / "approvers.yaml"
    path.write_text(
        f"kind: Approvers\napprovers:\n  - id: {approver}\n    roles: [model-risk]\n"
        f"    keys: ['{vkey}']\n"
    )
    return path, skey


def signed_approval(skey: str, **fields: Any) -> dict[str, Any]:
    """A request body for POST /v1/approvals signed by ``skey`` (fields override the statement)."""
    from audit.keys import Signer
    from policyengine.approvals import approval_statement, now_text, sign_statement

    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "model": "m",
        "version": "1",
        "digest": DIGEST,
        "role": "model-risk",
        "time": now_text(now),
        "expires": now_text(now + timedelta(days=30)),
    }
    body.update(fields)
    statement = approval_statement(approver="approver-1", **body)
    body["signature"] = sign_statement(statement, Signer.from_skey(skey))
    return body
