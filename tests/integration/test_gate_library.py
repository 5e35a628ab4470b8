"""The gate's Python API with caller-held resources (as the service uses it)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pytest

from audit.log import AuditLog
from policyengine.approvals import new_waiver_id
from policyengine.cards.validate import load_document
from policyengine.config import load_config
from policyengine.engine import Engine
from policyengine.gate import gate
from policyengine.promote import PromotionRefusedError, _check_evidence, promote, record_event
from tests.integration.gatecli import CARD, DIGEST, MODEL, VERSION


@pytest.fixture
def held(workdir):
    """One engine over a config, signer and an open log, reused across calls."""
    config = load_config(env={}, cwd=workdir)
    signer = config.signer(io.StringIO())
    (workdir / ".policyengine").mkdir(exist_ok=True)
    log = AuditLog.open(config.log_url, origin=config.origin, signer=signer)
    return Engine(config, log=log, signer=signer), signer, log


def test_gate_with_held_resources(held):
    """gate() uses the engine's log and compiles the policies once; two calls, two decisions."""
    engine, signer, log = held
    card = load_document(CARD)
    seqs = []
    for _ in range(2):
        result = gate(engine, card, "staging", "promote")
        assert result.allow and result.verifier_key == signer.vkey
        seqs.append(result.seq)
    # The first decision follows the policy bundle it was made under; the second does not.
    types = [e.envelope["type"] for e in log.query()]
    assert types == ["policy_bundle", "decision", "decision"] and seqs == [1, 2]
    assert engine.compiled("staging") is engine.compiled("staging")


def test_promote_and_event_with_held_log(held):
    """promote() and record_event() append to the engine's log."""
    engine, _signer, log = held
    decided = gate(engine, load_document(CARD), "staging", "promote")
    promoted = promote(
        engine, model=MODEL, version=VERSION, digest=DIGEST, stage="staging", actor="svc"
    )
    assert promoted.decision_seq == decided.seq and promoted.seq == decided.seq + 1
    event = record_event(
        engine,
        "incident",
        model=MODEL,
        version=VERSION,
        digest=None,
        stage=None,
        actor="svc",
        data={"ticket": "INC-1"},
    )
    assert event.seq == promoted.seq + 1 and log.get(event.seq).envelope["type"] == "incident"


@dataclass
class _Entry:
    seq: int
    envelope: dict[str, Any]
    payload: Any
    redacted: bool = False


@dataclass
class _Checkpoint:
    size: int


def test_tampered_allow_payload_refused():
    """promote refuses an allow whose payload no longer matches its envelope digest."""
    entry = _Entry(
        4, {"payload_digest": "sha256:" + "00" * 32}, {"decision": {"decision": "allow"}}
    )
    with pytest.raises(PromotionRefusedError, match="payload digest mismatch"):
        _check_evidence({"seq": 4}, [entry], _Checkpoint(5))


def test_waiver_ids_are_fresh():
    """new_waiver_id gives distinct w-<12 hex> ids."""
    first, second = new_waiver_id(), new_waiver_id()
    assert first != second and first.startswith("w-") and len(first) == 14
