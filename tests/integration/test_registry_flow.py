"""The registry flow (policyengine.registry) and the Engine it runs on, over a real SQLite log."""

from __future__ import annotations

import argparse
import io

import pytest

from policyengine import registry
from policyengine.cards.validate import load_document
from policyengine.config import load_config
from policyengine.engine import Engine
from policyengine.errors import CardValidationError
from policyengine.gate import gate
from tests.integration.gatecli import CARD, DIGEST, MODEL, VERSION

ACTOR = "webhook:test"


@pytest.fixture
def engine(workdir):
    """An engine over the default configuration in an empty working directory."""
    built = Engine(load_config(env={}, cwd=workdir), err=io.StringIO())
    yield built
    built.close()


def _types(engine: Engine) -> list[str]:
    return [entry.envelope["type"] for entry in engine.log.query()]


def test_registered_card_is_recorded_then_decided(engine):
    """A registration with a card writes `registered`, then the gate's decision on `register`."""
    version = registry.Version(MODEL, VERSION, DIGEST, ACTOR)
    outcome = registry.registered(engine, version, load_document(CARD), data={"source": "test"})
    assert outcome.decision in ("allow", "deny") and outcome.problem is None
    assert _types(engine) == ["registered", "policy_bundle", "decision"]  # bundle, then decision
    decision = engine.log.get(outcome.seqs[1]).payload
    assert decision["event"]["type"] == "register"
    assert decision["event"]["stage"] == registry.REGISTRY_STAGE


def test_registration_without_a_card_is_a_violation(engine):
    """A version whose card could not be read is recorded, then recorded as a violation."""
    version = registry.Version(MODEL, VERSION, None, ACTOR)
    outcome = registry.registered(
        engine, version, None, data={}, problem="tag card: not JSON", details={"source": "t"}
    )
    assert outcome.decision is None and _types(engine) == ["registered", "violation"]
    payload = engine.log.get(outcome.seqs[1]).payload
    assert payload == {
        "source": "t",
        "kind": "registration_not_evaluable",
        "reason": "tag card: not JSON",
    }


def test_registration_with_an_invalid_card_is_a_violation(engine):
    """A card that fails the schema is not decided: the violation names the failing path."""
    card = load_document(CARD)
    del card["risk_tier"]
    outcome = registry.registered(engine, registry.Version(MODEL, VERSION, DIGEST, ACTOR), card,
                                  data={})
    assert outcome.decision is None and _types(engine) == ["registered", "violation"]
    assert "risk_tier" in engine.log.get(outcome.seqs[1]).payload["reason"]


def test_move_without_allow_is_a_violation_to_undo(engine):
    """A stage move with no allow in the log records a violation and asks for an undo."""
    version = registry.Version(MODEL, VERSION, DIGEST, ACTOR)
    moved = registry.moved(engine, version, "staging", kind="stage_without_allow",
                           details={"source": "t"})
    assert not moved.allowed and moved.undo and "no decision in the log" in moved.reason
    assert _types(engine) == ["violation"]
    assert engine.log.get(moved.seqs[0]).payload["kind"] == "stage_without_allow"


def test_move_without_digest_is_refused_before_any_check(engine):
    """A version with no known artifact digest cannot be justified: a violation says why."""
    moved = registry.moved(engine, registry.Version(MODEL, VERSION, None, ACTOR), "staging",
                           kind="alias_without_allow")
    assert moved.undo and "no artifact digest known" in moved.reason


def test_move_after_allow_is_promoted(engine):
    """After an allow at the stage, the move is recorded as `promoted`, nothing to undo."""
    assert gate(engine, load_document(CARD), "staging", "promote").allow
    moved = registry.moved(engine, registry.Version(MODEL, VERSION, DIGEST, ACTOR), "staging",
                           kind="stage_without_allow")
    assert moved.allowed and not moved.undo
    assert _types(engine) == ["policy_bundle", "decision", "promoted"]


def test_a_dry_run_move_judges_alike_and_writes_nothing(engine):
    """``dry_run`` gives the same verdict as a real move, before and after the allow, unwritten."""
    version = registry.Version(MODEL, VERSION, DIGEST, ACTOR)
    refused = registry.moved(engine, version, "staging", kind="k", dry_run=True)
    assert not refused.allowed and "no decision in the log" in refused.reason
    assert refused.seq is None and _types(engine) == []
    assert gate(engine, load_document(CARD), "staging", "promote").allow
    admitted = registry.moved(engine, version, "staging", kind="k", dry_run=True)
    assert admitted.allowed and admitted.seqs == []
    assert _types(engine) == ["policy_bundle", "decision"]


def test_engine_reports_a_bad_card_before_looking_for_a_key(workdir):
    """Under CI with no key, a bad card is still exit-2 input: the engine never loads the key."""
    engine = Engine(load_config(env={"CI": "true"}, cwd=workdir))
    card = load_document(CARD)
    del card["model"]
    with pytest.raises(CardValidationError):
        gate(engine, card, "staging", "promote")
    assert not engine.has_signer


def test_guarded_takes_exit_codes_from_the_one_table():
    """Command errors exit by their code alone: a bad proof 1, an unavailable log 3."""
    from audit.errors import InvalidProofError, LogUnavailableError
    from policyengine.cli._common import guarded

    def failing(exc: Exception):
        def command(args, out, err):
            raise exc

        return guarded(command)

    args = argparse.Namespace(command="gate")
    err = io.StringIO()
    assert failing(InvalidProofError("wrong size"))(args, io.StringIO(), err) == 1
    assert failing(LogUnavailableError("down"))(args, io.StringIO(), err) == 3
    assert err.getvalue().startswith("policyengine gate: ")
