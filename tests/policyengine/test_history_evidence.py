"""history.evidence: recorded reports of this model version, newest first, bound by digest."""

from __future__ import annotations

from policyengine.approvals import TrustStore
from policyengine.history import history_from_entries
from tests.policyengine.test_history import MODEL, VERSION, Log

SUBJECT = {"name": MODEL, "version": VERSION}


def _drift(file: str, share: float) -> dict:
    return {"kind": "drift", "format": "evidently", "source": {"file": file},
            "drift": {"share": share, "columns": []}}


def _history(log: Log) -> dict:
    return history_from_entries(log.entries, model=MODEL, version=VERSION,
                                trust=TrustStore({}), allow_unsigned=False).history


def test_evidence_is_listed_newest_first_with_time_and_seq() -> None:
    """Two drift reports come back newest first, each with its entry's time and seq."""
    log = Log()
    log.add("evidence", SUBJECT, "ci", _drift("old.json", 0.5))
    log.add("evidence", SUBJECT, "ci", _drift("new.json", 0.0))
    evidence = _history(log)["evidence"]
    assert [e["source"]["file"] for e in evidence] == ["new.json", "old.json"]
    assert [e["seq"] for e in evidence] == [1, 0]
    assert evidence[0]["time"] == "2026-11-26T15:01:00.000000Z"


def test_no_evidence_leaves_the_history_shape_unchanged() -> None:
    """Without evidence entries the history has no evidence key (earlier decisions replay)."""
    assert "evidence" not in _history(Log())


def test_evidence_of_another_version_is_not_this_versions() -> None:
    """A report recorded for version 9.9 is not in the history of this version."""
    log = Log()
    log.add("evidence", {"name": MODEL, "version": "9.9"}, "ci", _drift("x.json", 0.9))
    assert "evidence" not in _history(log)


def test_evidence_whose_payload_does_not_match_its_digest_is_rejected() -> None:
    """A tampered evidence payload is left out and reported with the reason."""
    log = Log()
    entry = log.add("evidence", SUBJECT, "ci", _drift("x.json", 0.9))
    entry.payload["drift"]["share"] = 0.0
    result = history_from_entries(log.entries, model=MODEL, version=VERSION,
                                  trust=TrustStore({}), allow_unsigned=False)
    assert "evidence" not in result.history
    assert next(r.reason for r in result.rejected).startswith("payload digest mismatch")
