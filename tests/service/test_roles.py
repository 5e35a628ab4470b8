"""Bearer tokens and roles: 401 without a token, 403 without the role, and neither writes."""

from __future__ import annotations

import pytest

from policyengine.service.auth import TokenStore, hash_token
from tests.service.conftest import auth, example_card

DIGEST = "sha256:" + "ab" * 32
WRITES = [
    ("/v1/decisions", {"card": {}, "event": {"type": "promote", "stage": "production"}}),
    ("/v1/approvals", {"model": "m", "version": "1", "digest": DIGEST, "role": "model-risk"}),
    (
        "/v1/waivers",
        {"rules": ["r"], "model": "m", "reason": "x", "ticket": "T-1", "expires": "30d"},
    ),
    ("/v1/promotions", {"model": "m", "version": "1", "digest": DIGEST, "stage": "production"}),
    ("/v1/events", {"type": "incident", "model": "m", "version": "1"}),
]


def _seed(client) -> None:
    body = {"card": example_card(), "event": {"type": "promote", "stage": "production"}}
    assert client.post("/v1/decisions", json=body, headers=auth("evaluator")).status_code == 200


def test_token_file_stores_only_hashes():
    """A token is matched by its SHA-256; the raw token never appears in the store."""
    store = TokenStore([{"id": "ci", "sha256": hash_token("s3cret"), "roles": ["evaluator"]}])
    assert store.authenticate("s3cret").id == "ci"
    assert store.authenticate("other") is None


def test_token_file_rejects_unknown_role():
    """A token with a role outside the four is a configuration error."""
    from policyengine.errors import ConfigError

    with pytest.raises(ConfigError, match=r"tokens\[0\]: roles\.0"):
        TokenStore([{"id": "x", "sha256": "0" * 64, "roles": ["root"]}])


@pytest.mark.parametrize(("path", "body"), WRITES)
def test_auditor_gets_403_on_every_write_and_nothing_is_written(client, service_env, path, body):
    """The read-only auditor role cannot write through any write endpoint."""
    r = client.post(path, json=body, headers=auth("auditor"))
    assert r.status_code == 403
    assert r.json()["code"] == "forbidden"
    assert service_env.entries() == []


@pytest.mark.parametrize(("path", "body"), WRITES)
def test_missing_or_unknown_token_is_401_and_writes_nothing(client, service_env, path, body):
    """Without a valid bearer token every write endpoint answers 401."""
    assert client.post(path, json=body).status_code == 401
    r = client.post(path, json=body, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert service_env.entries() == []


def test_evaluator_cannot_approve(client, service_env):
    """Approvals need the approver role; an evaluator token gets 403."""
    r = client.post("/v1/approvals", json=WRITES[1][1], headers=auth("evaluator"))
    assert r.status_code == 403
    assert service_env.entries() == []


def test_approver_cannot_decide(client, service_env):
    """Decisions need the evaluator role; an approver token gets 403."""
    r = client.post("/v1/decisions", json=WRITES[0][1], headers=auth("approver"))
    assert r.status_code == 403


def test_auditor_reads_entries_proofs_checkpoint_and_export(client):
    """Every read endpoint answers an auditor token."""
    _seed(client)
    h = auth("auditor")
    for path in (
        "/v1/audit/entries",
        "/v1/audit/entries/0",
        "/v1/audit/checkpoint",
        "/v1/audit/proof/inclusion?seq=0",
        "/v1/audit/proof/consistency?old=1",
        "/v1/audit/receipts/0",
        "/v1/audit/export",
    ):
        assert client.get(path, headers=h).status_code == 200, path


def test_reads_need_a_token(client):
    """Audit reads are not anonymous."""
    assert client.get("/v1/audit/entries").status_code == 401


def test_admin_may_do_everything(client, service_env):
    """The admin role holds every other role."""
    r = client.post("/v1/approvals", json=WRITES[1][1], headers=auth("admin"))
    assert r.status_code == 201, r.text
    assert service_env.entries()[-1].envelope["actor"] == "admin-1"
