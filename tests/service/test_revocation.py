"""A revoked approval never counts again through POST /v1/decisions either."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.service.conftest import auth, example_card
from tests.service.statements import signed_approval, trust_file

# One rule on top of the service tests' pack: the version needs a counted model-risk approval.
APPROVAL_POLICY = """\
apiVersion: policyengine/v1
kind: Policy
metadata:
  name: needs-approval
  version: 1.0.0
spec:
  rules:
    - id: model-risk-approval
      description: A model-risk approver signed this artifact
      severity: deny
      expr: history.approvals.exists(a, a.role == "model-risk" && a.digest == event.digest)
      message: '"no counted model-risk approval"'
"""


def test_a_revoked_approval_no_longer_counts_over_http(make_env, tmp_path):
    """Approved -> allow; the approver revokes it -> deny, and the decision says which and why."""
    trust, skey = trust_file(tmp_path)
    (tmp_path / "policies").mkdir(exist_ok=True)
    (tmp_path / "policies" / "needs-approval.yaml").write_text(APPROVAL_POLICY)
    env = make_env(allow_unsigned=False, trust_file=trust)
    client = TestClient(env.app)
    card = example_card()
    model, version = card["model"]["name"], card["model"]["version"]
    digest = card["model"]["artifact_digest"]
    body = signed_approval(skey, model=model, version=version, digest=digest)
    approved = client.post("/v1/approvals", json=body, headers=auth("approver"))
    assert approved.status_code == 201, approved.text
    event = {"type": "promote", "stage": "production"}
    first = client.post("/v1/decisions", json={"card": card, "event": event},
                        headers=auth("evaluator"))
    assert first.status_code == 200 and first.json()["allow"] is True, first.text

    # The approver withdraws it (as `policyengine revoke-approval` does).
    from policyengine.approvals import approval_revocation_statement, now_text, record_statement

    key_file = tmp_path / "approver-1.key"
    key_file.write_text(skey + "\n")
    key_file.chmod(0o600)
    from datetime import UTC, datetime

    statement = approval_revocation_statement(
        approval_seq=approved.json()["seq"], model=model, version=version,
        reason="signed the wrong card", approver="approver-1", time=now_text(datetime.now(UTC)),
    )
    engine = env.app.state.svc.engine
    record_statement(engine, "approval_revoked", {"name": model, "version": version},
                     statement, approver_key=str(key_file))

    second = client.post("/v1/decisions", json={"card": card, "event": event},
                         headers=auth("evaluator"))
    assert second.status_code == 200 and second.json()["allow"] is False, second.text
    rejected = second.json()["decision"]["results"]
    failed = [r for r in rejected if r["rule"] == "model-risk-approval"]
    assert failed and failed[0]["outcome"] == "fail"
    history = [e for e in env.entries() if e.envelope["type"] == "decision"][-1].payload
    reasons = [r["reason"] for r in history["rejected"]]
    assert any("revoked by approver-1" in r and "signed the wrong card" in r for r in reasons)
