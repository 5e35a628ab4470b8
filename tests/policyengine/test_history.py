"""History from log entries: verified approvals and waivers, decisions, promotions, events."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pytest

from audit.canonical import dumps
from audit.keys import Signer
from policyengine.approvals import (
    approval_statement,
    revocation_statement,
    sign_statement,
    waiver_statement,
)
from policyengine.history import history_from_entries

MODEL, VERSION = "credit-risk-scorer", "2.3.0"
DIGEST = "sha256:" + "3e" * 32
OTHER = "sha256:" + "99" * 32


@dataclass
class FakeEntry:
    """The fields of audit.log.Entry that history reads."""

    seq: int
    envelope: dict[str, Any]
    payload: Any
    redacted: bool = False


class Log:
    """Builds entries whose envelopes bind their payloads like the real log."""

    def __init__(self) -> None:
        self.entries: list[FakeEntry] = []

    def add(self, type_: str, subject: dict[str, str], actor: str, payload: Any) -> FakeEntry:
        digest = "sha256:" + hashlib.sha256(dumps(payload)).hexdigest()
        env = {
            "type": type_,
            "subject": subject,
            "actor": actor,
            "payload_digest": digest,
            "time": f"2026-11-26T15:{len(self.entries):02d}:00.000000Z",
        }
        entry = FakeEntry(len(self.entries), env, payload)
        self.entries.append(entry)
        return entry


def approve(log, keys, approver, role, *, signer=None, digest=DIGEST, expires=None):
    """Append an approval signed with ``signer``'s key (default the approver's)."""
    st = approval_statement(
        model=MODEL,
        version=VERSION,
        digest=digest,
        role=role,
        approver=approver,
        time="2026-11-26T15:00:00Z",
        expires=expires,
    )
    sig = (
        sign_statement(st, Signer.from_skey(keys[signer or approver][0]))
        if (signer or approver) in keys
        else None
    )
    subject = {"name": MODEL, "version": VERSION, "digest": digest}
    return log.add("approval", subject, approver, {"statement": st, "signature": sig})


def build(log, trust, **kw):
    """history_from_entries with this module's model version."""
    return history_from_entries(log.entries, model=MODEL, version=VERSION, trust=trust, **kw)


def test_verified_approvals_kept(keys, trust):
    """Approvals signed by trusted keys in held roles are in history.approvals, marked signed."""
    log = Log()
    approve(log, keys, "bob", "model-risk")
    approve(log, keys, "carol", "domain-owner")
    result = build(log, trust)
    assert [(a["approver"], a["role"], a["signed"]) for a in result.history["approvals"]] == [
        ("bob", "model-risk", True),
        ("carol", "domain-owner", True),
    ]
    assert result.rejected == []


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"approver": "bob", "role": "model-risk", "signer": "mallory"}, "not a key of 'bob'"),
        ({"approver": "bob", "role": "domain-owner"}, "does not hold role domain-owner"),
        ({"approver": "mallory", "role": "model-risk"}, "not in the trust file"),
    ],
)
def test_rejected_approvals_reported(keys, trust, kwargs, reason):
    """Approvals that do not verify are left out and reported with the reason."""
    log = Log()
    approve(log, keys, **kwargs)
    result = build(log, trust)
    assert result.history["approvals"] == []
    assert len(result.rejected) == 1 and reason in result.rejected[0].reason
    assert result.history["rejected_approvals"][0]["reason"] == result.rejected[0].reason


def test_other_digest_and_expired_kept_for_the_pack(keys, trust):
    """Genuine approvals of another digest or expired stay; the approvals pack judges them."""
    log = Log()
    approve(log, keys, "bob", "model-risk", digest=OTHER)
    approve(log, keys, "carol", "domain-owner", expires="2026-11-26T15:30:00Z")
    result = build(log, trust)
    assert [a["digest"] for a in result.history["approvals"]] == [OTHER, DIGEST]
    assert result.rejected == []


def test_tampered_payload_rejected(keys, trust):
    """A payload that no longer matches its envelope digest is left out."""
    log = Log()
    entry = approve(log, keys, "bob", "model-risk")
    entry.payload["note"] = "edited"
    result = build(log, trust)
    assert (
        result.history["approvals"] == [] and "payload digest mismatch" in result.rejected[0].reason
    )


@pytest.mark.parametrize(
    "payload",
    [
        {"statement": "not a mapping", "signature": None},
        {"statement": {"kind": "policyengine.approval/v1"}, "signature": "not a mapping"},
        ["not", "a", "mapping"],
    ],
)
def test_malformed_approval_rejected_not_raised(keys, trust, payload):
    """A malformed approval payload is left out with a reason; the history still builds."""
    log = Log()
    approve(log, keys, "bob", "model-risk")
    log.add("approval", {"name": MODEL, "version": VERSION, "digest": DIGEST}, "eve", payload)
    result = build(log, trust)
    assert [a["approver"] for a in result.history["approvals"]] == ["bob"]
    assert len(result.rejected) == 1 and result.rejected[0].seq == 1


def test_statement_subject_mismatch_rejected(keys, trust):
    """A signed statement replayed under another entry subject does not count."""
    log = Log()
    entry = approve(log, keys, "bob", "model-risk")
    entry.envelope["subject"] = {"name": MODEL, "version": VERSION, "digest": OTHER}
    result = build(log, trust)
    assert "does not match the entry's subject" in result.rejected[0].reason


def _waiver(log, keys, wid, who="carol"):
    st = waiver_statement(
        waiver_id=wid,
        rules=["slo/latency-p95"],
        model=MODEL,
        version=None,
        versions=None,
        reason="r",
        ticket="T",
        approver=who,
        time="2026-11-26T15:00:00Z",
        expires="2027-01-01T00:00:00Z",
    )
    sig = sign_statement(st, Signer.from_skey(keys[who][0]))
    log.add("waiver", {"name": MODEL}, who, {"statement": st, "signature": sig})


def test_waivers_minus_revoked(keys, trust):
    """A verified revocation removes its waiver; others stay."""
    log = Log()
    _waiver(log, keys, "w-1")
    _waiver(log, keys, "w-2")
    st = revocation_statement(
        waiver_id="w-1", model=MODEL, reason="fixed", approver="bob", time="2026-11-26T15:10:00Z"
    )
    log.add(
        "waiver_revoked",
        {"name": MODEL},
        "bob",
        {"statement": st, "signature": sign_statement(st, Signer.from_skey(keys["bob"][0]))},
    )
    ids = [w["id"] for w in build(log, trust).history["waivers"]]
    assert ids == ["w-2"]


def test_unsigned_revocation_ignored(keys, trust):
    """An unsigned revocation does not remove a waiver."""
    log = Log()
    _waiver(log, keys, "w-1")
    st = revocation_statement(waiver_id="w-1", model=MODEL, reason="x", approver="bob", time="t")
    log.add("waiver_revoked", {"name": MODEL}, "bob", {"statement": st, "signature": None})
    result = build(log, trust)
    assert [w["id"] for w in result.history["waivers"]] == ["w-1"]
    assert "unsigned" in result.rejected[0].reason


def test_untrusted_waiver_ignored(keys, trust):
    """A waiver signed by a key outside the trust file is left out."""
    log = Log()
    _waiver(log, keys, "w-1", who="mallory")
    result = build(log, trust)
    assert result.history["waivers"] == [] and result.rejected[0].type == "waiver"


def test_decisions_promotions_events(trust):
    """Decision, promoted and event entries of this version become history items."""
    log = Log()
    subject = {"name": MODEL, "version": VERSION, "digest": DIGEST}
    log.add(
        "decision",
        subject,
        "ci",
        {
            "decision": {"id": "d1", "decision": "allow", "bundle_digest": "sha256:b"},
            "event": {"stage": "production"},
            "card": {},
        },
    )
    log.add("promoted", subject, "ci", {"type": "promoted", "stage": "production"})
    log.add("incident", subject, "ops", {"type": "incident", "data": {"ticket": "INC-1"}})
    log.add("decision", {"name": MODEL, "version": "9.9.9"}, "ci", {"decision": {}})
    log.add("approval", {"name": "other-model", "version": VERSION}, "bob", {})
    h = build(log, trust).history
    assert h["decisions"] == [
        {
            "id": "d1",
            "decision": "allow",
            "stage": "production",
            "digest": DIGEST,
            "bundle_digest": "sha256:b",
            "time": "2026-11-26T15:00:00.000000Z",
            "seq": 0,
        }
    ]
    assert h["promotions"][0]["stage"] == "production" and h["promotions"][0]["seq"] == 1
    assert h["events"][0]["type"] == "incident"


def test_redacted_decision_skipped(trust):
    """A redacted decision is reported, not used."""
    log = Log()
    entry = log.add(
        "decision", {"name": MODEL, "version": VERSION, "digest": DIGEST}, "ci", {"decision": {}}
    )
    entry.redacted, entry.payload = True, None
    result = build(log, trust)
    assert result.history["decisions"] == [] and "redacted" in result.rejected[0].reason


def test_history_keys_match_contract(trust):
    """An empty log gives every list of the contract plus rejected_approvals."""
    assert set(build(Log(), trust).history) == {
        "approvals",
        "waivers",
        "decisions",
        "promotions",
        "events",
        "rejected_approvals",
    }


def test_build_history_from_a_real_log_matches_all_entries(tmp_path, keys, trust):
    """build_history's indexed queries keep exactly what a walk over every entry keeps."""
    from audit.log import AuditLog
    from policyengine.history import build_history

    fake = Log()
    approve(fake, keys, "bob", "model-risk")
    _waiver(fake, keys, "w-1")
    other = {"name": MODEL, "version": "9.9.9", "digest": DIGEST}
    own = {"name": MODEL, "version": VERSION, "digest": DIGEST}
    fake.add("decision", other, "ci", {"decision": {"allow": True}, "event": {"stage": "s"}})
    fake.add("decision", {"name": "other-model", "version": VERSION}, "ci", {"decision": {}})
    approve(fake, keys, "carol", "domain-owner")
    fake.add("promoted", own, "ci", {"stage": "p"})
    real = AuditLog.open(f"sqlite:///{tmp_path / 'a.db'}")
    for entry in fake.entries:
        env = entry.envelope
        real.append(env["type"], env["subject"], env["actor"], entry.payload)
    got = build_history(real, model=MODEL, version=VERSION, trust=trust)
    want = history_from_entries(real.query(), model=MODEL, version=VERSION, trust=trust)
    assert got.history == want.history and got.rejected == want.rejected
    assert [w["id"] for w in got.history["waivers"]] == ["w-1"]
    assert [a["approver"] for a in got.history["approvals"]] == ["bob", "carol"]
    assert [p["seq"] for p in got.history["promotions"]] == [5]
