"""The gate's Python API with caller-held resources (as the service uses it)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pytest

from audit.log import AuditLog
from policyengine.approvals import load_trust, new_waiver_id
from policyengine.cards.validate import load_document
from policyengine.config import load_config
from policyengine.gate import compile_configured, gate
from policyengine.promote import PromotionRefusedError, _check_evidence, promote, record_event
from tests.integration.gatecli import CARD, DIGEST, MODEL, VERSION


@pytest.fixture
def held(workdir):
    """One config, signer, open log, compiled policy set and trust store, reused across calls."""
    config = load_config(env={}, cwd=workdir)
    signer = config.signer(io.StringIO())
    (workdir / ".policyengine").mkdir(exist_ok=True)
    log = AuditLog.open(config.log_url, origin=config.origin, signer=signer)
    compiled, _ = compile_configured(config, "staging")
    return config, signer, log, compiled, load_trust(None)


def test_gate_with_held_resources(held):
    """gate() uses the given log, compiled set and trust; two calls append two decisions."""
    config, signer, log, compiled, trust = held
    card = load_document(CARD)
    for expected_seq in (0, 1):
        result = gate(
            card,
            "staging",
            "promote",
            config,
            log=log,
            signer=signer,
            compiled=compiled,
            trust=trust,
        )
        assert result.allow and result.seq == expected_seq
        assert result.verifier_key == signer.vkey
    assert log.size() == 2


def test_promote_and_event_with_held_log(held):
    """promote() and record_event() append to the given log."""
    config, _signer, log, compiled, trust = held
    gate(load_document(CARD), "staging", "promote", config, log=log, compiled=compiled, trust=trust)
    promoted = promote(
        model=MODEL,
        version=VERSION,
        digest=DIGEST,
        stage="staging",
        config=config,
        actor="svc",
        log=log,
        compiled=compiled,
    )
    assert promoted.decision_seq == 0 and promoted.seq == 1
    event = record_event(
        "incident",
        model=MODEL,
        version=VERSION,
        digest=None,
        stage=None,
        config=config,
        actor="svc",
        data={"ticket": "INC-1"},
        log=log,
    )
    assert event.seq == 2 and log.get(2).envelope["type"] == "incident"


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
