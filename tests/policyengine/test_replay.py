"""Replay of recorded decisions from the log alone (policyengine.replay, policyengine.bundles)."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.log import AuditLog
from audit.receipt import verify_receipt
from policyengine.bundles import BUNDLE_TYPE, find_bundle
from policyengine.errors import InputError
from policyengine.gate import gate
from policyengine.replay import Difference, _equal, by_rule, diff, replay_all, replay_decision
from tests.policyengine.replaylog import T0, build, card, open_engine

N_DECISIONS = int(os.environ.get("POLICYENGINE_TEST_REPLAY_N", "2000"))
"""Decisions in the large-log test: 2,000 by default to stay fast; the acceptance size is
10,000 (``POLICYENGINE_TEST_REPLAY_N=10000``)."""


@pytest.fixture
def engine(tmp_path):
    """An engine over a fresh SQLite log in ``tmp_path``."""
    made = open_engine(tmp_path)
    yield made
    made.close()


def _copy_log(engine, tmp_path):
    """A consistent copy of the engine's SQLite log (the backup API carries the WAL too)."""
    src = engine.config.log_url.removeprefix("sqlite:///")
    dst = tmp_path / "copy.db"
    with sqlite3.connect(src) as source, sqlite3.connect(dst) as target:
        source.backup(target)
    return dst


def test_bundle_recorded_once_per_digest(engine):
    """The first decision under a bundle writes its policy_bundle entry; later ones do not."""
    first = gate(engine, card("1.0.0"), "staging", "promote", now=T0)
    gate(engine, card("1.0.1"), "staging", "promote", now=T0)
    bundles = list(engine.log.query(types=[BUNDLE_TYPE]))
    assert len(bundles) == 1 and bundles[0].seq == first.seq - 1
    payload = bundles[0].payload
    assert payload["bundle_digest"] == first.decision["bundle_digest"]
    paths = [f["path"] for f in payload["files"]]
    assert "fairness/fairness.yaml" in paths and all(f["text"] for f in payload["files"])
    assert find_bundle(engine.log, first.decision["bundle_digest"]).seq == bundles[0].seq


def test_bundle_is_written_with_its_decision_or_not_at_all(engine, monkeypatch):
    """A decision that cannot be signed leaves no bundle; the next decision records both."""
    import audit.log
    from policyengine.errors import LogUnavailableError

    def broken(*args, **kwargs):
        raise OSError("signing device unplugged")

    with monkeypatch.context() as m:
        m.setattr(audit.log, "sign_note", broken)
        with pytest.raises(LogUnavailableError, match="unplugged"):
            gate(engine, card("1.0.0"), "staging", "promote", now=T0)
    assert engine.log.size() == 0
    result = gate(engine, card("1.0.0"), "staging", "promote", now=T0)
    assert [e.envelope["type"] for e in engine.log.query()] == [BUNDLE_TYPE, "decision"]
    assert result.checkpoint.size == result.seq + 1 == 2


def test_decision_payload_carries_replay_inputs(engine):
    """A decision payload holds the history evaluate read, its digest and the evaluation time."""
    result = gate(engine, card("1.0.0"), "staging", "promote", now=T0)
    payload = engine.log.get(result.seq).payload
    assert payload["now"] == "2026-11-20T12:00:00.000000Z"
    assert payload["history"] == result.history.history
    assert payload["history_digest"].startswith("sha256:")


def test_receipt_shows_verdict_and_still_verifies(engine):
    """The receipt carries allow/deny beside the entry and verifies offline as before."""
    allowed = gate(engine, card("1.0.0"), "staging", "promote", now=T0)
    denied = gate(engine, card("1.0.0"), "production", "promote", now=T0)
    assert allowed.receipt["verdict"] == "allow" and denied.receipt["verdict"] == "deny"
    from audit.keys import NoteVerifier

    verifier = NoteVerifier.from_vkey(engine.signer.vkey)
    verify_receipt(allowed.receipt, [verifier])
    verify_receipt(json.loads(json.dumps(denied.receipt)), [verifier])


def test_replay_reproduces_allow_and_deny(engine):
    """Replaying an allow and a deny reproduces each whole Decision."""
    allowed = gate(engine, card("1.0.0"), "staging", "promote", now=T0)
    denied = gate(engine, card("1.0.0"), "production", "promote", now=T0)
    for seq, verdict in ((allowed.seq, "allow"), (denied.seq, "deny")):
        result = replay_decision(engine, seq)
        assert result.reproduced and result.fault is None and result.verdict == verdict


def test_bundle_entry_recompiles_to_its_digest_and_any_edit_changes_it(engine):
    """A bundle entry derives its recorded digest; a comment added to a stored file changes it."""
    from policyengine.bundles import compile_bundle

    result = gate(engine, card("1.0.0"), "staging", "promote", now=T0)
    payload = engine.log.get(result.seq - 1).payload
    assert payload["digest_version"] == 2
    assert compile_bundle(payload).bundle_digest == result.decision["bundle_digest"]
    edited = json.loads(json.dumps(payload))
    edited["files"][0]["text"] += "# reviewed\n"
    assert compile_bundle(edited).bundle_digest != result.decision["bundle_digest"]
    unmarked = {k: v for k, v in payload.items() if k != "digest_version"}
    assert compile_bundle(unmarked).bundle_digest != result.decision["bundle_digest"]


def test_decisions_recorded_under_the_first_digest_definition_still_replay(tmp_path, monkeypatch):
    """A log written before digests covered file bytes (no digest_version) replays unchanged."""
    import policyengine.bundles as bundles
    import policyengine.policy as policy
    from policyengine.policy.compile import digest_of

    before = open_engine(tmp_path)
    with monkeypatch.context() as m:  # what the gate did then: version-1 digest, no marker
        compile_v1, payload_v2 = policy.compile_policies, bundles.bundle_payload
        m.setattr(policy, "compile_policies",
                  lambda *a, **k: compile_v1(*a, **{**k, "digest_version": 1}))
        m.setattr(bundles, "bundle_payload", lambda policies: {
            k: v for k, v in payload_v2(policies).items() if k != "digest_version"})
        allowed = gate(before, card("1.0.0"), "staging", "promote", now=T0)
        denied = gate(before, card("1.0.0"), "production", "promote", now=T0)
    before.close()
    engine = open_engine(tmp_path)  # the same log, read and written by today's code
    try:
        entry = engine.log.get(allowed.seq - 1)
        assert entry.envelope["type"] == BUNDLE_TYPE and "digest_version" not in entry.payload
        compiled = engine.compiled("staging")
        first = digest_of(sorted(({"name": p.name, "version": p.version, "digest": p.digest}
                                  for p in compiled.policies), key=lambda item: item["name"]))
        assert allowed.decision["bundle_digest"] == first != compiled.bundle_digest
        for seq, verdict in ((allowed.seq, "allow"), (denied.seq, "deny")):
            result = replay_decision(engine, seq)
            assert result.reproduced and result.fault is None and result.verdict == verdict
        now = gate(engine, card("1.0.1"), "staging", "promote", now=T0)  # a new bundle entry
        assert now.decision["bundle_digest"] == compiled.bundle_digest
        assert engine.log.get(now.seq - 1).payload["digest_version"] == 2
        assert all(r.reproduced for r in replay_all(engine.log))
    finally:
        engine.close()


def test_replay_of_non_decision_is_bad_input(engine):
    """Asking to replay a bundle entry is refused as bad input."""
    result = gate(engine, card("1.0.0"), "staging", "promote", now=T0)
    with pytest.raises(InputError, match="not a decision"):
        replay_decision(engine.log, result.seq - 1)


def test_old_decision_is_not_replayable(engine):
    """A decision recorded without replay inputs is reported not replayable, not a fault."""
    result = gate(engine, card("1.0.0"), "staging", "promote", now=T0)
    payload = engine.log.get(result.seq).payload
    old = {k: payload[k] for k in ("decision", "card", "event", "rejected")}
    seq = engine.log.append("decision", {"name": "m", "version": "1"}, "ci-bot", old).seq
    replayed = replay_decision(engine.log, seq)
    assert not replayed.reproduced and replayed.fault is None
    assert "no history" in replayed.not_replayable and replayed.status == "not_replayable"


def test_large_log_replays_every_decision(engine):
    """Every decision of a log of N real gate decisions is reproduced, with zero faults."""
    seqs = build(engine, N_DECISIONS)
    seen = []
    results = list(replay_all(engine.log, lambda done, total: seen.append((done, total))))
    assert [r.seq for r in results] == seqs
    assert all(r.reproduced for r in results), [r.to_dict() for r in results if not r][:2]
    assert {r.verdict for r in results} == {"allow", "deny"}
    assert seen[-1] == (N_DECISIONS, N_DECISIONS)


def test_edited_bundle_faults_every_decision_under_it(engine, tmp_path):
    """Changing a stored policy file in a copy of the log faults every decision under it."""
    seqs = build(engine, 12)
    other = gate(engine, card("9.0.0"), "staging", "promote", now=T0)  # same bundle
    bundle = next(iter(engine.log.query(types=[BUNDLE_TYPE])))
    copy = _copy_log(engine, tmp_path)
    payload = bundle.payload
    for item in payload["files"]:
        if item["path"] == "fairness/fairness.yaml":
            item["text"] = item["text"].replace("min_dp_ratio: 0.8", "min_dp_ratio: 0.5")
    with sqlite3.connect(copy) as db:
        db.execute("UPDATE audit_payloads SET content = ? WHERE seq = ?",
                   (json.dumps(payload).encode(), bundle.seq))
    tampered = AuditLog.open(f"sqlite:///{copy}", create=False)
    try:
        results = list(replay_all(tampered))
    finally:
        tampered.close()
    assert [r.seq for r in results] == [*seqs, other.seq]
    assert {r.fault for r in results} == {"bundle_mismatch"}
    assert f"policy_bundle entry {bundle.seq}" in results[0].detail


def test_edited_decision_is_a_fault(engine, tmp_path):
    """A decision whose payload was edited in place is a payload_mismatch fault."""
    result = gate(engine, card("1.0.0"), "staging", "promote", now=T0)
    copy = _copy_log(engine, tmp_path)
    payload = engine.log.get(result.seq).payload
    payload["decision"]["decision"] = "deny"
    with sqlite3.connect(copy) as db:
        db.execute("UPDATE audit_payloads SET content = ? WHERE seq = ?",
                   (json.dumps(payload).encode(), result.seq))
    tampered = AuditLog.open(f"sqlite:///{copy}", create=False)
    try:
        assert replay_decision(tampered, result.seq).fault == "payload_mismatch"
    finally:
        tampered.close()


def test_diff_names_field_paths():
    """diff lists each differing leaf with its path and both values."""
    recorded = {"decision": "allow", "results": [{"outcome": "pass"}, {"outcome": "pass"}]}
    replayed = {"decision": "deny", "results": [{"outcome": "pass"}, {"outcome": "fail"}]}
    found = {d.path: (d.recorded, d.replayed) for d in diff(recorded, replayed)}
    assert found == {"decision": ("allow", "deny"), "results[1].outcome": ("pass", "fail")}


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from([0.0, 1.0, 2.5])
    | st.sampled_from(["", "a", "b"]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(_JSON, _JSON)
def test_the_equality_shortcut_agrees_with_diff(recorded, replayed):
    """The whole-decision shortcut says equal exactly when diff finds no difference
    (1 and 1.0 alike, true and 1 not, a missing key and a null alike)."""
    assert _equal(recorded, replayed) == (not list(diff(recorded, replayed)))
    assert _equal(recorded, recorded)


def test_differences_group_by_the_recorded_rule():
    """Result fields group under their recorded policy/rule; other fields under "decision"."""
    recorded = {"results": [{"policy": "p", "rule": "a"}, {"policy": "p", "rule": "b"}]}
    found = [Difference("results[1].outcome", "fail", "pass"), Difference("decision", "deny",
                                                                          "allow"),
             Difference("results[1].message", "x", ""), Difference("results[7].outcome", 1, 2)]
    groups = by_rule(found, recorded)
    assert [(label, [d.path for d in items]) for label, items in groups] == [
        ("p/b", ["results[1].outcome", "results[1].message"]), ("decision", ["decision"]),
        ("results[7]", ["results[7].outcome"])]
