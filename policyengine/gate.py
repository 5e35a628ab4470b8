"""The promotion gate: decide one model version against the log, and log the decision.

Owns the gate's sequence, in the order that keeps it fail-closed:

1. validate the card (schemas/model-card.schema.json);
2. load and compile the configured policies with the environment's params;
3. load the trust file and the checkpoint signing key (no key: nothing is written);
4. open the log and build this version's history from it (approvals, waivers,
   decisions, promotions, events; signatures verified, see ``history.py``);
5. evaluate;
6. record the decision entry (payload: the Decision, the input card and the
   event) through ``ledger.record``: the entry and a signed checkpoint over it
   in one transaction, then the entry's receipt.

Any failure of the log or the key raises :class:`LogUnavailableError` or
:class:`KeyUnavailableError` (exit 3): no log, no allow. Rendering reports and
exit codes are the command line's job (``cli/gate.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from policyengine.ledger import log_errors, open_log, record

if TYPE_CHECKING:
    from audit.keys import Signer
    from audit.log import AuditLog
    from policyengine.approvals import TrustStore
    from policyengine.config import Config
    from policyengine.history import HistoryResult
    from policyengine.ledger import Recorded

__all__ = [
    "GateResult",
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


def event_for(card: dict[str, Any], event: str, stage: str, actor: str) -> dict[str, Any]:
    """Context.event for ``event`` of the card's model version to ``stage``."""
    model = card.get("model") or {}
    return {
        "type": event,
        "stage": stage,
        "model": model.get("name"),
        "version": model.get("version"),
        "digest": model.get("artifact_digest"),
        "actor": actor,
    }


def rule_locations(docs: list[Any]) -> dict[str, tuple[str, int]]:
    """``policy/rule`` -> (file, 1-based line) from loaded policy documents."""
    found: dict[str, tuple[str, int]] = {}
    for doc in docs:
        rules = ((doc.data or {}).get("spec") or {}).get("rules") or []
        for index, rule in enumerate(rules):
            mark = doc.marks.get(("spec", "rules", index)) if hasattr(doc, "marks") else None
            if isinstance(rule, dict) and doc.name and mark:
                found[f"{doc.name}/{rule.get('id')}"] = (str(doc.file), mark[0] + 1)
    return found


def compile_configured(config: Config, stage: str) -> tuple[Any, list[Any]]:
    """Load and compile the configured policies with the parameters for ``stage``.

    With ``allow_unsigned_approvals`` the approvals pack's own switch is turned on
    too, so the history's unsigned (marked) approvals are counted consistently.
    """
    from policyengine.policy import compile_policies, load_policies

    docs = load_policies(list(config.policies))
    params = config.params_for(stage)
    if config.allow_unsigned_approvals and any(doc.name == "approvals" for doc in docs):
        params.setdefault("approvals", {})["allow_unsigned"] = True
    return compile_policies(docs, params=params), docs


def gate(
    card: dict[str, Any],
    stage: str,
    event: str,
    config: Config,
    *,
    card_source: str = "card",
    actor: str | None = None,
    now: datetime | None = None,
    err: TextIO | None = None,
    log: AuditLog | None = None,
    signer: Signer | None = None,
    compiled: Any = None,
    trust: TrustStore | None = None,
) -> GateResult:
    """Decide ``event`` of the card's model version to ``stage`` and log the decision.

    A long-running caller (the service) passes its own ``log``, ``signer``,
    ``compiled`` policy set and ``trust`` store; by default they come from ``config``.

    Raises:
        CardValidationError: the card does not match the schema (exit 2).
        PolicyLoadError, ConfigError: policies or configuration are bad (exit 2).
        KeyUnavailableError: no usable signing key (exit 3).
        LogUnavailableError: the log cannot be read or written (exit 3).
    """
    from policyengine.approvals import load_trust
    from policyengine.cards.validate import validate_card
    from policyengine.policy import Context, evaluate

    validate_card(card, source=card_source)
    docs: list[Any] = []
    if compiled is None:
        compiled, docs = compile_configured(config, stage)
    trust = trust if trust is not None else load_trust(config.trust_file)
    ev = event_for(card, event, stage, actor or _default_actor(config))
    if log is None:
        signer = signer or config.signer(err)
        log = open_log(config, signer)
    hist = _history(log, config, trust, ev)
    context = Context(card=card, event=ev, history=hist.history)
    decided = evaluate(compiled, context, now or datetime.now(UTC))
    decision = decided.to_dict()
    recorded = _record(log, config, card, ev, decision, hist)
    return GateResult(
        decision=decision,
        allow=decided.allow,
        seq=recorded.seq,
        checkpoint=recorded.checkpoint,
        receipt=recorded.receipt,
        history=hist,
        rule_locations=rule_locations(docs),
        verifier_key=signer.vkey if signer else "",
    )


def _record(
    log: AuditLog,
    config: Config,
    card: dict[str, Any],
    ev: dict[str, Any],
    decision: dict[str, Any],
    hist: HistoryResult,
) -> Recorded:
    """Record the decision entry (payload: Decision, card, event) through the ledger."""
    payload = {
        "decision": decision,
        "card": card,
        "event": ev,
        "rejected": [r.to_dict() for r in hist.rejected],
    }
    subject = {"name": ev["model"], "version": ev["version"], "digest": ev["digest"]}
    return record(log, config, "decision", subject, ev["actor"], payload)


def _history(log: AuditLog, config: Config, trust: TrustStore, ev: dict[str, Any]) -> HistoryResult:
    """This model version's verified history, read from the log."""
    from policyengine.history import build_history

    with log_errors(config):
        return build_history(
            log,
            model=ev["model"],
            version=ev["version"],
            trust=trust,
            allow_unsigned=config.allow_unsigned_approvals,
        )


def _default_actor(config: Config) -> str:
    """Who acts: CI identity when known, else the local user."""
    import getpass

    env = config.env
    for key in ("POLICYENGINE_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "USER"):
        if env.get(key):
            return str(env[key])
    try:
        return getpass.getuser()
    except Exception:  # no user database entry (containers)
        return "unknown"
