"""The promotion gate: decide one model version against the log, and log the decision.

Owns the gate's sequence, in the order that keeps it fail-closed:

1. validate the card (schemas/model-card.schema.json);
2. compile the configured policies with the environment's params (the
   :class:`~policyengine.engine.Engine` compiles once per stage);
3. load the trust file and the checkpoint signing key (no key: nothing is written);
4. open the log and build this version's history from it (approvals, waivers,
   evidence, and the decisions, promotions, events the policies can read;
   signatures verified, see ``history.py``);
5. evaluate;
6. record the decision entry (payload: the Decision, the input card and
   event, the history evaluate read with its digest, and the evaluation
   time, so the decision replays from the log alone) through
   ``ledger.record``, preceded by the policy bundle's entry the first time
   its digest is seen (``bundles.py``): both entries and a signed checkpoint
   over them in one transaction (all or nothing), then the decision's receipt.

Any failure of the log or the key raises :class:`LogUnavailableError` or
:class:`KeyUnavailableError` (exit 3): no log, no allow. Rendering reports and
exit codes are the command line's job (``cli/gate.py``, ``cli/_common.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from policyengine.bundles import bundle_entries, format_now
from policyengine.events import event_for
from policyengine.ledger import log_errors, record

if TYPE_CHECKING:
    from collections.abc import Iterable

    from audit.log import AuditLog, NewEntry
    from policyengine.config import Config
    from policyengine.engine import Engine
    from policyengine.history import HistoryResult
    from policyengine.ledger import Recorded
    from policyengine.trust import TrustStore

__all__ = [
    "GateResult",
    "decision_payload",
    "event_for",
    "gate",
    "rule_locations",
]


@dataclass(frozen=True)
class GateResult:
    """What one gate run decided and where the log holds it."""

    decision: dict[str, Any]
    """The Decision (schemas/decision.schema.json)."""
    allow: bool
    """True when the decision is allow."""
    seq: int
    """Sequence number of the decision entry."""
    checkpoint: Any
    """The signed checkpoint covering the entry (``.size``, ``.note``)."""
    receipt: dict[str, Any]
    """Offline-verifiable receipt of the decision entry."""
    history: HistoryResult
    """The history the decision was made on, with the entries left out."""
    rule_locations: dict[str, tuple[str, int]] = field(default_factory=dict)
    """``policy/rule`` -> (policy file, line), for SARIF."""
    verifier_key: str = ""
    """Verifier key (vkey) of the checkpoint signer, to verify the receipt."""


def rule_locations(docs: Iterable[Any]) -> dict[str, tuple[str, int]]:
    """``policy/rule`` -> (file, 1-based line) from loaded policy documents."""
    found: dict[str, tuple[str, int]] = {}
    for doc in docs:
        rules = ((doc.data or {}).get("spec") or {}).get("rules") or []
        for index, rule in enumerate(rules):
            mark = doc.marks.get(("spec", "rules", index)) if hasattr(doc, "marks") else None
            if isinstance(rule, dict) and doc.name and mark:
                found[f"{doc.name}/{rule.get('id')}"] = (str(doc.file), mark[0] + 1)
    return found


def gate(
    engine: Engine,
    card: dict[str, Any],
    stage: str,
    event: str,
    *,
    card_source: str = "card",
    actor: str | None = None,
    now: datetime | None = None,
) -> GateResult:
    """Decide ``event`` of the card's model version to ``stage`` and log the decision.

    The engine supplies the compiled policies, the trust store, the signer and
    the log, each made on first use in the order above (fail closed: a bad card
    or policy is reported before a missing key, and no key means nothing written).

    Raises:
        CardValidationError: the card does not match the schema (exit 2).
        PolicyLoadError, ConfigError: policies or configuration are bad (exit 2).
        KeyUnavailableError: no usable signing key (exit 3).
        LogUnavailableError: the log cannot be read or written (exit 3).
    """
    from policyengine.cards.validate import validate_card
    from policyengine.policy import Context, evaluate

    with engine.observer.evaluation():
        validate_card(card, source=card_source)
        policies = engine.policies(stage)
        trust = engine.trust
        ev = event_for(card, event, stage, engine.actor(actor))
        log = engine.log
        hist = _history(log, engine.config, trust, ev, policies.compiled.history_reads)
        context = Context(card=card, event=ev, history=hist.history)
        when = now or datetime.now(UTC)
        decided = evaluate(policies.compiled, context, when)
        decision = decided.to_dict()
        bundle = bundle_entries(engine, policies, ev["actor"])
        recorded = _record(log, engine.config, card, ev, decision, hist, when, bundle)
        engine.bundles_recorded.add(policies.compiled.bundle_digest)
    engine.observer.decided(decision, event)
    return GateResult(
        decision=decision,
        allow=decided.allow,
        seq=recorded.seq,
        checkpoint=recorded.checkpoint,
        receipt=recorded.receipt,
        history=hist,
        rule_locations=rule_locations(policies.documents),
        verifier_key=engine.signer.vkey,
    )


def _record(
    log: AuditLog,
    config: Config,
    card: dict[str, Any],
    ev: dict[str, Any],
    decision: dict[str, Any],
    hist: HistoryResult,
    now: datetime,
    bundle: list[NewEntry],
) -> Recorded:
    """Record the decision entry (payload: Decision, card, event, replay inputs), bundle first."""
    payload = decision_payload(card, ev, decision, hist, now)
    subject = {"name": ev["model"], "version": ev["version"], "digest": ev["digest"]}
    return record(log, config, "decision", subject, ev["actor"], payload, preceding=bundle)


def decision_payload(card: dict[str, Any], ev: dict[str, Any], decision: dict[str, Any],
                     hist: HistoryResult, now: datetime) -> dict[str, Any]:
    """A decision entry's payload: the Decision, what it judged, and its replay inputs."""
    from policyengine.policy.compile import digest_of

    return {
        "decision": decision,
        "card": card,
        "event": ev,
        "rejected": [r.to_dict() for r in hist.rejected],
        # Replay inputs: the very history dict evaluate read (bit for bit beats
        # rebuilding it from the log), its digest, and the evaluation time.
        "history": hist.history,
        "history_digest": digest_of(hist.history),
        "now": format_now(now),
    }


def _history(log: AuditLog, config: Config, trust: TrustStore, ev: dict[str, Any],
             reads: frozenset[str]) -> HistoryResult:
    """This model version's verified history (the fields the policies read), from the log."""
    from policyengine.history import build_history

    # One read transaction for every list: one snapshot of the log, and on
    # PostgreSQL one pooled connection rather than one per entry type.
    with log_errors(config), log.snapshot():
        return build_history(
            log,
            model=ev["model"],
            version=ev["version"],
            trust=trust,
            allow_unsigned=config.allow_unsigned_approvals,
            reads=reads,
        )
