"""Health, readiness, metrics, request ids and the OpenAPI document."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.service.conftest import auth, example_card


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_parse_and_move_with_decisions(client):
    """/metrics parses with prometheus_client and its counters move when decisions happen."""
    before = _samples(client.get("/metrics").text)
    key = ("policyengine_decisions_total", (("event", "promote"), ("outcome", "deny")))
    assert before.get(key, 0) == 0
    body = {"card": example_card(auc=0.1), "event": {"type": "promote", "stage": "production"}}
    decided = client.post("/v1/decisions", json=body, headers=auth("evaluator"))
    after = _samples(client.get("/metrics").text)
    assert after[key] == 1
    assert (
        after[
            ("policyengine_policy_decisions_total", (("outcome", "deny"), ("policy", "svc-test")))
        ]
        == 1
    )
    assert after[("policyengine_evaluation_seconds_count", ())] == 1
    assert after[("policyengine_log_append_seconds_count", ())] == 1  # the gate's own append
    # The log ends at the decision (after the policy bundle it was made under).
    assert after[("policyengine_log_size", ())] == decided.json()["seq"] + 1
    # Bundle and decision went in one transaction (a lone request is a group of one).
    assert after[("policyengine_log_commits", ())] == 1


def test_metrics_count_webhook_results(client):
    """Refused webhook deliveries are counted by reason."""
    client.post("/v1/webhooks/mlflow", content=b"{}")
    samples = _samples(client.get("/metrics").text)
    key = (
        "policyengine_webhook_deliveries_total",
        (("result", "missing_headers"), ("source", "mlflow")),
    )
    assert samples[key] == 1


def test_health_and_ready(client):
    """healthz is always ok; readyz is ready with a working log and key."""
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"


def test_not_ready_without_signing_key(client, service_env):
    """Without a usable signing key the service reports 503 not ready."""
    service_env.app.state.svc.signer = None
    r = client.get("/readyz")
    assert r.status_code == 503 and "signing key" in r.json()["reason"]


def test_not_ready_when_log_unreachable(client, service_env):
    """A log that cannot answer makes readyz 503."""
    svc = service_env.app.state.svc

    class Broken:
        def size(self) -> int:
            raise OSError("gone")

    real, svc.log = svc.log, Broken()
    try:
        assert client.get("/readyz").status_code == 503
    finally:
        svc.log = real


def test_request_id_is_echoed_or_generated(client):
    """A sane X-Request-Id is echoed; otherwise one is generated."""
    assert (
        client.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    generated = client.get("/healthz", headers={"X-Request-Id": "bad id\n"}).headers["x-request-id"]
    assert generated != "bad id\n" and len(generated) == 32


def test_openapi_lists_the_endpoints(client):
    """The OpenAPI document is published and names every route."""
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/decisions",
        "/v1/approvals",
        "/v1/waivers",
        "/v1/promotions",
        "/v1/events",
        "/v1/webhooks/mlflow",
        "/v1/webhooks/generic",
        "/v1/audit/entries",
        "/v1/audit/entries/{seq}",
        "/v1/audit/checkpoint",
        "/v1/audit/proof/inclusion",
        "/v1/audit/proof/consistency",
        "/v1/audit/export",
        "/metrics",
        "/healthz",
        "/readyz",
    ):
        assert path in paths, path


def test_unexpected_error_has_no_stack_trace(client, service_env, monkeypatch):
    """An unexpected failure is a 500 ErrorV1 without internals."""
    from policyengine.service import operations

    def boom(*a, **k):
        raise RuntimeError("secret internals at /srv/x.py line 3")

    monkeypatch.setattr(operations, "decide", boom)
    body = {"card": example_card(), "event": {"type": "promote", "stage": "production"}}
    r = client.post("/v1/decisions", json=body, headers=auth("evaluator"))
    assert r.status_code == 500
    assert r.json()["code"] == "internal_error" and "secret internals" not in r.text


def test_logs_are_json_with_request_id_and_no_secrets(client):
    """Each request logs one JSON line with its request id; tokens and bodies never appear."""
    import io
    import json

    import structlog

    from policyengine.service.app import configure_logging
    from tests.service.conftest import TOKENS

    buf = io.StringIO()
    configure_logging(stream=buf)
    try:
        card = example_card(auc=0.417391)
        body = {"card": card, "event": {"type": "promote", "stage": "production"}}
        client.post(
            "/v1/decisions", json=body, headers={**auth("evaluator"), "X-Request-Id": "req-42"}
        )
    finally:
        structlog.reset_defaults()
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    access = [x for x in lines if x.get("event") == "request"]
    assert access and access[0]["request_id"] == "req-42" and access[0]["actor"] == "evaluator-1"
    text = buf.getvalue()
    for secret in (TOKENS["evaluator"], "credit-risk-scorer", "0.417391"):
        assert secret not in text
