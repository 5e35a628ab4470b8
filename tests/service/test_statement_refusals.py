"""Approvals and waivers that could never count: 422 naming the field, nothing written."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import auth
from tests.service.statements import DIGEST, signed_approval, trust_file

WAIVER = {
    "rules": ["svc-test/auc-floor"],
    "model": "m",
    "version": "1",
    "reason": "known issue",
    "ticket": "RISK-1",
    "expires": "7d",
}
APPROVAL = {"model": "m", "version": "1", "digest": DIGEST, "role": "model-risk"}


@pytest.fixture
def signed_env(make_env, tmp_path):
    """An app whose trust file lists approver-1's key; unsigned statements are refused."""
    trust, skey = trust_file(tmp_path)
    return make_env(allow_unsigned=False, trust_file=trust), skey


def _refused(response, path: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert set(body) == {"code", "message", "errors"}
    assert path in [e["path"] for e in body["errors"]], body


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"time": "not-a-time"}, "$.time"),
        ({"expires": "never"}, "$.expires"),
        ({"expires": "2020-01-01T00:00:00Z"}, "$.expires"),
        ({"role": "model-risk\u0000admin"}, "$.role"),
        ({"role": ""}, "$.role"),
    ],
)
def test_signed_approval_that_cannot_count_is_refused(signed_env, fields, path):
    """A correctly signed approval whose time, expiry or role is unusable is 422 and not logged."""
    env, skey = signed_env
    with TestClient(env.app) as c:
        r = c.post("/v1/approvals", json=signed_approval(skey, **fields), headers=auth("approver"))
    _refused(r, path)
    assert env.entries() == []


def test_signature_by_key_outside_trust_file_is_refused(signed_env):
    """A signature by a key the trust file does not list is 422 on $.signature."""
    from audit.keys import generate_key

    env, _ = signed_env
    other, _ = generate_key("approver-1")
    with TestClient(env.app) as c:
        r = c.post("/v1/approvals", json=signed_approval(other), headers=auth("approver"))
    _refused(r, "$.signature")
    assert env.entries() == []


def test_garbage_signature_is_refused(signed_env):
    """A signature that is not base64 of an Ed25519 signature is refused, never recorded."""
    env, skey = signed_env
    body = signed_approval(skey)
    body["signature"]["sig"] = "A" * 88
    with TestClient(env.app) as c:
        r = c.post("/v1/approvals", json=body, headers=auth("approver"))
    _refused(r, "$.signature")
    assert env.entries() == []


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"expires": "never"}, "$.expires"),
        ({"time": "not-a-time"}, "$.time"),
        ({"rules": [""]}, "$.rules[0]"),
        ({"rules": ["svc-test/auc-floor", "bad\u0000rule"]}, "$.rules[1]"),
        ({"versions": ""}, "$.versions"),
    ],
)
def test_unsigned_waiver_that_cannot_count_is_refused(client, service_env, fields, path):
    """A waiver with an unreadable expiry or time, or an empty rule id, is 422 and not logged."""
    r = client.post("/v1/waivers", json={**WAIVER, **fields}, headers=auth("approver"))
    _refused(r, path)
    assert service_env.entries() == []


def test_unsigned_approval_with_bad_expiry_is_refused(client, service_env):
    """An unsigned approval with ``expires: never`` is 422 on $.expires."""
    r = client.post(
        "/v1/approvals", json={**APPROVAL, "expires": "never"}, headers=auth("approver")
    )
    _refused(r, "$.expires")
    assert service_env.entries() == []


def test_statement_with_duplicate_key_is_refused(signed_env):
    """A signed approval whose JSON names a key twice is 422 duplicate_key, nothing written."""
    env, skey = signed_env
    body = signed_approval(skey)
    raw = json.dumps(body)[:-1] + ', "role": "admin"}'
    with TestClient(env.app) as c:
        r = c.post(
            "/v1/approvals",
            content=raw.encode(),
            headers={**auth("approver"), "Content-Type": "application/json"},
        )
    assert r.status_code == 422 and r.json()["code"] == "duplicate_key", r.text
    assert "'role'" in r.json()["message"]
    assert env.entries() == []


def test_waiver_that_counts_is_recorded_with_counts_true(client, service_env):
    """A well-formed waiver is recorded (201) and reported as counting."""
    r = client.post("/v1/waivers", json=WAIVER, headers=auth("approver"))
    assert r.status_code == 201, r.text
    assert r.json()["counts"] is True and r.json()["reason"] is None
    assert [e.envelope["type"] for e in service_env.entries()] == ["waiver"]
