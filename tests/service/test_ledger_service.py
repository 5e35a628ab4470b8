"""The log's write path through the service: the empty log's checkpoint, partial writes, 503s."""

from __future__ import annotations

import pytest

from tests.service.conftest import auth, build_env, example_card, verify_chain

PROMOTE = {"type": "promote", "stage": "production"}


def _decide(client):
    return client.post(
        "/v1/decisions", json={"card": example_card(), "event": PROMOTE}, headers=auth("evaluator")
    )


def _client(env):
    from fastapi.testclient import TestClient

    return TestClient(env.app, raise_server_exceptions=False)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh_env(request, tmp_path):
    """A service over a fresh, empty log on SQLite or PostgreSQL."""
    url = None if request.param == "sqlite" else request.getfixturevalue("pg_url")
    return build_env(tmp_path, log_url=url)


def test_checkpoint_of_the_empty_log_then_decisions_work(fresh_env, tmp_path):
    """GET checkpoint on a fresh service signs size 0; decisions, receipts and export then work."""
    with _client(fresh_env) as client:
        first = client.get("/v1/audit/checkpoint", headers=auth("auditor"))
        assert first.status_code == 200 and first.json()["size"] == 0, first.text
        decided = _decide(client)
        assert decided.status_code == 200, decided.text
        seq = decided.json()["seq"]
        # The decision follows the policy bundle it was made under.
        assert [e.envelope["type"] for e in fresh_env.entries()][seq] == "decision"
        again = client.get("/v1/audit/checkpoint", headers=auth("auditor"))
        assert again.status_code == 200 and again.json()["size"] == seq + 1, again.text
        receipt = client.get(f"/v1/audit/receipts/{seq}", headers=auth("auditor"))
        assert receipt.status_code == 200, receipt.text
        export = client.get("/v1/audit/export", headers=auth("auditor"))
        assert export.status_code == 200, export.text
    report = verify_chain(fresh_env.log_url, tmp_path / "signing.key")
    assert report.ok, report


def test_a_key_that_cannot_sign_is_503_and_writes_nothing(service_env, client, monkeypatch):
    """When signing fails after the append, the decision is rolled back and the answer is 503."""
    import audit.log

    def broken(*args, **kwargs):
        raise OSError("signing device unplugged")

    monkeypatch.setattr(audit.log, "sign_note", broken)
    r = _decide(client)
    assert r.status_code == 503, r.text
    assert "seq" not in r.json()
    assert service_env.entries() == []


def test_a_receipt_failing_after_the_commit_is_503_with_the_seq(service_env, client, monkeypatch):
    """When the receipt cannot be built the 503 body says the entry is recorded, with its seq."""
    from audit.errors import StorageError
    from audit.log import AuditLog

    def gone(self, seq, size=None):
        raise StorageError(f"audit log at {service_env.log_url}: connection lost")

    monkeypatch.setattr(AuditLog, "inclusion_proof", gone)
    r = _decide(client)
    assert r.status_code == 503, r.text
    body = r.json()
    types = [e.envelope["type"] for e in service_env.entries()]
    assert types == ["policy_bundle", "decision"]  # both durable, in one transaction
    seq = types.index("decision")
    assert body["code"] == "recorded_incomplete" and body["seq"] == seq
    assert body["message"].startswith(f"entry recorded at seq {seq};")
    assert str(service_env.root) not in r.text


def test_an_unavailable_log_is_503_without_the_database_path(service_env, client):
    """A log_unavailable answer names no server path and points the operator to the service log."""
    from audit._sqlite import SqliteDatabase

    store = service_env.app.state.svc.log.store
    store.db = SqliteDatabase(f"{service_env.root}/gone/dir/audit.db")
    r = _decide(client)
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["code"] in {"log_unavailable", "audit_log_unavailable"}
    assert "unavailable" in body["message"] and "service log" in body["message"]
    assert str(service_env.root) not in r.text and "audit.db" not in r.text
