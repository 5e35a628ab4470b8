"""Tests for the verifier's fast path (audit/_batch.py): it agrees with the full checks."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import audit.verify as verify
from audit._batch import check_batch, extend
from audit._envelope import fast_pattern, json_text, read_fields
from audit.merkle import CompactRange, leaf_hash
from audit.records import StoredEntry
from audit.verify import VerificationReport, Verifier

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "vectors"))
from memlog import ORIGIN, MemLog, envelope, fixed_signer

SIGNER = fixed_signer()
LOG = json_text(ORIGIN)
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

# Byte strings a tampering may splice into an envelope: JSON syntax, escapes, hex, digits.
_PIECES = st.sampled_from([b'"', b"\\", b'\\"', b"\\u0000", b"\x1f", b"\xff", b",", b"{", b"}",
                           b"0", b"1", b"a", b"f", b"g", b'"log":"', b'","', b"redaction",
                           b'"digest":"x",', b'"v":1', b"sha256:"])


@st.composite
def _mutation(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a slice replaced by a few pieces (possibly none: a deletion)."""
    lo = draw(st.integers(0, len(data)))
    hi = draw(st.integers(lo, min(len(data), lo + 80)))
    new = b"".join(draw(st.lists(_PIECES, max_size=3)))
    return data[:lo] + new + data[hi:]


def _log(n: int) -> MemLog:
    log = MemLog(signer=SIGNER).fill(n // 2)
    log.checkpoint()
    return log.fill(n - n // 2)


def _report(log: MemLog, *, fast: bool, monkeypatch: pytest.MonkeyPatch) -> VerificationReport:
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(verify, "fast_matcher", lambda origin: None)
        return Verifier([SIGNER.verifier()], ORIGIN).verify(iter(log.entries), log.checkpoints)


@SETTINGS
@given(data=st.data(), n=st.integers(2, 24), batch=st.integers(1, 9),
       rehash=st.booleans())
def test_fast_and_full_paths_report_the_same_fault(
    monkeypatch: pytest.MonkeyPatch, data: st.DataObject, n: int, batch: int, rehash: bool
) -> None:
    """With batches checked whole, a tampered envelope gets the entry-by-entry report."""
    log = _log(n)
    t = data.draw(st.integers(0, n - 1))
    old = log.entries[t]
    env = data.draw(_mutation(old.envelope))
    log.entries[t] = StoredEntry(t, env, leaf_hash(env) if rehash else old.leaf_hash,
                                 old.payload, False)
    monkeypatch.setattr(verify, "_BATCH", batch)
    fast = _report(log, fast=True, monkeypatch=monkeypatch)
    assert fast == _report(log, fast=False, monkeypatch=monkeypatch)
    if env != old.envelope and (not rehash or t < n // 2):  # else: an unsigned tail entry
        assert not fast


@pytest.mark.parametrize("case", ["payload", "redacted", "missing", "swap", "tombstone"])
def test_fast_path_hands_unusual_entries_to_the_full_checks(
    monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """Payload edits, redactions, missing payloads, swaps and tombstones report the same."""
    log = _log(20)
    e = log.entries
    if case == "payload":
        e[13] = StoredEntry(13, e[13].envelope, e[13].leaf_hash, b'{"n":0}', False)
    elif case == "redacted":
        log.redact(13, tombstone=False)
    elif case == "missing":
        e[13] = StoredEntry(13, e[13].envelope, e[13].leaf_hash, None, False)
    elif case == "swap":
        e[13], e[14] = e[14], e[13]
    else:
        log.redact(13)
    monkeypatch.setattr(verify, "_BATCH", 4)
    fast = _report(log, fast=True, monkeypatch=monkeypatch)
    assert fast == _report(log, fast=False, monkeypatch=monkeypatch)
    assert bool(fast) == (case == "tombstone")


@SETTINGS
@given(data=st.data(), seq=st.integers(0, 10**6))
def test_fast_pattern_match_is_a_full_parse(data: st.DataObject, seq: int) -> None:
    """When the fast pattern matches with the expected fields, the full parse reads the same."""
    payload = b'{"n":%d}' % seq
    prev = hashlib.sha256(b"%d" % seq).hexdigest()
    good = envelope(seq, prev, payload)
    env = data.draw(_mutation(good))
    digest = hashlib.sha256(payload).hexdigest().encode()
    m = fast_pattern(LOG).fullmatch(env)
    if m is not None and (m[1], m[2], int(m[3])) == (digest, prev.encode(), seq):
        assert read_fields(env) == (LOG, digest, prev.encode(), m[3], m[4])
    if env == good:
        assert m is not None and m[4] == b"decision"
    other = fast_pattern(json_text("other.example/log")).fullmatch(env)
    fields = read_fields(env)
    assert other is None or fields is None or fields[0] != LOG


def test_check_batch_refuses_a_batch_with_any_unusual_entry() -> None:
    """One redacted, mislinked or mistyped entry makes the whole batch go entry by entry."""
    log = _log(6)
    rows = [(e.seq, e.envelope, e.leaf_hash, e.payload, e.redacted) for e in log.entries]
    match = fast_pattern(LOG).fullmatch
    zero = b"0" * 64
    done = check_batch(rows, 0, zero, match)
    assert done is not None and done[0] == [e.leaf_hash for e in log.entries]
    assert check_batch(rows[1:], 0, zero, match) is None  # seq off by one
    assert check_batch(rows, 0, b"1" * 64, match) is None  # prev
    other = fast_pattern(json_text("other.example/log")).fullmatch
    assert check_batch(rows, 0, zero, other) is None
    redacted = [*rows[:3], (*rows[3][:4], True), *rows[4:]]
    assert check_batch(redacted, 0, zero, match) is None
    log.append({"seq": 0, "digest": "sha256:" + "0" * 64}, type_="redaction")
    rows = [(e.seq, e.envelope, e.leaf_hash, e.payload, e.redacted) for e in log.entries]
    assert check_batch(rows, 0, zero, match) is None


@given(size=st.integers(0, 300), count=st.integers(1, 300))
def test_extend_matches_appending_leaf_by_leaf(size: int, count: int) -> None:
    """Appending a run of leaves in aligned subtrees gives the compact range of single appends."""
    leaves = [hashlib.sha256(b"%d" % i).digest() for i in range(size + count)]
    before = CompactRange()
    for leaf in leaves[:size]:
        before.append(leaf)
    stack = before.hashes
    extend(stack, size, leaves[size:])
    for leaf in leaves[size:]:
        before.append(leaf)
    assert stack == before.hashes
