"""Tamper suite: every fault class on an in-memory log, a real SQLite log and an export.

Each scenario tampers with a log of 40 entries signed at sizes 16 and 40 the
way an intruder with write access to the storage would (raw SQL, edited
files) and asserts that verification, through the library and through
``audit verify``, names the fault class and first bad seq.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from audit.merkle import leaf_hash
from audit.note import Checkpoint, sign_note
from audit.records import StoredCheckpoint, StoredEntry
from audit.verify import FaultClass, VerificationReport, Verifier

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "vectors"))
from memlog import ORIGIN, MemLog, envelope, fixed_signer

SIGNER = fixed_signer()
INTRUDER = fixed_signer("intruder", name=ORIGIN)
N, CP1, TARGET = 40, 16, 20
OLD = datetime(2025, 1, 1, tzinfo=UTC)

EXPECTED: dict[str, tuple[FaultClass, int]] = {
    "modified": (FaultClass.MODIFIED, TARGET),
    "modified_rehashed": (FaultClass.MODIFIED, TARGET),
    "inserted": (FaultClass.INSERTED, TARGET),
    "deleted": (FaultClass.DELETED, TARGET),
    "reordered": (FaultClass.REORDERED, TARGET),
    "truncated": (FaultClass.TRUNCATED, 30),
    "forged_checkpoint": (FaultClass.FORGED_CHECKPOINT, CP1),
    "unknown_key": (FaultClass.UNKNOWN_KEY, CP1),
    "inconsistent_checkpoints": (FaultClass.INCONSISTENT_CHECKPOINTS, CP1),
    "payload_mismatch": (FaultClass.PAYLOAD_MISMATCH, TARGET),
    "redaction_abuse": (FaultClass.REDACTION_ABUSE, TARGET),
}


def _edit(env: bytes) -> bytes:
    out = env.replace(b"ci@example.org", b"ci@example.net").replace(b'"ci"', b'"cj"')
    assert out != env
    return out


def _forged(prev: bytes, seq: int = TARGET) -> tuple[bytes, bytes, bytes]:
    """A well-formed entry an intruder could write: envelope, leaf hash, payload."""
    payload = b'{"decision":"allow","forged":true}'
    env = envelope(seq, prev.hex(), payload)
    return env, leaf_hash(env), payload


def _bad_notes(size: int, root: bytes, good_note: str) -> dict[str, str]:
    """Checkpoint notes for the three checkpoint faults, for a log of ``size``."""
    body = Checkpoint(ORIGIN, size, root).body()
    other = Checkpoint(ORIGIN, size, bytes(32)).body()
    return {
        # Body edited under a genuine signature: a known key's signature fails.
        "forged_checkpoint": other + good_note[len(body) :],
        "unknown_key": sign_note(body, [INTRUDER]),
        # Validly signed by the log key, but not a root of this log.
        "inconsistent_checkpoints": sign_note(Checkpoint(ORIGIN, 30, bytes(32)).body(), [SIGNER]),
    }


def _verify(entries: Any, checkpoints: Any, trusted: str | None = None) -> VerificationReport:
    return Verifier([SIGNER.verifier()], ORIGIN, trusted).verify(entries, checkpoints)


def _assert_names(report: VerificationReport, scenario: str) -> None:
    fault, seq = EXPECTED[scenario]
    assert not report, f"{scenario}: tampering not detected"
    assert (report.fault, report.first_bad_seq) == (fault, seq), report.message


def _assert_cli_names(scenario: str, *source: str) -> None:
    """`audit verify` exits 1 and prints the fault class and first bad seq."""
    from audit.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(["verify", *source, "--key", SIGNER.vkey], stdout=out, stderr=err)
    fault, seq = EXPECTED[scenario]
    assert code == 1, err.getvalue()
    assert f"TAMPERED: {fault.value} at seq {seq}:" in out.getvalue()


# -- in memory -----------------------------------------------------------------


def _mem_log() -> MemLog:
    log = MemLog(signer=SIGNER).fill(CP1)
    log.checkpoint()
    log.fill(N - CP1)
    log.checkpoint()
    return log


def _tamper_mem(log: MemLog, scenario: str) -> None:
    e, t = log.entries, TARGET
    if scenario.startswith("modified"):
        env = _edit(e[t].envelope)
        h = leaf_hash(env) if scenario == "modified_rehashed" else e[t].leaf_hash
        e[t] = StoredEntry(t, env, h, e[t].payload, False)
    elif scenario == "inserted":
        env, h, payload = _forged(e[t - 1].leaf_hash)
        e.insert(t, StoredEntry(t, env, h, payload, False))
    elif scenario == "deleted":
        del e[t]
    elif scenario == "reordered":
        e[t], e[t + 1] = e[t + 1], e[t]
    elif scenario == "truncated":
        del e[30:]
    elif scenario == "payload_mismatch":
        e[t] = StoredEntry(t, e[t].envelope, e[t].leaf_hash, b'{"decision":"deny"}', False)
    elif scenario == "redaction_abuse":
        log.redact(t, tombstone=False)
    else:
        notes = _bad_notes(N, log.root(), log.checkpoints[-1].note)
        if scenario == "inconsistent_checkpoints":
            log.checkpoints.insert(1, StoredCheckpoint(30, notes[scenario]))
        else:
            log.checkpoints[-1] = StoredCheckpoint(N, notes[scenario])


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_tamper_in_memory(scenario: str) -> None:
    """Each fault class is named with its first bad seq on in-memory rows."""
    log = _mem_log()
    assert _verify(iter(log.entries), iter(log.checkpoints))
    _tamper_mem(log, scenario)
    _assert_names(_verify(iter(log.entries), iter(log.checkpoints)), scenario)


# -- a real SQLite log, tampered through raw sqlite3 -----------------------------


def _sqlite_log(path: Path) -> Any:
    from audit.log import AuditLog

    log = AuditLog.open(f"sqlite:///{path}", origin=ORIGIN, signer=SIGNER)
    for i in range(N):
        log.append("decision", {"name": "credit-risk", "version": "3"}, "ci", {"n": i}, time=OLD)
        if i + 1 in (CP1, N):
            log.checkpoint()
    return log


def _shift(db: sqlite3.Connection, table: str, start: int, by: int) -> None:
    """Renumber seq >= start by ``by`` without tripping the primary key midway."""
    db.execute(f"UPDATE {table} SET seq = seq + 1000000 WHERE seq >= ?", (start,))
    db.execute(f"UPDATE {table} SET seq = seq - 1000000 + ? WHERE seq >= 1000000", (by,))


def _entry_row(db: sqlite3.Connection, seq: int) -> tuple[bytes, bytes]:
    env, h = db.execute(
        "SELECT envelope, leaf_hash FROM audit_entries WHERE seq = ?", (seq,)
    ).fetchone()
    return bytes(env), bytes(h)


def _tamper_chain_sql(db: sqlite3.Connection, scenario: str) -> None:
    t = TARGET
    if scenario.startswith("modified"):
        env = _edit(_entry_row(db, t)[0])
        db.execute("UPDATE audit_entries SET envelope = ? WHERE seq = ?", (env, t))
        if scenario == "modified_rehashed":
            db.execute("UPDATE audit_entries SET leaf_hash = ? WHERE seq = ?", (leaf_hash(env), t))
    elif scenario == "inserted":
        env, h, payload = _forged(_entry_row(db, t - 1)[1])
        for table in ("audit_entries", "audit_payloads"):
            _shift(db, table, t, 1)
        db.execute(
            "INSERT INTO audit_entries VALUES (?, ?, ?, 'decision', 'credit-risk', '3',"
            " NULL, 'ci@example.org', '2026-11-26T15:00:20.000000Z')",
            (t, h, env),
        )
        db.execute(
            "INSERT INTO audit_payloads VALUES (?, ?, ?, 0)",
            (t, "sha256:" + hashlib.sha256(payload).hexdigest(), payload),
        )
    elif scenario == "deleted":
        for table in ("audit_entries", "audit_payloads"):
            db.execute(f"DELETE FROM {table} WHERE seq = ?", (t,))
    elif scenario == "reordered":
        for table in ("audit_entries", "audit_payloads"):
            db.execute(f"UPDATE {table} SET seq = -1 WHERE seq = ?", (t,))
            db.execute(f"UPDATE {table} SET seq = ? WHERE seq = ?", (t, t + 1))
            db.execute(f"UPDATE {table} SET seq = ? WHERE seq = -1", (t + 1,))
    elif scenario == "truncated":
        for table in ("audit_entries", "audit_payloads"):
            db.execute(f"DELETE FROM {table} WHERE seq >= 30")


def _tamper_sql(db: sqlite3.Connection, scenario: str, root: bytes) -> None:
    if scenario in ("forged_checkpoint", "unknown_key", "inconsistent_checkpoints"):
        good = db.execute("SELECT note FROM audit_checkpoints WHERE size = ?", (N,)).fetchone()[0]
        note = _bad_notes(N, root, good)[scenario]
        if scenario == "inconsistent_checkpoints":
            db.execute("INSERT INTO audit_checkpoints VALUES (30, ?, ?)", (bytes(32), note))
        else:
            db.execute("UPDATE audit_checkpoints SET note = ? WHERE size = ?", (note, N))
    elif scenario == "payload_mismatch":
        db.execute("UPDATE audit_payloads SET content = ? WHERE seq = ?", (b'{"n":999}', TARGET))
    elif scenario == "redaction_abuse":
        db.execute(
            "UPDATE audit_payloads SET content = NULL, redacted = 1 WHERE seq = ?", (TARGET,)
        )
    else:
        _tamper_chain_sql(db, scenario)
    db.commit()


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One signed 40-entry SQLite log file, built once and copied per test."""
    path = tmp_path_factory.mktemp("template") / "audit.db"
    _sqlite_log(path).close()
    return path


@pytest.fixture
def sqlite_log(sqlite_template: Path, tmp_path: Path) -> Any:
    """A fresh copy of the signed 40-entry SQLite log; closed after the test."""
    from audit.log import AuditLog

    shutil.copyfile(sqlite_template, tmp_path / "audit.db")
    log = AuditLog.open(f"sqlite:///{tmp_path / 'audit.db'}", origin=ORIGIN, signer=SIGNER)
    assert log.size() == N
    yield log
    log.close()


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_tamper_sqlite(sqlite_log: Any, tmp_path: Path, scenario: str) -> None:
    """On a real SQLite log, Verifier and `audit verify` name each class and first bad seq."""
    store = sqlite_log.store
    assert _verify(store.iter_entries(), store.iter_checkpoints())
    db = sqlite3.connect(tmp_path / "audit.db")
    try:
        _tamper_sql(db, scenario, sqlite_log.root())
    finally:
        db.close()
    _assert_names(_verify(store.iter_entries(), store.iter_checkpoints()), scenario)
    _assert_cli_names(scenario, "--log", f"sqlite:///{tmp_path / 'audit.db'}")


def test_sqlite_redaction_verifies_and_is_reported(sqlite_log: Any) -> None:
    """A redaction through the log keeps verification passing and lists the seq."""
    sqlite_log.redact(TARGET, "dpo@example.org", "erasure request")
    sqlite_log.checkpoint()
    store = sqlite_log.store
    report = _verify(store.iter_entries(), store.iter_checkpoints())
    assert report, report.message
    assert report.redacted_seqs == (TARGET,)


def test_sqlite_truncation_caught_by_trusted_checkpoint(sqlite_log: Any, tmp_path: Path) -> None:
    """Truncating entries and their checkpoints is caught by the auditor's checkpoint."""
    trusted = sqlite_log.latest_checkpoint().note
    db = sqlite3.connect(tmp_path / "audit.db")
    db.execute("DELETE FROM audit_entries WHERE seq >= 30")
    db.execute("DELETE FROM audit_checkpoints WHERE size > 30")
    db.commit()
    db.close()
    store = sqlite_log.store
    assert _verify(store.iter_entries(), store.iter_checkpoints())
    report = _verify(store.iter_entries(), store.iter_checkpoints(), trusted)
    assert (report.fault, report.first_bad_seq) == (FaultClass.TRUNCATED, 30), report.message


# -- an exported evidence bundle, tampered by editing its files ---------------------


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _tamper_bundle_entries(
    entries: list[dict[str, Any]], payloads: list[dict[str, Any]], scenario: str
) -> None:
    t = TARGET
    if scenario.startswith("modified"):
        env = _edit(base64.b64decode(entries[t]["envelope_b64"]))
        entries[t]["envelope_b64"] = base64.b64encode(env).decode()
        if scenario == "modified_rehashed":
            entries[t]["leaf_hash"] = leaf_hash(env).hex()
    elif scenario == "inserted":
        env, h, payload = _forged(bytes.fromhex(entries[t - 1]["leaf_hash"]))
        entries.insert(
            t, {"seq": t, "envelope_b64": base64.b64encode(env).decode(), "leaf_hash": h.hex()}
        )
        payloads.insert(
            t,
            {
                "seq": t,
                "digest": "sha256:" + hashlib.sha256(payload).hexdigest(),
                "payload_b64": base64.b64encode(payload).decode(),
            },
        )
    elif scenario == "deleted":
        del entries[t], payloads[t]
    elif scenario == "reordered":
        entries[t], entries[t + 1] = entries[t + 1], entries[t]
    elif scenario == "truncated":
        del entries[30:], payloads[30:]
    elif scenario == "payload_mismatch":
        payloads[t]["payload_b64"] = base64.b64encode(b'{"n":999}').decode()
    elif scenario == "redaction_abuse":
        payloads[t] = {"seq": t, "digest": payloads[t]["digest"], "redacted": True}


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_tamper_export_bundle(sqlite_log: Any, tmp_path: Path, scenario: str) -> None:
    """On an exported bundle, Verifier and `audit verify` name each class and first bad seq."""
    from audit.export import export_bundle, open_bundle

    out = tmp_path / "bundle"
    export_bundle(sqlite_log, out)
    bundle = open_bundle(out)
    assert _verify(bundle.iter_entries(), bundle.iter_checkpoints())
    entries, payloads = _lines(out / "entries.jsonl"), _lines(out / "payloads.jsonl")
    checkpoints = _lines(out / "checkpoints.jsonl")
    if scenario in ("forged_checkpoint", "unknown_key", "inconsistent_checkpoints"):
        note = _bad_notes(N, sqlite_log.root(), checkpoints[-1]["note"])[scenario]
        if scenario == "inconsistent_checkpoints":
            checkpoints.insert(1, {"size": 30, "note": note})
        else:
            checkpoints[-1]["note"] = note
    else:
        _tamper_bundle_entries(entries, payloads, scenario)
    _write(out / "entries.jsonl", entries)
    _write(out / "payloads.jsonl", payloads)
    _write(out / "checkpoints.jsonl", checkpoints)
    bundle = open_bundle(out)
    _assert_names(_verify(bundle.iter_entries(), bundle.iter_checkpoints()), scenario)
    _assert_cli_names(scenario, "--bundle", str(out))
