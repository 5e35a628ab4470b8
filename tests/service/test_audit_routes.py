"""Audit read endpoints: filters, cursor pagination, entries, proofs, checkpoint, export."""

from __future__ import annotations

import io
import tarfile

from audit import merkle
from audit.keys import NoteVerifier
from audit.note import open_note, parse_checkpoint
from tests.service.conftest import auth, example_card

A = auth("auditor")


def _seed(client, service_env) -> dict[str, list[int]]:
    """Two allows, one deny, one incident by another actor; the seqs of each, by kind.

    The first decision is preceded by the policy bundle it was made under, so
    the log holds five entries: ``bundle``, ``allow``, ``deny``, ``incident``.
    """
    seqs: dict[str, list[int]] = {"allow": [], "deny": [], "incident": []}
    for i, auc in enumerate((0.9, 0.5, 0.95)):
        card = example_card(auc=auc, version=f"1.{i}", digest_seed=str(i))
        body = {"card": card, "event": {"type": "promote", "stage": "production"}}
        r = client.post("/v1/decisions", json=body, headers=auth("evaluator"))
        assert r.status_code == 200, r.text
        seqs[r.json()["decision"]["decision"]].append(r.json()["seq"])
    ev = {"type": "incident", "model": "other-model", "version": "9"}
    r = client.post("/v1/events", json=ev, headers=auth("admin"))
    assert r.status_code == 201, r.text
    seqs["incident"].append(r.json()["seq"])
    seqs["bundle"] = [e.seq for e in service_env.entries() if e.envelope["type"] == "policy_bundle"]
    assert len(seqs["allow"]) == 2 and len(seqs["deny"]) == 1 and len(seqs["bundle"]) == 1
    return seqs


def test_filters_by_model_type_actor_and_decision(client, service_env):
    """Each filter narrows the entries; decision reads the decision payload."""
    seqs = _seed(client, service_env)
    get = lambda **p: client.get("/v1/audit/entries", params=p, headers=A).json()["entries"]  # noqa: E731
    assert len(get()) == 5
    assert [e["seq"] for e in get(model="other-model")] == seqs["incident"]
    assert [e["seq"] for e in get(type="decision", version="1.1")] == seqs["deny"]
    assert [e["seq"] for e in get(actor="admin-1")] == seqs["incident"]
    assert [e["seq"] for e in get(decision="deny")] == seqs["deny"]
    assert [e["seq"] for e in get(decision="allow")] == seqs["allow"]
    decided = sorted(seqs["allow"] + seqs["deny"] + seqs["incident"], reverse=True)
    assert [e["seq"] for e in get(type="decision,incident", order="desc")] == decided
    assert [e["seq"] for e in get(type="policy_bundle")] == seqs["bundle"]


def test_time_filters(client, service_env):
    """since is inclusive, until exclusive, on the entry time."""
    seqs = _seed(client, service_env)
    (incident,) = seqs["incident"]
    first = client.get("/v1/audit/entries/0", headers=A).json()["envelope"]["time"]
    last = client.get(f"/v1/audit/entries/{incident}", headers=A).json()["envelope"]["time"]
    got = client.get("/v1/audit/entries", params={"since": first, "until": last}, headers=A).json()
    assert [e["seq"] for e in got["entries"]] == list(range(incident))


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
    assert seen == [0, 1, 2, 3, 4]


def test_bad_cursor_is_422(client):
    """A cursor the service did not issue is refused."""
    r = client.get("/v1/audit/entries", params={"cursor": "!!"}, headers=A)
    assert r.status_code == 422 and r.json()["code"] == "bad_cursor"


def test_entry_has_payload_and_missing_entry_is_404(client, service_env):
    """GET /entries/{seq} returns the payload; an unknown seq is 404."""
    (deny,) = _seed(client, service_env)["deny"]
    entry = client.get(f"/v1/audit/entries/{deny}", headers=A).json()
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
    assert parse_checkpoint(body).size == cp["size"] == len(service_env.entries())
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
    seqs = _seed(client, service_env)
    before = len(service_env.entries())
    for path in (
        "/v1/audit/entries",
        "/v1/audit/checkpoint",
        "/v1/audit/export",
        f"/v1/audit/receipts/{seqs['allow'][0]}",
    ):
        client.get(path, headers=A)
    assert len(service_env.entries()) == before
