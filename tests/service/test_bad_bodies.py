"""Hostile JSON bodies are 422 ErrorV1 (never 500), keep the connection, and log nothing."""

from __future__ import annotations

import json
import random
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.service.conftest import auth, example_card

PROMOTE = {"type": "promote", "stage": "production"}


def _body(metric: str) -> bytes:
    """A decision request whose first metric value is written as ``metric``."""
    text = json.dumps({"card": example_card(auc="@@"), "event": PROMOTE})  # type: ignore[arg-type]
    return text.replace('"@@"', metric).encode()


BODIES = {
    "int-5001-digits": _body("1" * 5001),
    "metric-10**400": _body("1" + "0" * 400),
    "nan": _body("NaN"),
    "inf": _body("-Infinity"),
    "1e400": _body("1.0e+400"),
    "deep": b'{"card": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # under the 256 KiB limit
    "nul-byte": _body("0.9") + b"\x00",
    "escaped-nul": _body('0.9, "x": "\\u0000"'),
    "duplicate-key": _body("0.9").replace(b'"card": {', b'"card": {"risk_tier": "low", ', 1),
    "invalid-utf8": _body("0.9").replace(b"holdout", b"hold\xffout"),
}


def _post(client, body: bytes, path: str = "/v1/decisions"):
    headers = {**auth("evaluator"), "Content-Type": "application/json"}
    return client.post(path, content=body, headers=headers)


@pytest.mark.parametrize("name", sorted(BODIES))
def test_hostile_decision_body_is_422_error_v1(client, service_env, name):
    """Each class is 422 with an ErrorV1 body naming the problem; nothing is logged."""
    r = _post(client, BODIES[name])
    assert r.status_code == 422, r.text
    body = r.json()
    assert set(body) == {"code", "message", "errors"} and "\n" not in body["message"]
    assert body["code"] in {"bad_input", "json_too_deep", "duplicate_key"}
    assert service_env.entries() == []


def test_duplicate_key_names_its_path(client):
    """A duplicate key is refused naming the object that holds it."""
    body = _post(client, BODIES["duplicate-key"]).json()
    assert "duplicate key 'risk_tier' at $.card" in body["message"]
    assert body["errors"][0]["path"] == "$.card"


def test_out_of_range_metric_names_its_path(client):
    """A 10**400 metric is refused at $.card.metrics[0].value."""
    body = _post(client, BODIES["metric-10**400"]).json()
    assert body["errors"][0]["path"] == "$.card.metrics[0].value"


def _signed(client, body: bytes):
    """POST ``body`` to the generic webhook with a valid signature."""
    import time
    import uuid

    from policyengine.service.webhooks_generic import generic_signature
    from tests.service.conftest import GENERIC_SECRET

    delivery, ts = str(uuid.uuid4()), str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-PolicyEngine-Delivery-Id": delivery,
               "X-PolicyEngine-Timestamp": ts,
               "X-PolicyEngine-Signature": generic_signature(GENERIC_SECRET, delivery, ts, body)}
    return client.post("/v1/webhooks/generic", content=body, headers=headers)


WEBHOOK = {
    "int-5001-digits": b'{"type": "registered", "model": "m", "data": {"n": ' + b"1" * 5001
                       + b"}}",
    "1e400": b'{"type": "registered", "model": "m", "data": {"n": 1.0e+400}}',
    "duplicate-key": b'{"type": "registered", "model": "m", "model": "n"}',
    "deep": b'{"type": "registered", "model": "m", "data": ' + b"[" * 5000 + b"]" * 5000
            + b"}",
}


@pytest.mark.parametrize("name", sorted(WEBHOOK))
def test_hostile_signed_webhook_body_is_422(client, service_env, name):
    """A signed webhook body goes through the same reader: 422 naming the problem, and the
    log holds at most the one bounded rejection entry, never the event."""
    r = _signed(client, WEBHOOK[name])
    assert r.status_code == 422, r.text
    assert [e.envelope["type"] for e in service_env.entries()] in ([], ["webhook_rejected"])


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), steps=st.integers(1, 4))
def test_mutated_decision_bodies_are_never_500(client, service_env, seed, steps):
    """Random edits of a valid body give an answer or a 4xx; a 4xx writes nothing."""
    rnd = random.Random(seed)
    body = bytearray(_body("0.9"))
    tokens = [b"1" * 5001, b"1e400", b"NaN", b"\x00", b"[" * 70, b'"', b",", b"\xff",
              b'"risk_tier": "x", ', b"\\u0000", b"\\ud800", b"}"]
    for _ in range(steps):
        i = rnd.randrange(len(body) + 1)
        if rnd.random() < 0.5:
            body[i:i] = rnd.choice(tokens)
        else:
            del body[i:i + rnd.randrange(1, 20)]
    before = len(service_env.entries())
    r = _post(client, bytes(body))
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert len(service_env.entries()) == before


def _request(body: bytes, port: int) -> bytes:
    token = auth("evaluator")["Authorization"]
    return (f"POST /v1/decisions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536) or b"!"
        assert not data.endswith(b"!"), "connection closed"
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    while len(rest) < length:
        rest += sock.recv(65536)
    return int(head.split()[1]), head.lower()


def test_hostile_body_keeps_the_connection_open(tmp_path):
    """Against a real server, a 5,001-digit integer is 422 and the keep-alive connection
    then answers the next request."""
    from tests.service.servers import start_service

    server = start_service(tmp_path, f"sqlite:///{tmp_path / 'audit.db'}")
    try:
        port = int(server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            for name in ("int-5001-digits", "metric-10**400", "duplicate-key"):
                sock.sendall(_request(BODIES[name], port))
                status, head = _response(sock)
                assert status == 422 and b"connection: close" not in head
    finally:
        server.stop()


def test_lone_surrogate_in_a_key_is_422_with_an_escaped_path(client, service_env):
    """A key holding an escaped lone surrogate is refused with 422, its path escaped (\\ud800)."""
    body = _body("0.9").replace(b'"can_override"', b'"can_\\ud800override"')
    r = _post(client, body)
    assert r.status_code == 422, r.text
    assert "can_\\ud800override" in r.json()["message"]
    assert len(service_env.entries()) == 0
