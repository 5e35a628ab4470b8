"""MLflow webhook deliveries: signature, timestamp, replay, size and JSON checks; event handling."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import pytest

from policyengine.service.mlflow_client import MlflowRestClient
from policyengine.service.webhooks_mlflow import mlflow_signature
from tests.service.conftest import MLFLOW_SECRET, auth


def _headers(
    body: bytes,
    *,
    secret: str = MLFLOW_SECRET,
    delivery: str | None = None,
    stamp: int | None = None,
) -> dict[str, str]:
    delivery = delivery or str(uuid.uuid4())
    ts = str(int(time.time()) if stamp is None else stamp)
    # Computed here as MLflow documents it, independently of the service's helper.
    mac = hmac.new(secret.encode(), f"{delivery}.{ts}.".encode() + body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": ts,
        "X-MLflow-Signature": "v1," + base64.b64encode(mac).decode(),
    }


def _body(entity: str, action: str, data: dict[str, Any]) -> bytes:
    envelope = {
        "entity": entity,
        "action": action,
        "timestamp": "2026-11-26T15:00:00+00:00",
        "data": data,
    }
    return json.dumps(envelope).encode()


TAG_BODY = _body(
    "model_version_tag", "set", {"name": "m", "version": "1", "key": "team", "value": "risk"}
)


def _types(service_env) -> list[str]:
    return [e.envelope["type"] for e in service_env.entries()]


def test_signature_helper_matches_mlflow_format():
    """The service computes v1,<base64 HMAC-SHA256(secret, id.ts.body)> as MLflow does."""
    sig = mlflow_signature("s", "d", "1", b"{}")
    expected = base64.b64encode(hmac.new(b"s", b"d.1.{}", hashlib.sha256).digest()).decode()
    assert sig == f"v1,{expected}"


def test_valid_delivery_is_recorded(client, service_env):
    """A correctly signed tag event is acknowledged and recorded once."""
    r = client.post("/v1/webhooks/mlflow", content=TAG_BODY, headers=_headers(TAG_BODY))
    assert r.status_code == 200, r.text
    assert r.json()["result"] == "recorded"
    assert _types(service_env) == ["webhook_received"]


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("bad_signature", 401, "bad_signature"),
        ("stale", 400, "stale_timestamp"),
        ("malformed", 400, "malformed_json"),
        ("missing_headers", 400, "missing_headers"),
        ("bad_envelope", 422, "invalid_envelope"),
    ],
)
def test_rejected_delivery_leaves_one_bounded_entry(
    client, service_env, fixed_minute, case, status, reason
):
    """Each kind of bad delivery gets a 4xx and at most one webhook_rejected entry per minute."""
    for _ in range(3):
        body, headers = TAG_BODY, _headers(TAG_BODY)
        if case == "bad_signature":
            headers = _headers(TAG_BODY, secret="wrong")
        elif case == "stale":
            headers = _headers(TAG_BODY, stamp=int(fixed_minute) - 301)
        elif case == "malformed":
            body = b'{"entity": "model_version", "action": '
            headers = _headers(body)
        elif case == "missing_headers":
            headers = {"Content-Type": "application/json"}
        elif case == "bad_envelope":
            body = json.dumps({"entity": "model_version", "action": "created", "data": {}}).encode()
            headers = _headers(body)
        r = client.post("/v1/webhooks/mlflow", content=body, headers=headers)
        assert r.status_code == status, r.text
        assert r.json()["code"] == "webhook_rejected"
    entries = service_env.entries()
    assert [e.envelope["type"] for e in entries] == ["webhook_rejected"]
    assert entries[0].payload["reason"] == reason
    assert "value" not in json.dumps(entries[0].payload)  # no body content kept


def test_replayed_delivery_id_is_refused(client, service_env):
    """The same delivery id a second time is 409 and is not processed again."""
    headers = _headers(TAG_BODY)
    assert client.post("/v1/webhooks/mlflow", content=TAG_BODY, headers=headers).status_code == 200
    r = client.post("/v1/webhooks/mlflow", content=TAG_BODY, headers=headers)
    assert r.status_code == 409
    assert _types(service_env) == ["webhook_received", "webhook_rejected"]


def test_oversize_body_is_refused_before_reading(client, service_env):
    """A body over the limit gets 413 and only a webhook_rejected entry."""
    big = _body(
        "model_version_tag",
        "set",
        {"name": "m", "version": "1", "key": "k", "value": "x" * 300_000},
    )
    r = client.post("/v1/webhooks/mlflow", content=big, headers=_headers(big))
    assert r.status_code == 413
    assert _types(service_env) == ["webhook_rejected"]


def test_future_timestamp_is_refused(client, service_env):
    """A timestamp far in the future is refused like a stale one."""
    r = client.post(
        "/v1/webhooks/mlflow",
        content=TAG_BODY,
        headers=_headers(TAG_BODY, stamp=int(time.time()) + 3600),
    )
    assert r.status_code == 400
    assert _types(service_env) == ["webhook_rejected"]


def test_deep_json_is_refused(client, service_env):
    """JSON nested beyond the depth limit is refused without parsing it."""
    body = b'{"entity":"a","action":"b","data":' + b"[" * 5000 + b"]" * 5000 + b"}"
    r = client.post("/v1/webhooks/mlflow", content=body, headers=_headers(body))
    assert r.status_code == 422
    assert _types(service_env) == ["webhook_rejected"]


def test_unconfigured_secret_refuses_everything(make_env):
    """Without a configured secret no delivery is accepted."""
    from fastapi.testclient import TestClient

    env = make_env(env={"POLICYENGINE_MLFLOW_WEBHOOK_SECRET": ""})
    with TestClient(env.app) as c:
        r = c.post("/v1/webhooks/mlflow", content=TAG_BODY, headers=_headers(TAG_BODY))
    assert r.status_code == 503


def test_unknown_event_is_acknowledged_not_evaluated(client, service_env):
    """An event the service does not handle is recorded and acknowledged."""
    body = _body("prompt", "created", {"name": "p", "tags": {}, "description": None})
    r = client.post("/v1/webhooks/mlflow", content=body, headers=_headers(body))
    assert r.status_code == 200
    entry = service_env.entries()[-1]
    assert entry.envelope["type"] == "webhook_received"
    assert entry.payload["event"] == "prompt.created" and entry.payload["evaluated"] is False


def test_configured_tag_keeps_value_other_tags_only_digest(make_env):
    """Tags configured as card fields keep their value; other tag values are stored as a digest."""
    from fastapi.testclient import TestClient

    env = make_env(service={"mlflow": {"tag_fields": {"team": "owner.team"}}})
    other = _body(
        "model_version_tag",
        "set",
        {"name": "m", "version": "1", "key": "secret", "value": "s3cr3t"},
    )
    with TestClient(env.app) as c:
        assert (
            c.post("/v1/webhooks/mlflow", content=TAG_BODY, headers=_headers(TAG_BODY)).status_code
            == 200
        )
        assert (
            c.post("/v1/webhooks/mlflow", content=other, headers=_headers(other)).status_code == 200
        )
    first, second = env.entries()
    assert (
        first.payload["tag"]["value"] == "risk"
        and first.payload["tag"]["card_field"] == "owner.team"
    )
    assert "value" not in second.payload["tag"] and "s3cr3t" not in json.dumps(second.payload)


def test_webhook_needs_no_bearer_token_and_ignores_one(client):
    """Webhook endpoints authenticate by HMAC only; a bearer token does not help a bad signature."""
    headers = {**_headers(TAG_BODY, secret="wrong"), **auth("admin")}
    assert client.post("/v1/webhooks/mlflow", content=TAG_BODY, headers=headers).status_code == 401


class FakeMlflow:
    """An in-memory MLflow REST API: model versions, run artifacts, aliases."""

    def __init__(self) -> None:
        self.versions: dict[tuple[str, str], dict[str, Any]] = {}
        self.aliases: dict[tuple[str, str], str] = {}
        self.artifacts: dict[tuple[str, str], bytes] = {}
        self.calls: list[str] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        path, params = request.url.path, dict(request.url.params)
        self.calls.append(f"{request.method} {path}")
        if path.endswith("/model-versions/get"):
            mv = self.versions.get((params["name"], params["version"]))
            return (
                httpx.Response(200, json={"model_version": mv})
                if mv
                else httpx.Response(404, json={})
            )
        if path == "/get-artifact":
            data = self.artifacts.get((params["run_uuid"], params["path"]))
            return httpx.Response(200, content=data) if data is not None else httpx.Response(404)
        if path.endswith("/registered-models/alias"):
            return self._alias(request, params)
        return httpx.Response(404, json={"error_code": "ENDPOINT_NOT_FOUND"})

    def _alias(self, request: httpx.Request, params: dict[str, str]) -> httpx.Response:
        if request.method == "GET":
            version = self.aliases.get((params["name"], params["alias"]))
            if version is None:
                return httpx.Response(404, json={"error_code": "RESOURCE_DOES_NOT_EXIST"})
            return httpx.Response(200, json={"model_version": {"version": version}})
        body = json.loads(request.content)
        if request.method == "POST":
            self.aliases[(body["name"], body["alias"])] = body["version"]
        else:
            self.aliases.pop((body["name"], body["alias"]), None)
        return httpx.Response(200, json={})


@pytest.fixture
def fake_mlflow(service_env) -> FakeMlflow:
    """Point the service's MLflow client at an in-memory fake."""
    fake = FakeMlflow()
    service_env.app.state.svc.mlflow = MlflowRestClient(
        "http://mlflow.test", transport=httpx.MockTransport(fake.handler)
    )
    return fake


def _alias_body(name: str, alias: str, version: str) -> bytes:
    return _body(
        "model_version_alias", "created", {"name": name, "alias": alias, "version": version}
    )


def test_ungoverned_alias_is_recorded_only(client, service_env, fake_mlflow):
    """An alias not mapped to a stage is recorded and left alone."""
    body = _alias_body("m", "experimental", "1")
    r = client.post("/v1/webhooks/mlflow", content=body, headers=_headers(body))
    assert r.json()["result"] == "recorded"
    assert fake_mlflow.calls == []


def test_alias_without_allow_and_no_history_is_deleted(client, service_env, fake_mlflow):
    """A production alias set without an allow is a violation; with no earlier target, deleted."""
    fake_mlflow.aliases[("m", "production")] = "1"
    body = _alias_body("m", "production", "1")
    r = client.post("/v1/webhooks/mlflow", content=body, headers=_headers(body))
    assert r.status_code == 200 and r.json()["result"] == "violation"
    assert ("m", "production") not in fake_mlflow.aliases
    types = _types(service_env)
    assert types == ["webhook_received", "violation", "alias_reverted"]
    assert service_env.entries()[-1].payload["action"] == "deleted"


def test_alias_without_allow_is_restored_to_previous_version(client, service_env, fake_mlflow):
    """The alias goes back to the version our log last saw it on; the echo is only recorded."""
    first = _alias_body("m", "champion-old", "1")  # ungoverned alias: only recorded
    client.post("/v1/webhooks/mlflow", content=first, headers=_headers(first))
    svc = service_env.app.state.svc
    svc.append(
        "webhook_received",
        {"name": "m", "version": "1"},
        "webhook:mlflow",
        {
            "source": "mlflow",
            "event": "model_version_alias.created",
            "alias": "production",
            "version": "1",
        },
    )
    fake_mlflow.aliases[("m", "production")] = "2"
    body = _alias_body("m", "production", "2")
    r = client.post("/v1/webhooks/mlflow", content=body, headers=_headers(body))
    assert r.json()["result"] == "violation"
    assert fake_mlflow.aliases[("m", "production")] == "1"
    reverted = service_env.entries()[-1]
    assert reverted.envelope["type"] == "alias_reverted"
    assert reverted.payload["restored_version"] == "1" and reverted.payload["from_version"] == "2"
    echo = _alias_body("m", "production", "1")
    r = client.post("/v1/webhooks/mlflow", content=echo, headers=_headers(echo))
    assert r.json()["result"] == "recorded"
    assert service_env.entries()[-1].payload["echo_of_revert"] is True


def test_record_only_mode_leaves_alias(make_env):
    """With on_violation: record the violation is logged and the alias is not touched."""
    from fastapi.testclient import TestClient

    env = make_env(service={"mlflow": {"on_violation": "record"}})
    fake = FakeMlflow()
    env.app.state.svc.mlflow = MlflowRestClient(
        "http://x", transport=httpx.MockTransport(fake.handler)
    )
    fake.aliases[("m", "production")] = "1"
    body = _alias_body("m", "production", "1")
    with TestClient(env.app) as c:
        assert (
            c.post("/v1/webhooks/mlflow", content=body, headers=_headers(body)).json()["result"]
            == "violation"
        )
    assert fake.aliases[("m", "production")] == "1"
    assert [e.envelope["type"] for e in env.entries()] == ["webhook_received", "violation"]


def _created_body(name: str, version: str, run_id: str = "run1") -> bytes:
    data = {
        "name": name,
        "version": version,
        "source": "models:/x",
        "run_id": run_id,
        "tags": {},
        "description": None,
    }
    return _body("model_version", "created", data)


def test_new_version_with_card_artifact_is_evaluated(client, service_env, fake_mlflow):
    """model_version.created reads the card from the run artifact, records and evaluates it."""
    from tests.service.conftest import example_card

    card = example_card(version="1")
    fake_mlflow.versions[("credit-risk-scorer", "1")] = {
        "name": "credit-risk-scorer",
        "version": "1",
        "run_id": "run1",
        "tags": [],
    }
    fake_mlflow.artifacts[("run1", "model_card.json")] = json.dumps(card).encode()
    body = _created_body("credit-risk-scorer", "1")
    r = client.post("/v1/webhooks/mlflow", content=body, headers=_headers(body))
    assert r.json()["result"] == "evaluated", r.text
    registered, bundle, decision = service_env.entries()  # the decision follows its bundle
    assert bundle.envelope["type"] == "policy_bundle"
    assert (
        registered.envelope["type"] == "registered"
        and registered.payload["data"]["card_source"] == "artifact"
    )
    assert registered.envelope["subject"]["digest"] == card["model"]["artifact_digest"]
    assert decision.envelope["type"] == "decision"


def test_new_version_with_invalid_card_is_a_violation(client, service_env, fake_mlflow):
    """A version whose card does not validate is registered and recorded as a violation."""
    fake_mlflow.versions[("m", "1")] = {
        "name": "m",
        "version": "1",
        "run_id": "run1",
        "tags": [{"key": "policyengine.card", "value": '{"model": {}}'}],
    }
    body = _created_body("m", "1")
    r = client.post("/v1/webhooks/mlflow", content=body, headers=_headers(body))
    assert r.status_code == 200 and r.json()["result"] == "violation"
    assert _types(service_env) == ["registered", "violation"]


def test_mlflow_unreachable_is_5xx_so_the_delivery_is_retried(client, service_env):
    """When MLflow cannot be asked the delivery fails with 5xx; its id is released for the retry."""

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    service_env.app.state.svc.mlflow = MlflowRestClient(
        "http://x", transport=httpx.MockTransport(down)
    )
    body = _created_body("m", "1")
    headers = _headers(body)
    assert client.post("/v1/webhooks/mlflow", content=body, headers=headers).status_code == 502
    service_env.app.state.svc.mlflow = None
    assert client.post("/v1/webhooks/mlflow", content=body, headers=headers).status_code == 200


def test_new_version_card_from_tags_via_importer(client, service_env, fake_mlflow):
    """Without a card tag or artifact, card.<path> tags go through the MLflow importer."""
    tags = [
        {"key": "card.model.artifact_digest", "value": "sha256:" + "d" * 64},
        {"key": "card.risk_tier", "value": "low"},
    ]
    fake_mlflow.versions[("m", "3")] = {"name": "m", "version": "3", "run_id": "r", "tags": tags}
    body = _created_body("m", "3", run_id="r")
    r = client.post("/v1/webhooks/mlflow", content=body, headers=_headers(body))
    assert r.status_code == 200
    registered = service_env.entries()[0]
    assert registered.payload["data"]["card_source"] == "mlflow-metadata"
    assert registered.envelope["subject"]["digest"] == "sha256:" + "d" * 64
