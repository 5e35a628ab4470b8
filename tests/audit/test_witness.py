"""Witness cosignatures and add-checkpoint checks (c2sp.org/tlog-cosignature, tlog-witness)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from audit.errors import KeyLoadError
from audit.keys import Signer, generate_key
from audit.log import AuditLog
from audit.note import Checkpoint, sign_note
from audit.witness import (
    CosignatureVerifier,
    Witness,
    WitnessRequestError,
    WitnessState,
    cosign,
    encode_add_checkpoint,
    parse_add_checkpoint,
    parse_log_keys,
    verified_cosigners,
    witness_vkey,
)
from tests.audit.conftest import fill

BODY = Checkpoint("test.example/audit", 3, bytes(range(32))).body()


@pytest.fixture
def wsigner() -> Signer:
    """A witness key."""
    return Signer.from_skey(generate_key("witness.example/w1")[0])


def test_cosignature_verifies_and_uses_type_0x04(wsigner: Signer) -> None:
    """A cosignature verifies with the 0x04 witness key, whose key id differs from Ed25519's."""
    v = CosignatureVerifier.from_vkey(witness_vkey(wsigner))
    assert v.key_id != wsigner.key_id
    line = cosign(wsigner, BODY, 1679315147)
    assert verified_cosigners(BODY, [line], [v]) == (["witness.example/w1"], [])
    assert v.times == [1679315147]
    raw = base64.b64decode(line.split()[-1])
    assert raw[:4] == v.key_id and int.from_bytes(raw[4:12], "big") == 1679315147


def test_cosignature_on_another_body_fails(wsigner: Signer) -> None:
    """A cosignature moved to another checkpoint is reported as failed."""
    v = CosignatureVerifier.from_vkey(witness_vkey(wsigner))
    other = Checkpoint("test.example/audit", 4, bytes(32)).body()
    line = cosign(wsigner, BODY, 5)
    assert verified_cosigners(other, [line], [v]) == ([], ["witness.example/w1"])


def test_ed25519_note_key_is_not_a_witness_key(key_pair: tuple[str, str]) -> None:
    """A log's 0x01 vkey is refused where a cosignature/v1 key is expected."""
    with pytest.raises(KeyLoadError, match="not a cosignature/v1 key"):
        CosignatureVerifier.from_vkey(key_pair[1])


def test_add_checkpoint_body_round_trips() -> None:
    """The request body encodes and parses back to old size, proof and note."""
    data = encode_add_checkpoint(2, [b"\x01" * 32, b"\x02" * 32], BODY + "\nsig\n")
    assert parse_add_checkpoint(data) == (2, [b"\x01" * 32, b"\x02" * 32], BODY + "\nsig\n")


@pytest.mark.parametrize("data", [b"old 01\n\nx", b"old 1\nnot-base64!\n\nx", b"old 1\nx"])
def test_malformed_add_checkpoint_refused(data: bytes) -> None:
    """A bad old line, proof line or missing blank line is a request error."""
    with pytest.raises(WitnessRequestError):
        parse_add_checkpoint(data)


def _witness(tmp_path: Path, wsigner: Signer, log_vkey: str) -> Witness:
    keys = parse_log_keys([f"policyengine.local/audit={log_vkey}"])
    return Witness(wsigner, keys, WitnessState(tmp_path / "w.json"),
                   clock=lambda: 1700000000)


def _request(log: AuditLog, old: int) -> bytes:
    cp = log.checkpoint()
    proof = log.consistency_proof(old, cp.size) if 0 < old < cp.size else []
    return encode_add_checkpoint(old, proof, cp.note)


def _witnessed_fork(tmp_path: Path, wsigner: Signer, signer: Signer, vkey: str,
                    fork_size: int) -> tuple[Witness, AuditLog]:
    """A witness that cosigned a 3-entry log, and another history of ``fork_size`` entries."""
    w = _witness(tmp_path, wsigner, vkey)
    a = AuditLog.open(f"sqlite:///{tmp_path / 'a.db'}", signer=signer)
    b = AuditLog.open(f"sqlite:///{tmp_path / 'b.db'}", signer=signer)
    fill(a, 3)
    fill(b, fork_size, name="other")
    assert w.add_checkpoint(_request(a, 0)).status == 200
    return w, b


def test_witness_cosigns_consistent_growth(
    tmp_path: Path, wsigner: Signer, log: AuditLog, key_pair: tuple[str, str]
) -> None:
    """The witness cosigns a first checkpoint, then one consistent with it, and persists it."""
    w = _witness(tmp_path, wsigner, key_pair[1])
    fill(log, 3)
    first = w.add_checkpoint(_request(log, 0))
    assert first.status == 200 and first.body.startswith("\u2014 witness.example/w1 ".encode())
    fill(log, 4, start=3)
    assert w.add_checkpoint(_request(log, 3)).status == 200
    assert json.loads((tmp_path / "w.json").read_text())["logs"][log.origin]["size"] == 7
    assert WitnessState(tmp_path / "w.json").latest(log.origin) == (7, log.root())


def test_witness_refuses_stale_old_size_with_409(
    tmp_path: Path, wsigner: Signer, log: AuditLog, key_pair: tuple[str, str]
) -> None:
    """An old size other than the witness's latest gets 409 and that size as text/x.tlog.size."""
    w = _witness(tmp_path, wsigner, key_pair[1])
    fill(log, 3)
    w.add_checkpoint(_request(log, 0))
    fill(log, 2, start=3)
    resp = w.add_checkpoint(_request(log, 0))
    assert (resp.status, resp.content_type, resp.body) == (409, "text/x.tlog.size", b"3\n")


def test_witness_refuses_second_root_for_a_size(
    tmp_path: Path, wsigner: Signer, signer: Signer, key_pair: tuple[str, str]
) -> None:
    """Two roots signed for one size (a split view) get 409."""
    w, b = _witnessed_fork(tmp_path, wsigner, signer, key_pair[1], 3)
    assert w.add_checkpoint(_request(b, 3)).status == 409


def test_witness_refuses_inconsistent_proof_with_422(
    tmp_path: Path, wsigner: Signer, signer: Signer, key_pair: tuple[str, str]
) -> None:
    """A checkpoint whose proof does not extend the witnessed tree gets 422."""
    w, b = _witnessed_fork(tmp_path, wsigner, signer, key_pair[1], 5)
    resp = w.add_checkpoint(_request(b, 3))
    assert resp.status == 422 and b"does not verify" in resp.body


def test_witness_refuses_unknown_origin_and_bad_signature(
    tmp_path: Path, wsigner: Signer, log: AuditLog, key_pair: tuple[str, str]
) -> None:
    """An unknown origin gets 404; a checkpoint not signed by the log's key gets 403."""
    other = Signer.from_skey(generate_key("test.example/audit")[0])
    w = _witness(tmp_path, wsigner, key_pair[1])
    stranger = sign_note(Checkpoint("elsewhere", 0, bytes(32)).body(), [other])
    assert w.add_checkpoint(encode_add_checkpoint(0, [], stranger)).status == 404
    forged = sign_note(Checkpoint(log.origin, 0, bytes(32)).body(), [other])
    assert w.add_checkpoint(encode_add_checkpoint(0, [], forged)).status == 403
