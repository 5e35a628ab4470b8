"""Write endpoints: same semantics as gate, approve, waive, promote and event."""

from __future__ import annotations

from audit.keys import NoteVerifier
from audit.receipt import verify_receipt
from tests.service.conftest import auth, example_card

PROMOTE = {"type": "promote", "stage": "production"}


def _decide(client, card, event=PROMOTE):
    return client.post(
        "/v1/decisions", json={"card": card, "event": event}, headers=auth("evaluator")
    )


def test_decision_allow_returns_receipt_that_verifies_offline(client, service_env):
    """An allow is logged with the caller as actor; its receipt verifies with the log key."""
    r = _decide(client, example_card())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["allow"] is True and body["decision"]["decision"] == "allow"
    signer = service_env.app.state.svc.signer
    verify_receipt(body["receipt"], [NoteVerifier.from_vkey(signer.vkey)])
    entry = service_env.entries()[body["seq"]]
    assert entry.envelope["type"] == "decision" and entry.envelope["actor"] == "evaluator-1"


def test_decision_deny_is_200_with_reasons(client):
    """A deny is an answer, not an error: 200 with allow false and the failed rule."""
    r = _decide(client, example_card(auc=0.5))
    assert r.status_code == 200
    assert r.json()["allow"] is False
    assert any(res["outcome"] == "fail" for res in r.json()["decision"]["results"])


def test_invalid_card_is_422_with_json_paths_and_writes_nothing(client, service_env):
    """A card that fails the schema gets 422 with the JSON path of each problem."""
    card = example_card()
    card["risk_tier"] = "extreme"
    r = _decide(client, card)
    assert r.status_code == 422
    assert any(e["path"].startswith("$.risk_tier") for e in r.json()["errors"]), r.json()
    assert service_env.entries() == []


def test_request_shape_errors_are_422_with_paths(client, service_env):
    """A body missing fields gets 422 naming $.event.stage; no stack trace."""
    r = client.post("/v1/decisions", json={"card": {}, "event": {}}, headers=auth("evaluator"))
    assert r.status_code == 422
    assert "$.event.stage" in [e["path"] for e in r.json()["errors"]]
    assert "Traceback" not in r.text


def test_malformed_and_deep_json_are_refused(client):
    """Malformed JSON is 400, over-deep JSON 422, both as ErrorV1."""
    h = {**auth("evaluator"), "Content-Type": "application/json"}
    r = client.post("/v1/decisions", content=b"{not json", headers=h)
    assert r.status_code == 400 and r.json()["code"] == "malformed_json"
    r = client.post("/v1/decisions", content=b"[" * 100 + b"]" * 100, headers=h)
    assert r.status_code == 422 and r.json()["code"] == "json_too_deep"


def test_oversize_body_is_413(client):
    """A body over the limit is refused."""
    r = client.post("/v1/decisions", content=b"x" * 300_000, headers=auth("evaluator"))
    assert r.status_code == 413


def test_promotion_needs_allow_then_succeeds(client, service_env):
    """POST /v1/promotions is 409 without an allow for that digest and stage, 201 after one."""
    card = example_card()
    body = {
        "model": card["model"]["name"],
        "version": card["model"]["version"],
        "digest": card["model"]["artifact_digest"],
        "stage": "production",
    }
    r = client.post("/v1/promotions", json=body, headers=auth("evaluator"))
    assert r.status_code == 409 and r.json()["code"] == "promotion_refused"
    assert service_env.entries() == []
    assert _decide(client, card).json()["allow"] is True
    r = client.post("/v1/promotions", json=body, headers=auth("evaluator"))
    assert r.status_code == 201, r.text
    assert service_env.entries()[-1].envelope["type"] == "promoted"


def test_event_is_recorded_with_caller_as_actor(client, service_env):
    """POST /v1/events appends a validated lifecycle event."""
    r = client.post(
        "/v1/events",
        json={"type": "incident", "model": "m", "version": "1", "data": {"summary": "bad outputs"}},
        headers=auth("evaluator"),
    )
    assert r.status_code == 201, r.text
    entry = service_env.entries()[-1]
    assert entry.envelope["type"] == "incident" and entry.envelope["actor"] == "evaluator-1"


def test_unknown_event_type_is_refused(client, service_env):
    """An event type the CLI would refuse is refused here too, writing nothing."""
    r = client.post(
        "/v1/events", json={"type": "exploded", "model": "m"}, headers=auth("evaluator")
    )
    assert r.status_code == 422
    assert service_env.entries() == []


def test_approval_records_caller_as_approver(client, service_env):
    """The approver in the statement is the authenticated token's id."""
    card = example_card()
    body = {
        "model": "credit-risk-scorer",
        "version": "2.3.0",
        "digest": card["model"]["artifact_digest"],
        "role": "model-risk",
        "expires": "30d",
    }
    r = client.post("/v1/approvals", json=body, headers=auth("approver"))
    assert r.status_code == 201, r.text
    entry = service_env.entries()[-1]
    assert (
        entry.envelope["type"] == "approval"
        and entry.payload["statement"]["approver"] == "approver-1"
    )


def test_waiver_is_recorded(client, service_env):
    """POST /v1/waivers appends a waiver statement with a generated id."""
    body = {
        "rules": ["svc-test/auc-floor"],
        "model": "m",
        "version": "1",
        "reason": "known issue",
        "ticket": "RISK-1",
        "expires": "7d",
    }
    r = client.post("/v1/waivers", json=body, headers=auth("approver"))
    assert r.status_code == 201, r.text
    assert r.json()["statement"]["id"].startswith("w-")
    assert service_env.entries()[-1].envelope["type"] == "waiver"


def test_unsigned_approvals_refused_unless_configured(make_env):
    """Without allow_unsigned_approvals an unsigned approval is refused and nothing is written."""
    from fastapi.testclient import TestClient

    env = make_env(allow_unsigned=False)
    body = {"model": "m", "version": "1", "digest": "sha256:" + "a" * 64, "role": "model-risk"}
    with TestClient(env.app) as c:
        r = c.post("/v1/approvals", json=body, headers=auth("approver"))
    assert r.status_code == 422
    assert env.entries() == []


def test_signed_approval_counts_and_tampered_one_is_refused(make_env, tmp_path):
    """A signed approval counts; the same signature over another digest is 422 and not written."""
    from fastapi.testclient import TestClient

    from tests.service.statements import signed_approval, trust_file

    trust, skey = trust_file(tmp_path)
    env = make_env(allow_unsigned=False, trust_file=trust)
    body = signed_approval(skey)
    with TestClient(env.app) as c:
        good = c.post("/v1/approvals", json=body, headers=auth("approver"))
        bad = c.post(
            "/v1/approvals", json={**body, "digest": "sha256:" + "f" * 64}, headers=auth("approver")
        )
    assert good.status_code == 201 and good.json()["counts"] is True, good.text
    assert bad.status_code == 422, bad.text
    assert bad.json()["code"] == "statement_invalid"
    assert bad.json()["errors"][0]["path"] == "$.signature"
    assert "does not verify" in bad.json()["message"]
    assert len(env.entries()) == 1
    assert env.entries()[0].payload["signature"] == body["signature"]
