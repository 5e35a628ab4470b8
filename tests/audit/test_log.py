"""Tests for audit/log.py: envelopes, appends, checkpoints, proofs, queries, receipts."""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
import rfc8785

from audit import merkle
from audit.canonical import CanonicalizationError
from audit.errors import IntegrityError, InvalidProofError, StorageError
from audit.keys import Signer
from audit.log import AuditLog, InputError, NewEntry
from audit.note import open_note, parse_checkpoint

from .conftest import FIXED_TIME, fill


def test_envelope_bytes_equal_rfc8785(log: AuditLog) -> None:
    """The stored envelope is byte-identical to the rfc8785 package's output."""
    r = log.append("decision", {"name": "m", "version": "1", "digest": "sha256:ab"}, "ci",
                   {"allow": True, "score": 0.5, "ünï": "çødé"}, time=FIXED_TIME)
    entry = log.get(r.seq)
    assert entry.envelope_bytes == r.envelope
    assert rfc8785.dumps(json.loads(r.envelope)) == r.envelope
    assert entry.envelope["time"] == "2026-01-02T03:04:05.123456Z"


def test_envelope_fields_and_chain(log: AuditLog) -> None:
    """seq counts from 0, prev links to the previous leaf hash, leaf = H(0x00||env)."""
    a = log.append("decision", {"name": "m"}, "ci", {"n": 1})
    b = log.append("approval", {"name": "m"}, "bob", [1, 2])
    env_a, env_b = json.loads(a.envelope), json.loads(b.envelope)
    assert (a.seq, b.seq) == (0, 1)
    assert env_a["prev"] == "0" * 64
    assert env_b["prev"] == a.leaf_hash
    assert a.leaf_hash == hashlib.sha256(b"\x00" + a.envelope).hexdigest()
    payload = rfc8785.dumps([1, 2])
    assert env_b["payload_digest"] == "sha256:" + hashlib.sha256(payload).hexdigest()
    assert set(env_a) == {"v", "log", "seq", "time", "type", "subject", "actor",
                          "payload_digest", "prev"}


def test_time_is_utc_with_microseconds(log: AuditLog) -> None:
    """A non-UTC time is converted to UTC; default times end in Z with microseconds."""
    plus2 = datetime(2026, 5, 1, 12, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    assert log.append("x", {"name": "m"}, "a", 1, time=plus2).time == "2026-05-01T10:00:00.000005Z"
    now = log.append("x", {"name": "m"}, "a", 1).time
    assert len(now) == 27 and now.endswith("Z")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"type": "Decision"}, "type: expected"),
        ({"type": "redaction"}, "written by the audit log"),
        ({"subject": {"version": "1"}}, "'name' is required"),
        ({"subject": {"name": "m", "version": 1}}, "subject.version: expected a string"),
        ({"subject": {"name": "m", "stage": "p"}}, "unknown"),
        ({"subject": "m"}, "expected a dict"),
        ({"actor": ""}, "actor: expected"),
        ({"time": datetime(2026, 1, 1)}, "timezone-aware"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(log: AuditLog, kwargs: dict, match: str) -> None:
    """Invalid entries raise InputError with a clear message and leave the log unchanged."""
    args = {"type": "decision", "subject": {"name": "m"}, "actor": "ci", "payload": {}}
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        log.append(args.pop("type"), args.pop("subject"), args.pop("actor"), args.pop("payload"),
                   **args)
    assert log.size() == 0


def test_bad_payload_in_batch_writes_nothing(log: AuditLog) -> None:
    """One non-JSON payload in append_many rejects the whole batch before writing."""
    batch = [NewEntry("x", {"name": "m"}, "a", 1), NewEntry("x", {"name": "m"}, "a", float("nan"))]
    with pytest.raises(CanonicalizationError):
        log.append_many(batch)
    assert log.size() == 0


def test_append_many_is_one_linear_batch(log: AuditLog) -> None:
    """append_many returns consecutive seqs and chains them."""
    results = log.append_many([NewEntry("x", {"name": "m"}, "a", i) for i in range(5)])
    assert [r.seq for r in results] == [0, 1, 2, 3, 4]
    for prev, cur in itertools.pairwise(results):
        assert json.loads(cur.envelope)["prev"] == prev.leaf_hash
    assert log.append_many([]) == []


def test_checkpoint_signs_current_size(log: AuditLog, signer: Signer) -> None:
    """A checkpoint is a C2SP signed note over origin, size and the RFC 9162 root."""
    fill(log, 7)
    cp = log.checkpoint()
    body, names = open_note(cp.note, [signer.verifier()])
    parsed = parse_checkpoint(body)
    assert (parsed.origin, parsed.size, parsed.root) == (log.origin, 7, log.root())
    assert names == [signer.name]
    assert log.latest_checkpoint() == cp


def test_checkpoint_same_size_returns_existing(log: AuditLog) -> None:
    """Signing twice at one size returns the same note instead of a second signature."""
    fill(log, 3)
    assert log.checkpoint() == log.checkpoint()
    assert len(list(log.store.iter_checkpoints())) == 1


def test_checkpoint_refuses_inconsistent_history(log: AuditLog) -> None:
    """If stored nodes no longer match the last checkpoint, no new checkpoint is signed."""
    fill(log, 8)
    log.checkpoint()
    fill(log, 3)
    with log.store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_nodes SET hash = zeroblob(32) WHERE level = 3")
    with pytest.raises(IntegrityError):
        log.checkpoint()
    assert [c.size for c in log.store.iter_checkpoints()] == [8]


def test_checkpoint_of_the_empty_log_can_be_extended(log: AuditLog) -> None:
    """A checkpoint signed at size 0 does not block later checkpoints (RFC 9162 §2.1.4)."""
    assert log.checkpoint().size == 0
    fill(log, 3)
    assert log.checkpoint().size == 3
    assert log.append_signed("decision", {"name": "m"}, "ci", {}).checkpoint.size == 4
    assert [c.size for c in log.store.iter_checkpoints()] == [0, 3, 4]


def test_append_signed_writes_entry_and_checkpoint_together(log: AuditLog, signer: Signer) -> None:
    """append_signed returns the entry and a signed checkpoint over the tree it ends."""
    fill(log, 5)
    signed = log.append_signed("decision", {"name": "m"}, "ci", {"allow": True})
    assert signed.appended.seq == 5 and signed.checkpoint.size == 6
    body, _ = open_note(signed.checkpoint.note, [signer.verifier()])
    assert parse_checkpoint(body).root == signed.checkpoint.root == log.root(6)
    assert log.latest_checkpoint() == signed.checkpoint
    proof = log.inclusion_proof(5, 6)
    leaf = bytes.fromhex(signed.appended.leaf_hash)
    merkle.verify_inclusion(leaf, 5, 6, proof, signed.checkpoint.root)


def test_append_signed_refuses_inconsistent_history(log: AuditLog) -> None:
    """If stored nodes no longer match the last checkpoint, nothing is appended."""
    fill(log, 8)
    log.checkpoint()
    with log.store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_nodes SET hash = zeroblob(32) WHERE level = 3")
    with pytest.raises(IntegrityError):
        log.append_signed("decision", {"name": "m"}, "ci", {})
    assert log.size() == 8


def test_append_signed_many_writes_all_entries_under_one_checkpoint(
    log: AuditLog, signer: Signer
) -> None:
    """append_signed_many appends every entry in order and signs one checkpoint over the last."""
    fill(log, 2)
    log.checkpoint()
    signed = log.append_signed_many([
        NewEntry("policy_bundle", {"name": "b"}, "ci", {"n": 1}),
        NewEntry("decision", {"name": "m"}, "ci", {"n": 2}),
    ])
    assert signed.appended.seq == 3 and signed.checkpoint.size == 4
    assert [log.get(s).envelope["type"] for s in (2, 3)] == ["policy_bundle", "decision"]
    assert [c.size for c in log.store.iter_checkpoints()] == [2, 4]
    body, _ = open_note(signed.checkpoint.note, [signer.verifier()])
    assert parse_checkpoint(body).root == log.root(4)


def test_append_signed_many_rolls_back_every_entry_when_signing_fails(
    log: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key that cannot sign leaves none of the entries behind, nor a checkpoint."""
    import audit.log

    fill(log, 1)
    log.checkpoint()

    def broken(*args: object, **kwargs: object) -> str:
        raise OSError("signing device unplugged")

    entries = [NewEntry("policy_bundle", {"name": "b"}, "ci", {}),
               NewEntry("decision", {"name": "m"}, "ci", {})]
    with monkeypatch.context() as m:
        m.setattr(audit.log, "sign_note", broken)
        with pytest.raises(OSError, match="unplugged"):
            log.append_signed_many(entries)
    assert log.size() == 1
    assert [c.size for c in log.store.iter_checkpoints()] == [1]


def test_append_signed_many_refuses_an_empty_list(log: AuditLog) -> None:
    """Signing a checkpoint over no new entry is refused and writes nothing."""
    with pytest.raises(InputError, match="at least one"):
        log.append_signed_many([])
    assert log.size() == 0


def test_append_within_only_writes_the_logs_own_types(log: AuditLog) -> None:
    """append_within refuses entry types other than redaction and legal holds."""
    with pytest.raises(InputError, match="expected one of"):
        log.append_within("decision", {"name": "m"}, "ci", {}, lambda conn, head: None)
    assert log.size() == 0


def test_retention_does_not_import_the_log() -> None:
    """audit.log imports audit.retention and never the reverse (no import cycle)."""
    import ast
    from pathlib import Path

    import audit.retention

    tree = ast.parse(Path(audit.retention.__file__).read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "audit.log" not in imported


def test_checkpoint_needs_signer(sqlite_url: str) -> None:
    """Without a signer, checkpoint raises and says how to configure one."""
    unsigned = AuditLog.open(sqlite_url)
    with pytest.raises(StorageError, match="POLICYENGINE_SIGNING_KEY"):
        unsigned.checkpoint()


def test_proofs_verify_against_checkpoints(log: AuditLog) -> None:
    """Inclusion proofs verify against a checkpoint root; consistency between two checkpoints."""
    fill(log, 21)
    old = log.checkpoint()
    fill(log, 40, start=21)
    new = log.checkpoint()
    for seq in (0, 10, 20):
        leaf = bytes.fromhex(log.get(seq).leaf_hash)
        merkle.verify_inclusion(leaf, seq, old.size, log.inclusion_proof(seq, old.size), old.root)
    proof = log.consistency_proof(old.size, new.size)
    merkle.verify_consistency(old.size, new.size, proof, old.root, new.root)
    assert log.root(21) == old.root


def test_proof_arguments_are_checked(log: AuditLog) -> None:
    """Out-of-range seq and size give clear errors."""
    fill(log, 5)
    with pytest.raises(InvalidProofError, match="out of range"):
        log.inclusion_proof(5)
    with pytest.raises(InputError, match=r"size: expected 0\.\.5"):
        log.inclusion_proof(1, 9)
    with pytest.raises(InvalidProofError):
        log.consistency_proof(4, 2)


def test_origin_is_kept_and_mismatch_refused(sqlite_url: str) -> None:
    """A log keeps its origin; reopening a non-empty log with another origin fails."""
    first = AuditLog.open(sqlite_url, origin="example.com/log")
    first.append("x", {"name": "m"}, "a", 1)
    assert AuditLog.open(sqlite_url).origin == "example.com/log"
    with pytest.raises(StorageError, match="has origin"):
        AuditLog.open(sqlite_url, origin="other.example/log")


def test_get_unknown_seq(log: AuditLog) -> None:
    """get() of a missing seq raises InputError."""
    with pytest.raises(InputError, match="no entry 3"):
        log.get(3)


def test_query_filters_and_cursor(log: AuditLog) -> None:
    """query filters by subject, type, actor and time and pages with after_seq."""
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    for i in range(12):
        log.append("decision" if i % 2 else "approval",
                   {"name": "a" if i < 6 else "b", "version": str(i % 3)},
                   "ci" if i % 4 else "alice", {"i": i}, time=t0 + timedelta(hours=i))
    assert [e.seq for e in log.query(name="a", version="0")] == [0, 3]
    assert [e.seq for e in log.query(types=["approval"], name="b")] == [6, 8, 10]
    assert [e.seq for e in log.query(actor="alice")] == [0, 4, 8]
    since, until = t0 + timedelta(hours=2), t0 + timedelta(hours=5)
    assert [e.seq for e in log.query(since=since, until=until)] == [2, 3, 4]
    assert [e.seq for e in log.query(after_seq=9)] == [10, 11]
    assert [e.seq for e in log.query(limit=2, descending=True)] == [11, 10]
    assert [e.seq for e in log.query(after_seq=3, descending=True)] == [2, 1, 0]
    assert next(log.query(name="b")).payload == {"i": 6}


def test_receipt_holds_proof_and_checkpoint(log: AuditLog, signer: Signer) -> None:
    """A receipt verifies offline with the public key alone."""
    from audit.receipt import verify_receipt

    fill(log, 9)
    receipt = log.receipt(4)
    json.dumps(receipt)
    verify_receipt(receipt, [signer.verifier()])
    assert log.latest_checkpoint() is not None


def test_failed_append_rolls_back_cleanly(log: AuditLog) -> None:
    """An entry that fails inside the write transaction leaves no trace; the next one chains."""
    first = log.append("x", {"name": "m"}, "a", 1)
    with pytest.raises(CanonicalizationError):
        log.append("x", {"name": "bad \ud800"}, "a", 2)
    second = log.append("x", {"name": "m"}, "a", 3)
    assert (first.seq, second.seq, log.size()) == (0, 1, 2)
    assert log.get(1).envelope["prev"] == first.leaf_hash
