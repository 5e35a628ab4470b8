"""Generic HMAC webhooks: signature and replay checks, registration, stage changes."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from policyengine.service.webhooks_generic import generic_signature
from tests.service.conftest import GENERIC_SECRET, auth, example_card

URL = "/v1/webhooks/generic"


def _send(
    client,
    event: dict[str, Any] | None = None,
    *,
    secret: str = GENERIC_SECRET,
    delivery: str | None = None,
    raw: bytes | None = None,
):
    body = raw if raw is not None else json.dumps(event).encode()
    delivery = delivery or str(uuid.uuid4())
    ts = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-PolicyEngine-Delivery-Id": delivery,
        "X-PolicyEngine-Timestamp": ts,
        "X-PolicyEngine-Signature": generic_signature(secret, delivery, ts, body),
    }
    return client.post(URL, content=body, headers=headers)


def _types(env) -> list[str]:
    return [e.envelope["type"] for e in env.entries()]


def test_signature_format_is_hex_hmac_of_id_timestamp_body():
    """The documented signature: sha256=<hex HMAC-SHA256(secret, id.ts.body)>."""
    import hashlib
    import hmac

    want = hmac.new(b"k", b"d.1.{}", hashlib.sha256).hexdigest()
    assert generic_signature("k", "d", "1", b"{}") == f"sha256={want}"


def test_registration_with_card_is_evaluated(client, service_env):
    """A registered event carrying a card is recorded and evaluated by register policies."""
    card = example_card()
    r = _send(
        client,
        {
            "type": "registered",
            "model": card["model"]["name"],
            "version": card["model"]["version"],
            "card": card,
            "actor": "alice",
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["result"] == "evaluated" and r.json()["decision"] == "allow"
    # The decision is preceded by the policy bundle it was made under.
    assert _types(service_env) == ["registered", "policy_bundle", "decision"]


def test_stage_change_without_allow_is_violation(client, service_env):
    """A stage change with no allow in the log is a violation and asks the registry to revert."""
    r = _send(
        client,
        {
            "type": "stage_changed",
            "model": "m",
            "version": "1",
            "digest": "sha256:" + "c" * 64,
            "stage": "production",
        },
    )
    assert r.json()["result"] == "violation" and r.json()["action"] == "revert"
    assert _types(service_env) == ["violation"]


def test_stage_change_with_allow_is_promotion(client, service_env):
    """With a matching allow the stage change is recorded as a promotion."""
    card = example_card()
    body = {"card": card, "event": {"type": "promote", "stage": "production"}}
    assert client.post("/v1/decisions", json=body, headers=auth("evaluator")).json()["allow"]
    r = _send(
        client,
        {
            "type": "stage_changed",
            "model": card["model"]["name"],
            "version": card["model"]["version"],
            "digest": card["model"]["artifact_digest"],
            "stage": "production",
        },
    )
    assert r.json()["result"] == "kept"
    assert _types(service_env)[-1] == "promoted"


def test_other_events_are_recorded_without_raw_data(client, service_env):
    """Unknown event types are acknowledged; their data is kept only as a digest."""
    r = _send(client, {"type": "comment_added", "model": "m", "data": {"text": "private"}})
    assert r.json()["result"] == "recorded"
    entry = service_env.entries()[-1]
    assert entry.payload["data_digest"].startswith("sha256:") and "private" not in json.dumps(
        entry.payload
    )


def test_bad_signature_replay_and_bad_event_are_refused(client, service_env, fixed_minute):
    """Bad signature 401, replay 409, invalid event 422: each leaves only a bounded entry."""
    event = {"type": "comment_added", "model": "m"}
    assert _send(client, event, secret="wrong").status_code == 401
    assert _send(client, event, secret="wrong").status_code == 401
    delivery = str(uuid.uuid4())
    assert _send(client, event, delivery=delivery).status_code == 200
    assert _send(client, event, delivery=delivery).status_code == 409
    r = _send(client, {"type": "x", "model": "m", "unexpected": 1})
    assert r.status_code == 422 and "$.unexpected" in r.json()["message"]
    assert _types(service_env) == [
        "webhook_rejected",
        "webhook_received",
        "webhook_rejected",
        "webhook_rejected",
    ]


def test_registration_with_invalid_card_writes_nothing(client, service_env):
    """An invalid card is refused with 422 and JSON paths before any entry is written."""
    card = example_card()
    card["risk_tier"] = "extreme"
    r = _send(client, {"type": "registered", "model": "m", "version": "1", "card": card})
    assert r.status_code == 422
    assert any(e["path"].startswith("$.risk_tier") for e in r.json()["errors"])
    assert service_env.entries() == []


def test_long_delivery_ids_sharing_a_prefix_do_not_collide(client, service_env):
    """Two signed ids equal in their first 400 characters are two deliveries, not a replay."""
    raw = json.dumps({"type": "noted", "model": "m"}).encode()
    first = _send(client, raw=raw, delivery="d" * 400 + "-1")
    second = _send(client, raw=raw, delivery="d" * 400 + "-2")
    again = _send(client, raw=raw, delivery="d" * 400 + "-2")
    assert first.status_code == 200 and second.status_code == 200, second.text
    assert again.status_code == 409
    received = [e for e in service_env.entries() if e.envelope["type"] == "webhook_received"]
    assert len(received) == 2


def test_signed_webhook_with_duplicate_key_is_refused(client, service_env):
    """A correctly signed delivery naming a key twice is 422 and records no event."""
    raw = b'{"type": "noted", "model": "m", "model": "other"}'
    r = _send(client, raw=raw, delivery="dup-1")
    assert r.status_code == 422 and "duplicate_key" in r.json()["message"], r.text
    types = [e.envelope["type"] for e in service_env.entries()]
    assert "webhook_received" not in types
