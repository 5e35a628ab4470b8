"""Audit read endpoints: filters, cursor pagination, entries, proofs, checkpoint, export."""

from __future__ import annotations

import io
import tarfile

from audit import merkle
from audit.keys import NoteVerifier
from audit.note import open_note, parse_checkpoint
from tests.service.conftest import auth, example_card

A = auth("auditor")


def _seed(client, service_env) -> None:
    """Two allows, one deny, one incident by another actor."""
    for i, auc in enumerate((0.9, 0.5, 0.95)):
        card = example_card(auc=auc, version=f"1.{i}", digest_seed=str(i))
        body = {"card": card, "event": {"type": "promote", "stage": "production"}}
        assert client.post("/v1/decisions", json=body, headers=auth("evaluator")).status_code == 200
    ev = {"type": "incident", "model": "other-model", "version": "9"}
    assert client.post("/v1/events", json=ev, headers=auth("admin")).status_code == 201


def test_filters_by_model_type_actor_and_decision(client, service_env):
    """Each filter narrows the entries; decision reads the decision payload."""
    _seed(client, service_env)
    get = lambda **p: client.get("/v1/audit/entries", params=p, headers=A).json()["entries"]  # noqa: E731
    assert len(get()) == 4
    assert [e["seq"] for e in get(model="other-model")] == [3]
    assert [e["seq"] for e in get(type="decision", version="1.1")] == [1]
    assert [e["seq"] for e in get(actor="admin-1")] == [3]
    assert [e["seq"] for e in get(decision="deny")] == [1]
    assert [e["seq"] for e in get(decision="allow")] == [0, 2]
    assert [e["seq"] for e in get(type="decision,incident", order="desc")] == [3, 2, 1, 0]


def test_time_filters(client, service_env):
    """since is inclusive, until exclusive, on the entry time."""
    _seed(client, service_env)
    first = client.get("/v1/audit/entries/0", headers=A).json()["envelope"]["time"]
    last = client.get("/v1/audit/entries/3", headers=A).json()["envelope"]["time"]
    got = client.get("/v1/audit/entries", params={"since": first, "until": last}, headers=A).json()
    assert [e["seq"] for e in got["entries"]] == [0, 1, 2]


def test_cursor_pagination_walks_every_entry_once(client, service_env):
    """Following next_cursor returns every entry exactly once, then no cursor."""
    _seed(client, service_env)
    seen, cursor = [], None
    for _ in range(10):
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/audit/entries", params=params, headers=A).json()
        seen += [e["seq"] for e in page["entries"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [0, 1, 2, 3]


def test_bad_cursor_is_422(client):
    """A cursor the service did not issue is refused."""
    r = client.get("/v1/audit/entries", params={"cursor": "!!"}, headers=A)
    assert r.status_code == 422 and r.json()["code"] == "bad_cursor"


def test_entry_has_payload_and_missing_entry_is_404(client, service_env):
    """GET /entries/{seq} returns the payload; an unknown seq is 404."""
    _seed(client, service_env)
    entry = client.get("/v1/audit/entries/1", headers=A).json()
    assert entry["payload"]["decision"]["decision"] == "deny" and entry["redacted"] is False
    assert client.get("/v1/audit/entries/99", headers=A).status_code == 404


def test_inclusion_and_consistency_proofs_verify(client, service_env):
    """Proofs from the API verify with audit.merkle against the roots it returns."""
    _seed(client, service_env)
    inc = client.get("/v1/audit/proof/inclusion", params={"seq": 1}, headers=A).json()
    merkle.verify_inclusion(
        bytes.fromhex(inc["leaf_hash"]),
        1,
        inc["size"],
        [bytes.fromhex(p) for p in inc["proof"]],
        bytes.fromhex(inc["root"]),
    )
    con = client.get("/v1/audit/proof/consistency", params={"old": 2, "new": 4}, headers=A).json()
    merkle.verify_consistency(
        2,
        4,
        [bytes.fromhex(p) for p in con["proof"]],
        bytes.fromhex(con["old_root"]),
        bytes.fromhex(con["new_root"]),
    )


def test_checkpoint_is_a_signed_note_of_the_current_tree(client, service_env):
    """The checkpoint opens with the log key and commits to the current size."""
    _seed(client, service_env)
    cp = client.get("/v1/audit/checkpoint", headers=A).json()
    vkey = service_env.app.state.svc.signer.vkey
    body, _ = open_note(cp["note"], [NoteVerifier.from_vkey(vkey)])
    assert parse_checkpoint(body).size == cp["size"] == 4
    note = client.get("/v1/audit/checkpoint", params={"format": "note"}, headers=A)
    assert note.text == cp["note"]


def test_export_is_a_bundle_archive(client, service_env):
    """The export is a .tar.gz holding the evidence bundle with its manifest."""
    _seed(client, service_env)
    r = client.get("/v1/audit/export", params={"model": "credit-risk-scorer"}, headers=A)
    assert r.status_code == 200 and r.headers["content-type"] == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        names = tar.getnames()
    assert "bundle/manifest.json" in names and "bundle/entries.jsonl" in names


def test_reads_write_no_entries(client, service_env):
    """Reading every endpoint leaves the log's entry count unchanged."""
    _seed(client, service_env)
    for path in (
        "/v1/audit/entries",
        "/v1/audit/checkpoint",
        "/v1/audit/export",
        "/v1/audit/receipts/0",
    ):
        client.get(path, headers=A)
    assert len(service_env.entries()) == 4
