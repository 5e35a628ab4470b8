"""Tests for audit/transition.py and the verifier following a log's key chain."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.errors import InputError, StorageError
from audit.export import export_bundle, open_bundle, verify_filtered_bundle
from audit.keys import Signer, generate_key
from audit.log import AuditLog
from audit.transition import parse_transition, sign_transition
from audit.verify import FaultClass, Verifier

ORIGIN = "test.example/audit"


def _key() -> Signer:
    return Signer.from_skey(generate_key(ORIGIN)[0])


def _verify(log: AuditLog, *keys: Signer):
    hint = [e.payload for e in log.query(types=["key_transition"])]
    verifier = Verifier([k.verifier() for k in keys], log.origin)
    return verifier.verify(log.store.iter_entries(), log.store.iter_checkpoints(),
                           transitions=hint)


@pytest.fixture
def rotated(tmp_path: Path) -> tuple[AuditLog, list[Signer]]:
    """A log signed by k0, rotated to k1 and then k2, with entries in every era."""
    keys = [_key(), _key(), _key()]
    log = AuditLog.open(f"sqlite:///{tmp_path / 'a.db'}", origin=ORIGIN, signer=keys[0])
    log.append_signed("decision", {"name": "m"}, "ci", {"i": 0})
    for i, key in enumerate(keys[1:], 1):
        log.rotate_key(key, "ops")
        log.append_signed("decision", {"name": "m"}, "ci", {"i": i})
    return log, keys


def test_any_key_of_the_chain_verifies(rotated: tuple[AuditLog, list[Signer]]) -> None:
    """The first, a middle and the last key each anchor the whole log."""
    log, keys = rotated
    for key in keys:
        report = _verify(log, key)
        assert report.ok, report.message
        assert report.checkpoints_checked == 5


def test_a_key_outside_the_chain_is_unknown(rotated: tuple[AuditLog, list[Signer]]) -> None:
    """A key the chain never reaches vouches for nothing: unknown_key at seq 0."""
    log, _ = rotated
    report = _verify(log, _key())
    assert report.fault is FaultClass.UNKNOWN_KEY and report.first_bad_seq == 0


def test_transition_note_is_signed_by_both_keys(rotated: tuple[AuditLog, list[Signer]]) -> None:
    """The logged note names origin, size (own seq + 1), old and new key."""
    log, keys = rotated
    entry = next(iter(log.query(types=["key_transition"])))
    t = parse_transition(entry.payload["transition"])
    assert (t.origin, t.size, t.old.vkey, t.new.vkey) == (ORIGIN, entry.seq + 1, keys[0].vkey,
                                                         keys[1].vkey)
    assert log.latest_checkpoint() is not None


def test_forged_transition_is_named(rotated: tuple[AuditLog, list[Signer]]) -> None:
    """A transition signed by a key not in force is forged_transition at its seq."""
    log, keys = rotated
    attacker, target = _key(), _key()
    seq = log.size()
    note = sign_transition(ORIGIN, seq + 1, attacker, target)
    log.append_within("key_transition", {"name": ORIGIN}, "mallory", {"transition": note},
                      lambda _conn, _head: None)
    report = _verify(log, keys[0])
    assert report.fault is FaultClass.FORGED_TRANSITION and report.first_bad_seq == seq
    assert "key in force" in report.message


def test_only_the_key_in_force_signs(rotated: tuple[AuditLog, list[Signer]]) -> None:
    """An old key cannot sign any more, and rotating to the same key is refused."""
    log, keys = rotated
    stale = AuditLog(log.store, log.origin, keys[0])
    with pytest.raises(StorageError, match="not in force"):
        stale.append_signed("decision", {"name": "m"}, "ci", {})
    with pytest.raises(StorageError, match="not in force"):
        stale.rotate_key(_key(), "ops")
    with pytest.raises(InputError):
        log.rotate_key(keys[2], "ops")


def test_bundles_carry_the_chain(rotated: tuple[AuditLog, list[Signer]], tmp_path: Path) -> None:
    """Full and filtered bundles verify offline with the first key alone."""
    log, keys = rotated
    export_bundle(log, tmp_path / "full")
    bundle = open_bundle(tmp_path / "full")
    report = Verifier([keys[0].verifier()], bundle.origin).verify(
        bundle.iter_entries(), bundle.iter_checkpoints(), transitions=bundle.iter_transitions())
    assert report.ok, report.message
    export_bundle(log, tmp_path / "part", name="m")
    part = open_bundle(tmp_path / "part")
    verify_filtered_bundle(part, [keys[0].verifier()])


def test_verify_lists_the_transitions_it_followed(
        rotated: tuple[AuditLog, list[Signer]], tmp_path: Path) -> None:
    """verify --bundle prints each verified transition once, whatever transitions.jsonl says."""
    import hashlib
    import io
    import json

    from audit.cli import main

    log, keys = rotated
    export_bundle(log, tmp_path / "b")
    assert [s for s, _t in _verify(log, keys[0]).transitions] == [1, 3]
    hints = tmp_path / "b" / "transitions.jsonl"
    text = hints.read_text()
    hints.write_text(text + text.splitlines(keepends=True)[-1])  # a repeated hint line
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    manifest["files"]["transitions.jsonl"] = "sha256:" + hashlib.sha256(
        hints.read_bytes()).hexdigest()
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    out = io.StringIO()
    code = main(["verify", "--bundle", str(tmp_path / "b"), "--key", keys[0].vkey],
                stdout=out, stderr=io.StringIO())
    lines = [x for x in out.getvalue().splitlines() if x.startswith("key transition")]
    assert code == 0 and len(lines) == 2, out.getvalue()
    assert lines[0] == (f"key transition at size 2 (seq 1): {ORIGIN}+{keys[0].key_id.hex()} -> "
                        f"{ORIGIN}+{keys[1].key_id.hex()}")


def test_filtered_bundle_verification_lists_the_transitions(
        rotated: tuple[AuditLog, list[Signer]], tmp_path: Path) -> None:
    """A slice of a rotated log names its key chain too: the transitions travel with any slice."""
    import io

    from audit.cli import main

    log, keys = rotated
    export_bundle(log, tmp_path / "part", name="m")
    assert [s for s, _t in verify_filtered_bundle(open_bundle(tmp_path / "part"),
                                                  [keys[0].verifier()])] == [1, 3]
    out = io.StringIO()
    code = main(["verify", "--bundle", str(tmp_path / "part"), "--key", keys[0].vkey],
                stdout=out, stderr=io.StringIO())
    text = out.getvalue()
    assert code == 0 and "(filtered bundle)" in text, text
    assert f"key chain: first key {ORIGIN}+{keys[0].key_id.hex()}" in text
    assert text.count("key transition at size") == 2
