"""Tests for audit/verify.py: the streaming verifier's checks and report."""

from __future__ import annotations

import hashlib
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from audit._envelope import parse_envelope
from audit.canonical import dumps_envelope
from audit.errors import InvalidSignatureError, KeyLoadError
from audit.merkle import leaf_hash
from audit.note import Checkpoint, sign_note
from audit.records import StoredCheckpoint, StoredEntry
from audit.verify import FaultClass, Verifier

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "vectors"))
from memlog import ORIGIN, MemLog, envelope, fixed_signer

SIGNER = fixed_signer()
KEYS = [SIGNER.verifier()]


def _log(n: int = 12, *sizes: int) -> MemLog:
    log = MemLog(signer=SIGNER)
    for size in sorted(sizes):
        log.fill(size - len(log.entries))
        log.checkpoint()
    return log.fill(n - len(log.entries))


def _check(log: MemLog, trusted: str | None = None, origin: str | None = ORIGIN):
    return Verifier(KEYS, origin, trusted).verify(iter(log.entries), iter(log.checkpoints))


def test_clean_log_verifies_and_counts() -> None:
    """A clean log is ok, truthy, and reports entries, checkpoints and the unsigned tail."""
    report = _check(_log(12, 4, 10))
    assert report and report.ok and report.fault is None and report.first_bad_seq is None
    assert (report.entries_checked, report.checkpoints_checked, report.unsigned_entries) == (
        12,
        2,
        2,
    )


def test_empty_log_with_empty_checkpoint_verifies() -> None:
    """An empty log and a checkpoint of size 0 (the empty root) verify."""
    log = MemLog(signer=SIGNER)
    log.checkpoint()
    assert _check(log)


def test_origin_adopted_from_first_entry_when_not_given() -> None:
    """Without an origin the first entry's log name is used, and must then match."""
    log = _log(5, 5)
    assert _check(log, origin=None)
    payload = b'{"n":5}'
    env = envelope(5, log.entries[4].leaf_hash.hex(), payload, origin="other.example/log")
    log.entries.append(StoredEntry(5, env, leaf_hash(env), payload, False))
    report = _check(log, origin=None)
    assert (report.fault, report.first_bad_seq) == (FaultClass.MODIFIED, 5)
    assert "origin mismatch" in report.message


def test_entry_from_another_log_is_a_fault() -> None:
    """A well-chained entry naming another origin is reported with both names."""
    log = MemLog(signer=SIGNER, origin="other.example/log").fill(3)
    report = Verifier(KEYS, ORIGIN).verify(iter(log.entries), [])
    assert (report.fault, report.first_bad_seq) == (FaultClass.MODIFIED, 0)
    assert "expected 'test.example/audit', got 'other.example/log'" in report.message


def test_non_canonical_envelope_is_modified() -> None:
    """Bytes that are valid JSON but not canonical are a modification."""
    log = _log(4)
    env = log.entries[2].envelope.replace(b'{"actor"', b'{ "actor"')
    log.entries[2] = StoredEntry(2, env, leaf_hash(env), log.entries[2].payload, False)
    report = _check(log)
    assert (report.fault, report.first_bad_seq) == (FaultClass.MODIFIED, 2)
    assert "not a canonical envelope" in report.message


@pytest.mark.parametrize("escape", [b"\\u000a", b"\\u0008", b"\\u001F", b"\\/"])
def test_non_canonical_escape_is_modified(escape: bytes) -> None:
    """A string escape RFC 8785 never writes (\\u000a for \\n, uppercase hex, \\/)
    makes the envelope non-canonical: a modification."""
    log = _log(4)
    old = log.entries[2].envelope
    env = old.replace(b'"actor":"', b'"actor":"' + escape, 1)
    assert env != old
    log.entries[2] = StoredEntry(2, env, leaf_hash(env), log.entries[2].payload, False)
    report = _check(log)
    assert (report.fault, report.first_bad_seq) == (FaultClass.MODIFIED, 2)
    assert "not a canonical envelope" in report.message


def test_envelopes_with_escapes_and_extra_fields_take_the_slow_path() -> None:
    """Escaped strings, non-ASCII and extra subject fields parse like the fast path."""
    env = dumps_envelope(
        {
            "v": 1,
            "log": 'l\u00f6g/"q"',
            "seq": 7,
            "time": "t",
            "type": "decision",
            "subject": {"name": "m", "extra": "x"},
            "actor": "a\\b\n",
            "payload_digest": "sha256:" + "0" * 64,
            "prev": "1" * 64,
        }
    )
    parsed = parse_envelope(env)
    assert parsed is not None
    assert (parsed.log, parsed.seq, parsed.prev) == ('l\u00f6g/"q"', 7, "1" * 64)
    assert parse_envelope(env.replace(b'"v":1', b'"v":2')) is None
    assert parse_envelope(b"not json") is None


def test_missing_payload_is_not_redaction() -> None:
    """A payload that is absent but not marked redacted is a payload mismatch."""
    log = _log(6)
    e = log.entries[3]
    log.entries[3] = StoredEntry(3, e.envelope, e.leaf_hash, None, False)
    report = _check(log)
    assert (report.fault, report.first_bad_seq) == (FaultClass.PAYLOAD_MISMATCH, 3)
    assert "missing but not marked redacted" in report.message


def test_redaction_with_tombstone_is_reported_not_failed() -> None:
    """A redacted payload with its tombstone verifies and is listed as redacted."""
    log = _log(8, 8)
    log.redact(2)
    log.redact(5)
    log.checkpoint()
    report = _check(log)
    assert report, report.message
    assert report.redacted_seqs == (2, 5)


@pytest.mark.parametrize(
    ("tombstone", "bad", "fragment"),
    [
        ({"seq": 2, "digest": "sha256:" + "0" * 64}, 2, "digest changed"),
        ({"seq": 9}, 8, "does not name a seq and digest"),
        ({"seq": 30, "digest": "x"}, 8, "expected below 8"),
    ],
)
def test_bad_tombstones_are_redaction_abuse(tombstone: dict, bad: int, fragment: str) -> None:
    """Tombstones with a changed digest, missing fields or a future seq are abuse."""
    log = _log(8)
    log.redact(2, tombstone=False)
    log.append(tombstone, type_="redaction")
    report = _check(log)
    assert (report.fault, report.first_bad_seq) == (FaultClass.REDACTION_ABUSE, bad)
    assert fragment in report.message


def test_redacted_tombstone_is_redaction_abuse() -> None:
    """The payload of a tombstone itself can never be redacted."""
    log = _log(4)
    log.redact(1)
    log.redact(4, tombstone=False)
    report = _check(log)
    assert (report.fault, report.first_bad_seq) == (FaultClass.REDACTION_ABUSE, 4)


def test_rewritten_suffix_is_modified_not_inconsistent() -> None:
    """Entries rewritten with a recomputed chain fail at the next checkpoint as modified."""
    log = _log(10, 4, 10)
    rebuilt = MemLog(signer=SIGNER)
    for e in log.entries[:4]:
        rebuilt.entries.append(e)
    rebuilt.append({"decision": "deny"})
    rebuilt.fill(5)
    rebuilt.checkpoints = log.checkpoints
    report = _check(rebuilt)
    assert (report.fault, report.first_bad_seq) == (FaultClass.MODIFIED, 4)
    assert "entries 4 to 9 were rewritten" in report.message


def test_two_roots_for_one_size_are_inconsistent() -> None:
    """Two validly signed checkpoints of one size with different roots are inconsistent."""
    log = _log(10, 4, 10)
    bogus = sign_note(Checkpoint(ORIGIN, 10, bytes(32)).body(), [SIGNER])
    log.checkpoints.append(StoredCheckpoint(10, bogus))
    report = _check(log)
    assert (report.fault, report.first_bad_seq) == (FaultClass.INCONSISTENT_CHECKPOINTS, 4)
    assert report.checkpoint_size == 10


def test_trusted_checkpoint_catches_rollback_and_truncation() -> None:
    """The auditor's checkpoint must match the log: a different root or a larger size fails."""
    log = _log(10, 10)
    good = log.checkpoints[-1].note
    assert _check(log, trusted=good)
    report = _check(_log(10), trusted=sign_note(Checkpoint(ORIGIN, 10, bytes(32)).body(), [SIGNER]))
    assert report.fault is FaultClass.INCONSISTENT_CHECKPOINTS
    assert "rolled back" in report.message
    report = _check(_log(7), trusted=good)
    assert (report.fault, report.first_bad_seq) == (FaultClass.TRUNCATED, 7)


def test_trusted_checkpoint_must_verify() -> None:
    """A trusted checkpoint that no given key signed is refused up front."""
    note = sign_note(Checkpoint(ORIGIN, 1, bytes(32)).body(), [fixed_signer("x", name=ORIGIN)])
    with pytest.raises(InvalidSignatureError, match="does not verify"):
        Verifier(KEYS, ORIGIN, note)
    with pytest.raises(KeyLoadError, match="at least one public key"):
        Verifier([], ORIGIN)


def test_checkpoint_stored_size_must_match_signed_size() -> None:
    """A checkpoint row whose size column disagrees with its signed body is forged."""
    log = _log(6, 3)
    log.checkpoints[0] = StoredCheckpoint(4, log.checkpoints[0].note)
    report = _check(log)
    assert report.fault is FaultClass.FORGED_CHECKPOINT
    assert "signed size 3" in report.message


def test_rotated_keys_both_verify() -> None:
    """Checkpoints signed by an old key and later by a new one verify with both keys."""
    new = fixed_signer("rotated")
    log = _log(4, 4)
    log.fill(4)
    log.checkpoint(signers=[new])
    report = Verifier([*KEYS, new.verifier()], ORIGIN).verify(log.entries, log.checkpoints)
    assert report and report.checkpoints_checked == 2
    report = Verifier(KEYS, ORIGIN).verify(log.entries, log.checkpoints)
    assert (report.fault, report.checkpoint_size) == (FaultClass.UNKNOWN_KEY, 8)


def _generated(n: int) -> Iterator[StoredEntry]:
    prev = "0" * 64
    for seq in range(n):
        payload = b'{"n":%d}' % seq
        env = envelope(seq, prev, payload)
        h = leaf_hash(env)
        prev = h.hex()
        yield StoredEntry(seq, env, h, payload, False)


def test_memory_does_not_grow_with_the_log() -> None:
    """Verifying 4x more streamed entries (many batches) does not take more memory."""

    def peak(n: int) -> int:
        tracemalloc.start()
        report = Verifier(KEYS, ORIGIN).verify(_generated(n), [])
        result = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert report and report.entries_checked == n
        return result

    small, large = peak(3_000), peak(12_000)
    assert large < small * 1.5 + 16_384, (small, large)


def test_progress_is_reported() -> None:
    """The progress callback sees the count grow to the log size."""
    seen: list[int] = []
    Verifier(KEYS, ORIGIN, progress=seen.append).verify(_generated(33_000), [])
    assert seen and seen == sorted(seen) and max(seen) <= 33_000 and len(seen) >= 2


def test_payload_digest_uses_sha256_of_stored_bytes() -> None:
    """The payload digest is SHA-256 of the stored canonical payload bytes."""
    log = _log(1)
    assert log.entries[0].payload is not None
    digest = hashlib.sha256(log.entries[0].payload).hexdigest()
    assert f'"payload_digest":"sha256:{digest}"'.encode() in log.entries[0].envelope
