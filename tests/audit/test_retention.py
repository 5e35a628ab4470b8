"""Tests for audit/retention.py: redaction tombstones, the retention floor, legal holds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from audit.errors import RetentionError
from audit.log import AuditLog, InputError
from audit.retention import active_holds, hold, redact, release

from .conftest import FIXED_TIME

LATER = FIXED_TIME + timedelta(days=200)


def _old_entry(log: AuditLog, name: str = "model", version: str = "1") -> int:
    return log.append("decision", {"name": name, "version": version}, "ci",
                      {"email": "a@example.com"}, time=FIXED_TIME).seq


def test_redact_deletes_content_keeps_digest_and_logs_tombstone(log: AuditLog) -> None:
    """Redaction nulls the payload, keeps its digest, and appends a tombstone naming it."""
    seq = _old_entry(log)
    digest = log.get(seq).envelope["payload_digest"]
    tomb = redact(log, seq, "dpo@example.com", "erasure request 42", now=LATER)
    entry = log.get(seq)
    assert entry.redacted and entry.payload is None
    assert entry.envelope["payload_digest"] == digest
    stone = log.get(tomb.seq)
    assert stone.envelope["type"] == "redaction"
    assert stone.envelope["actor"] == "dpo@example.com"
    assert stone.envelope["subject"] == {"name": "model", "version": "1"}
    assert stone.payload == {"seq": seq, "by": "dpo@example.com",
                             "reason": "erasure request 42", "digest": digest}
    assert json.loads(tomb.envelope)["seq"] == seq + 1


def test_redaction_inside_floor_is_refused(log: AuditLog) -> None:
    """A payload younger than 180 days cannot be redacted and nothing changes."""
    seq = _old_entry(log)
    with pytest.raises(RetentionError, match="retention floor"):
        redact(log, seq, "dpo", "erasure", now=FIXED_TIME + timedelta(days=179))
    assert not log.get(seq).redacted
    assert log.size() == 1


def test_retention_floor_is_configurable_but_not_below_180(sqlite_url: str) -> None:
    """A longer floor refuses older payloads; a floor under 180 days is rejected."""
    longer = AuditLog.open(sqlite_url, retention_days=365)
    seq = _old_entry(longer)
    with pytest.raises(RetentionError, match="365 days"):
        redact(longer, seq, "dpo", "erasure", now=LATER)
    with pytest.raises(InputError, match="expected >= 180"):
        AuditLog.open(sqlite_url, retention_days=30)


def test_legal_hold_refuses_redaction_until_released(log: AuditLog) -> None:
    """A hold on the model name (all versions) blocks redaction; release lifts it."""
    seq = _old_entry(log, version="7")
    placed = hold(log, "model", by="legal", reason="litigation L-1")
    assert active_holds(log) == [{"seq": placed.seq, "name": "model", "version": None}]
    with pytest.raises(RetentionError, match="legal hold"):
        redact(log, seq, "dpo", "erasure", now=LATER)
    released = release(log, "model", by="legal", reason="case closed")
    assert log.get(released.seq).payload["holds"] == [placed.seq]
    assert active_holds(log) == []
    redact(log, seq, "dpo", "erasure", now=LATER)
    assert log.get(seq).redacted


def test_version_hold_only_covers_that_version(log: AuditLog) -> None:
    """A hold on one version leaves other versions redactable."""
    held = _old_entry(log, version="1")
    free = _old_entry(log, version="2")
    hold(log, "model", "1", by="legal", reason="audit")
    with pytest.raises(RetentionError):
        redact(log, held, "dpo", "erasure", now=LATER)
    redact(log, free, "dpo", "erasure", now=LATER)


def test_release_without_hold_is_refused(log: AuditLog) -> None:
    """Releasing a hold that does not exist raises RetentionError."""
    with pytest.raises(RetentionError, match="no active legal hold"):
        release(log, "model", by="legal", reason="x")


def test_double_redaction_and_audit_entries_refused(log: AuditLog) -> None:
    """A payload is redacted once; tombstones themselves are never redacted."""
    seq = _old_entry(log)
    tomb = redact(log, seq, "dpo", "erasure", now=LATER)
    with pytest.raises(RetentionError, match="already redacted"):
        redact(log, seq, "dpo", "again", now=LATER)
    with pytest.raises(InputError, match="audit 'redaction' entry"):
        redact(log, tomb.seq, "dpo", "x", now=datetime.now(UTC) + timedelta(days=400))


def test_redaction_needs_who_and_why(log: AuditLog) -> None:
    """Empty by or reason is refused before anything is written."""
    seq = _old_entry(log)
    with pytest.raises(InputError, match="reason"):
        redact(log, seq, "dpo", " ", now=LATER)
    assert log.size() == 1


def test_log_methods_delegate(log: AuditLog) -> None:
    """AuditLog.hold/release/redact reach the retention functions."""
    fresh = log.append("decision", {"name": "model"}, "ci", {"x": 1}).seq
    log.hold("model", by="legal", reason="r")
    log.release("model", by="legal", reason="r")
    with pytest.raises(RetentionError, match="retention floor"):
        log.redact(fresh, "dpo", "erasure")
