"""Redaction and legal holds over HTTP: admin only, the retention rules decide, 409 with reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.service.conftest import auth, example_card


def _decide(client) -> int:
    resp = client.post("/v1/decisions", headers=auth("evaluator"),
                       json={"card": example_card(), "event": {"stage": "production"}})
    assert resp.status_code == 200, resp.text
    return int(resp.json()["seq"])


def _old_entry(service_env) -> int:
    from audit.log import AuditLog

    log = AuditLog.open(service_env.log_url)
    try:
        when = datetime.now(UTC) - timedelta(days=400)
        return log.append("registered", {"name": "old-model", "version": "1"}, "registry",
                          {"note": "personal data"}, time=when).seq
    finally:
        log.close()


def test_only_admin_may_redact_or_hold(client):
    """Auditor, evaluator and approver tokens get 403 on every admin endpoint; nothing written."""
    seq = _decide(client)
    bodies = {"/v1/admin/redactions": {"seq": seq, "reason": "r"},
              "/v1/admin/holds": {"model": "m", "reason": "r"},
              "/v1/admin/releases": {"hold_id": seq, "reason": "r"}}
    for role in ("auditor", "evaluator", "approver"):
        for path, body in bodies.items():
            resp = client.post(path, headers=auth(role), json=body)
            assert resp.status_code == 403, (role, path, resp.text)
    assert client.get("/v1/audit/entries", headers=auth("auditor")).json()["entries"][-1][
        "seq"] == seq


def test_redaction_inside_floor_is_409_with_reason(client, service_env):
    """A fresh decision cannot be redacted: 409 retention_refused naming the floor."""
    seq = _decide(client)
    resp = client.post("/v1/admin/redactions", headers=auth("admin"),
                       json={"seq": seq, "reason": "erasure request 1"})
    assert resp.status_code == 409, resp.text
    body = resp.json()
    assert body["code"] == "retention_refused" and "retention floor" in body["message"]
    assert len(service_env.entries()) == seq + 1


def test_hold_blocks_redaction_until_released(client, service_env):
    """Under hold an old entry is refused (409); released, it is redacted and the log verifies."""
    from tests.service.conftest import verify_chain

    seq = _old_entry(service_env)
    held = client.post("/v1/admin/holds", headers=auth("admin"),
                       json={"model": "old-model", "reason": "litigation"})
    assert held.status_code == 201 and held.json()["type"] == "legal_hold", held.text
    refused = client.post("/v1/admin/redactions", headers=auth("admin"),
                          json={"seq": seq, "reason": "erasure"})
    assert refused.status_code == 409 and "legal hold" in refused.json()["message"]
    released = client.post("/v1/admin/releases", headers=auth("admin"),
                           json={"hold_id": held.json()["seq"], "reason": "closed"})
    assert released.status_code == 201 and released.json()["holds"] == [held.json()["seq"]]
    done = client.post("/v1/admin/redactions", headers=auth("admin"),
                       json={"seq": seq, "reason": "erasure"})
    assert done.status_code == 201 and done.json()["type"] == "redaction", done.text
    report = verify_chain(service_env.log_url, service_env.root / "signing.key")
    assert report.ok and seq in report.redacted_seqs


def test_bad_requests_are_422(client):
    """An unknown entry, a missing reason or a hold with neither model nor seq is 422."""
    admin = auth("admin")
    assert client.post("/v1/admin/redactions", headers=admin,
                       json={"seq": 999, "reason": "r"}).status_code == 422
    assert client.post("/v1/admin/redactions", headers=admin, json={"seq": 0}).status_code == 422
    assert client.post("/v1/admin/holds", headers=admin,
                       json={"reason": "r"}).status_code == 422
