"""Signed notifications: violations, denials and failed verification reach operators."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from policyengine.errors import ConfigError
from policyengine.service.notify import Notification, Notifier
from policyengine.service.settings import (
    NotificationSettings,
    NotifyEndpoint,
    load_service_settings,
)
from tests.service.conftest import auth, build_env, example_card
from tests.service.receivers import closed_port_url, start_receiver
from tests.service.test_webhooks_mlflow import _alias_body, _headers

SECRET = "notify-secret-0123456789"
DENIED = {"card": example_card(auc=0.1), "event": {"type": "promote", "stage": "production"}}


def _notifications(endpoints, **extra):
    return {"notifications": {"endpoints": endpoints, **extra}}


def _verified(received) -> dict:
    """The body of a delivery whose signature the receiver checks itself (HMAC-SHA256)."""
    h = received.headers
    delivery, stamp = h["X-PolicyEngine-Delivery-Id"], h["X-PolicyEngine-Timestamp"]
    mac = hmac.new(SECRET.encode(), f"{delivery}.{stamp}.".encode() + received.body, hashlib.sha256)
    assert hmac.compare_digest(h["X-PolicyEngine-Signature"], "sha256=" + mac.hexdigest())
    assert abs(int(stamp) - time.time()) < 300
    return json.loads(received.body)


def _counts(text: str) -> dict[tuple[str, str], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "policyengine_notifications_total":
                out[(s.labels["event"], s.labels["result"])] = s.value
    return out


def test_violation_is_notified_signed(tmp_path):
    """An MLflow alias moved without an allow sends a signed violation notification."""
    from fastapi.testclient import TestClient

    receiver = start_receiver()
    try:
        service = {"mlflow": {"on_violation": "record"}} | _notifications([{"url": receiver.url}])
        env = build_env(tmp_path, service=service, env={"POLICYENGINE_NOTIFY_SECRET": SECRET})
        body = _alias_body("fraud", "production", "3")
        with TestClient(env.app) as client:
            r = client.post("/v1/webhooks/mlflow", content=body, headers=_headers(body))
            assert r.status_code == 200 and r.json()["result"] == "violation"
            (got,) = receiver.wait_for(lambda got: len(got) >= 1)
            metrics = client.get("/metrics").text
    finally:
        receiver.close()
    note = _verified(got)
    assert note["kind"] == "Notification" and note["event"] == "violation"
    assert note["subject"] == {"name": "fraud", "version": "3"}
    assert note["details"]["kind"] == "alias_without_allow"
    assert note["details"]["alias"] == "production"
    assert "alias_without_allow" in note["summary"]
    assert _counts(metrics)[("violation", "sent")] == 1


def test_denied_decision_is_notified_in_slack_format(tmp_path):
    """A denied decision reaches a Slack-compatible endpoint as signed {"text": ...}."""
    from fastapi.testclient import TestClient

    receiver = start_receiver()
    try:
        service = _notifications([{"url": receiver.url, "format": "slack"}])
        env = build_env(tmp_path, service=service, env={"POLICYENGINE_NOTIFY_SECRET": SECRET})
        with TestClient(env.app) as client:
            allowed = {**DENIED, "card": example_card(auc=0.95, digest_seed="b")}
            assert client.post("/v1/decisions", json=allowed, headers=auth("evaluator")).json()[
                "allow"
            ]
            assert not client.post("/v1/decisions", json=DENIED, headers=auth("evaluator")).json()[
                "allow"
            ]
            (got,) = receiver.wait_for(lambda got: len(got) >= 1)
    finally:
        receiver.close()
    note = _verified(got)
    assert set(note) == {"text"}
    assert "decision_denied" in note["text"] and "auc below 0.8" in note["text"]


def test_failed_verification_is_notified(tmp_path):
    """A log that disagrees with its signed checkpoint refuses the append and notifies."""
    from fastapi.testclient import TestClient

    receiver = start_receiver()
    try:
        service = _notifications([{"url": receiver.url, "events": ["verification_failed"]}])
        env = build_env(tmp_path, service=service, env={"POLICYENGINE_NOTIFY_SECRET": SECRET})
        with TestClient(env.app, raise_server_exceptions=False) as client:
            assert client.post("/v1/decisions", json=DENIED, headers=auth("evaluator")).is_success
            with sqlite3.connect(tmp_path / "audit.db") as db:  # tamper with the signed root
                db.execute("UPDATE audit_checkpoints SET root = zeroblob(32)")
            r = client.post("/v1/decisions", json=DENIED, headers=auth("evaluator"))
            assert r.status_code == 503
            (got,) = receiver.wait_for(lambda got: len(got) >= 1)
            metrics = client.get("/metrics").text
    finally:
        receiver.close()
    note = _verified(got)
    assert note["event"] == "verification_failed"
    assert note["details"]["error"] == "audit_integrity_error"
    assert "policyengine_verification_failures_total 1.0" in metrics


def test_dead_endpoint_never_fails_or_blocks_decisions(tmp_path):
    """With an endpoint on a closed port every decision is 200 and failures are counted."""
    from fastapi.testclient import TestClient

    service = _notifications(
        [{"url": closed_port_url()}], max_attempts=2, backoff_seconds=0.01, queue_size=2
    )
    env = build_env(tmp_path, service=service, env={"POLICYENGINE_NOTIFY_SECRET": SECRET})
    with TestClient(env.app) as client:
        for _ in range(6):
            r = client.post("/v1/decisions", json=DENIED, headers=auth("evaluator"))
            assert r.status_code == 200 and r.json()["allow"] is False
        counts: dict = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # a wait with a generous bound, not a timing assert
            counts = _counts(client.get("/metrics").text)
            if counts[("decision_denied", "failed")] + counts[("decision_denied", "dropped")] == 6:
                break
            time.sleep(0.05)
    assert counts[("decision_denied", "sent")] == 0
    assert counts[("decision_denied", "failed")] + counts[("decision_denied", "dropped")] == 6


def test_retries_with_backoff_until_delivered():
    """A delivery failing twice is retried and counted once as sent."""
    import threading

    calls, done, counted = [], threading.Event(), []
    statuses = iter([503, 500, 204])

    def send(url, body, headers, timeout):
        calls.append(headers["X-PolicyEngine-Delivery-Id"])
        return next(statuses)

    def count(event, result):
        counted.append((event, result))
        done.set()

    settings = NotificationSettings(
        endpoints=(NotifyEndpoint("http://r"),), secret=SECRET, backoff_s=0.001
    )
    notifier = Notifier(settings, count, send=send)
    notifier.notify(Notification("violation", "x"))
    assert done.wait(60)
    notifier.close()
    assert counted == [("violation", "sent")]
    assert len(calls) == 3 and len(set(calls)) == 1  # retries resend the same delivery id


def test_endpoints_need_the_signing_secret():
    """Endpoints without the secret set refuse to start, naming the variable."""
    with pytest.raises(ConfigError, match="POLICYENGINE_NOTIFY_SECRET"):
        load_service_settings(data=_notifications([{"url": "http://r"}]), env={})


def test_endpoint_url_from_environment_and_bad_keys():
    """url_env reads the URL from a variable; a misspelled key or missing variable is an error."""
    env = {"POLICYENGINE_NOTIFY_SECRET": SECRET, "HOOK": "https://hooks.example/x"}
    settings = load_service_settings(data=_notifications([{"url_env": "HOOK"}]), env=env)
    assert settings.notifications.endpoints[0].url == "https://hooks.example/x"
    with pytest.raises(ConfigError, match="HOOK2"):
        load_service_settings(data=_notifications([{"url_env": "HOOK2"}]), env=env)
    with pytest.raises(ConfigError, match="ulr"):
        load_service_settings(data=_notifications([{"ulr": "http://r"}]), env=env)
    with pytest.raises(ConfigError, match="events"):
        load_service_settings(data=_notifications([{"url": "http://r", "events": ["x"]}]), env=env)
