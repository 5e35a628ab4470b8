"""OpenTelemetry traces of the service: W3C context in, decision and append spans out."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
import structlog

from tests.conftest import REPO_ROOT
from tests.service.conftest import auth, build_env, example_card
from tests.service.receivers import start_receiver

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
DENIED = {"card": example_card(auc=0.1), "event": {"type": "promote", "stage": "production"}}


def test_decision_spans_join_the_callers_trace(tmp_path):
    """A decision with a traceparent yields server, decision and append spans in that trace."""
    from fastapi.testclient import TestClient
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from policyengine.service.app import configure_logging
    from policyengine.service.settings import TracingSettings
    from policyengine.service.tracing import open_tracing

    exporter = InMemorySpanExporter()
    env = build_env(tmp_path, tracing=open_tracing(TracingSettings(), exporter=exporter))
    lines, before = io.StringIO(), structlog.get_config()
    configure_logging(stream=lines)
    try:
        with TestClient(env.app) as client:
            headers = {**auth("evaluator"), "traceparent": TRACEPARENT}
            r = client.post("/v1/decisions", json=DENIED, headers=headers)
    finally:
        structlog.configure(**before)
    assert r.status_code == 200
    access = [json.loads(x) for x in lines.getvalue().splitlines() if '"request"' in x]
    assert [a["trace_id"] for a in access] == [TRACE_ID]  # the log line leads to the trace
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert {"POST /v1/decisions", "policyengine.decision", "policyengine.log.append"} <= set(spans)
    assert {format(s.context.trace_id, "032x") for s in spans.values()} == {TRACE_ID}
    server, decision, append = (
        spans["POST /v1/decisions"],
        spans["policyengine.decision"],
        spans["policyengine.log.append"],
    )
    assert format(server.parent.span_id, "016x") == PARENT_ID
    assert decision.parent.span_id == server.context.span_id
    assert append.parent.span_id == decision.context.span_id
    attrs = decision.attributes
    assert attrs["policyengine.decision.outcome"] == "deny"
    assert attrs["policyengine.bundle.digest"] == r.json()["decision"]["bundle_digest"]
    assert attrs["policyengine.decision.rules_evaluated"] == len(r.json()["decision"]["results"])
    assert attrs["policyengine.decision.duration_ms"] >= 0
    assert append.attributes["policyengine.log.entry_type"] == "decision"
    assert server.attributes["http.response.status_code"] == 200


def test_webhook_delivery_has_its_span(tmp_path):
    """A refused webhook delivery is a span naming its source and result."""
    from fastapi.testclient import TestClient
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from policyengine.service.settings import TracingSettings
    from policyengine.service.tracing import open_tracing

    exporter = InMemorySpanExporter()
    env = build_env(tmp_path, tracing=open_tracing(TracingSettings(), exporter=exporter))
    with TestClient(env.app) as client:
        client.post("/v1/webhooks/mlflow", content=b"{}")
    spans = exporter.get_finished_spans()
    (delivery,) = [s for s in spans if s.name == "policyengine.webhook.delivery"]
    assert delivery.attributes["policyengine.webhook.source"] == "mlflow"
    assert delivery.attributes["policyengine.webhook.result"] == "missing_headers"


def test_spans_reach_an_otlp_http_collector(tmp_path):
    """Configured with an endpoint, the service exports its spans over OTLP/HTTP protobuf."""
    from fastapi.testclient import TestClient
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    collector = start_receiver()
    try:
        env = build_env(tmp_path, service={"tracing": {"endpoint": collector.url}})
        with TestClient(env.app) as client:
            headers = {**auth("evaluator"), "traceparent": TRACEPARENT}
            assert client.post("/v1/decisions", json=DENIED, headers=headers).status_code == 200
        # Leaving the client ran the lifespan's shutdown, which flushes the batch.
        received = collector.wait_for(lambda got: len(got) >= 1)
    finally:
        collector.close()
    assert {r.path for r in received} == {"/v1/traces"}
    spans = []
    for r in received:
        request = ExportTraceServiceRequest.FromString(r.body)
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                spans.extend(ss.spans)
    decision = next(s for s in spans if s.name == "policyengine.decision")
    assert decision.trace_id.hex() == TRACE_ID
    attrs = {a.key: a.value for a in decision.attributes}
    assert attrs["policyengine.decision.outcome"].string_value == "deny"
    assert attrs["policyengine.bundle.digest"].string_value.startswith("sha256:")


def test_tracing_is_off_and_not_imported_unless_configured():
    """Without an endpoint the CLI never imports OpenTelemetry and the service not its SDK."""
    code = (
        "import sys, policyengine.cli;"
        "cli = any(m.startswith('opentelemetry') for m in sys.modules);"
        "import policyengine.service.app;"
        "from policyengine.service.settings import load_service_settings;"
        "from policyengine.service.tracing import open_tracing;"
        "t = open_tracing(load_service_settings(data={}, env={}).tracing);"
        "print(cli, t.enabled, any(m.startswith('opentelemetry.sdk') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    # (FastAPI itself imports the OpenTelemetry API when it is installed; the SDK stays out.)
    assert out.stdout.split() == ["False", "False", "False"]


def test_endpoint_comes_from_the_standard_variables():
    """OTEL_EXPORTER_OTLP_ENDPOINT turns tracing on; OTEL_SDK_DISABLED turns it off."""
    from policyengine.service.settings import load_service_settings

    def endpoint(env, data=None):
        return load_service_settings(data=data or {}, env=env).tracing.endpoint

    assert endpoint({}) is None
    assert endpoint({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"}) == "http://c:4318/v1/traces"
    assert endpoint({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c/t"}) == "http://c/t"
    assert endpoint({}, {"tracing": {"endpoint": "http://s:4318"}}) == "http://s:4318/v1/traces"
    off = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}
    assert endpoint(off) is None


def test_misspelled_tracing_key_is_refused():
    """An unknown key under tracing: is a configuration error naming it."""
    from policyengine.errors import ConfigError
    from policyengine.service.settings import load_service_settings

    with pytest.raises(ConfigError, match="endpiont"):
        load_service_settings(data={"tracing": {"endpiont": "http://c"}}, env={})
