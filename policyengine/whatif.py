"""What-if: which model versions in a stage would a new policy set decide differently?

Owns answering "which production models would fail the new policy": for
every model version currently in a stage (per model, the latest ``promoted``
entry for that stage), take its last allowing decision for that stage and
evaluate its recorded input (card, event, the history evaluate read and the
evaluation time; ``bundles.py``) under the new compiled set. When the
version's latest decision for the stage is a later deny, that one is tried
too, so a deny that would now allow shows. A result that changes verdict is
a flip, with the rules that now block.

Decisions recorded before payloads carried replay inputs are listed as not
evaluated, with the reason; they are never counted as flips. So is a
decision whose recorded history lacks a list the new policies read (its own
policies did not read ``history.decisions``, so it was not built).

Not handled here: loading and compiling the new policies (the caller passes
the compiled set), rendering (``report/whatif.py`` is not needed: the CLI
renders table, json and html).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from policyengine.bundles import replay_inputs
from policyengine.errors import PolicyEngineError
from policyengine.history import GROWING_LISTS, payload_problem

if TYPE_CHECKING:
    from audit.log import AuditLog, Entry
    from policyengine.policy import CompiledPolicySet

__all__ = ["WhatIfReport", "WhatIfRow", "in_stage", "whatif"]


@dataclass(frozen=True)
class WhatIfRow:
    """One recorded decision of a version in the stage, under the new policies."""

    model: str
    version: str
    digest: str
    decision_seq: int
    """The recorded decision tried."""
    promoted_seq: int
    """The promotion that put the version in the stage."""
    recorded: str
    """allow | deny, as recorded."""
    proposed: str | None
    """allow | deny under the new policies; None when not evaluated."""
    failing: tuple[str, ...] = ()
    """``policy/rule: message`` of every rule that blocks under the new policies."""
    note: str | None = None
    """Why it was not evaluated."""

    @property
    def flipped(self) -> bool:
        """True when the new policies decide the other way."""
        return self.proposed is not None and self.proposed != self.recorded

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"model": self.model, "version": self.version, "digest": self.digest,
                "decision_seq": self.decision_seq, "promoted_seq": self.promoted_seq,
                "recorded": self.recorded, "proposed": self.proposed,
                "flipped": self.flipped, "failing": list(self.failing), "note": self.note}


@dataclass(frozen=True)
class WhatIfReport:
    """Every version in a stage, tried under a new policy set."""

    stage: str
    bundle_digest: str
    """Digest of the new policy set."""
    rows: tuple[WhatIfRow, ...] = field(default=())

    def flips(self) -> list[WhatIfRow]:
        """Rows whose verdict would change."""
        return [row for row in self.rows if row.flipped]

    def summary(self) -> dict[str, int]:
        """Counts: versions tried, allow->deny, deny->allow, not evaluated."""
        return {
            "versions": len({(r.model, r.version) for r in self.rows}),
            "allow_to_deny": sum(r.flipped and r.recorded == "allow" for r in self.rows),
            "deny_to_allow": sum(r.flipped and r.recorded == "deny" for r in self.rows),
            "not_evaluated": sum(r.proposed is None for r in self.rows),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``whatif --format json``)."""
        return {"stage": self.stage, "bundle_digest": self.bundle_digest,
                "summary": self.summary(), "rows": [r.to_dict() for r in self.rows]}


def in_stage(log: AuditLog, stage: str) -> list[Entry]:
    """Per model, the latest ``promoted`` entry for ``stage`` (model name order)."""
    latest: dict[str, Entry] = {}
    for entry in log.query(types=["promoted"]):
        payload = entry.payload if isinstance(entry.payload, Mapping) else {}
        if payload.get("stage") == stage:
            latest[str(entry.envelope["subject"].get("name"))] = entry
    return [latest[name] for name in sorted(latest)]


def _object(value: Any, key: str) -> Mapping[str, Any]:
    """``value[key]`` when both are JSON objects, else an empty object."""
    found = value.get(key) if isinstance(value, Mapping) else None
    return found if isinstance(found, Mapping) else {}


def _verdict(entry: Entry) -> str | None:
    verdict = _object(entry.payload, "decision").get("decision")
    return verdict if isinstance(verdict, str) and verdict in ("allow", "deny") else None


def _stage_decisions(log: AuditLog, promoted: Entry, stage: str) -> Iterator[Entry]:
    """The last allow for the stage and, if later, the latest deny (same artifact digest)."""
    subject = promoted.envelope["subject"]
    allow = deny = None
    for entry in log.query(name=subject.get("name"), version=subject.get("version"),
                           types=["decision"]):
        event = _object(entry.payload, "event")
        same_digest = entry.envelope["subject"].get("digest") == subject.get("digest")
        if event.get("stage") != stage or not same_digest:
            continue
        if _verdict(entry) == "allow":
            allow, deny = entry, None
        elif _verdict(entry) == "deny":
            deny = entry
    yield from (e for e in (allow, deny) if e is not None)


def _try(compiled: CompiledPolicySet,
         entry: Entry) -> tuple[str | None, tuple[str, ...], str | None]:
    """(proposed verdict, blocking rules, note) of one recorded decision under ``compiled``."""
    from policyengine.policy import Context, evaluate

    if entry.redacted or entry.payload is None:
        return None, (), "payload redacted"
    problem = payload_problem(entry)
    if problem:
        return None, (), f"decision {problem}"
    inputs = replay_inputs(entry.payload)
    if isinstance(inputs, str):
        return None, (), inputs
    # A list the recorded decision's policies did not read was not built (history.py):
    # absent, so the new policies would see it empty. Not evaluated rather than guessed.
    unread = sorted((set(GROWING_LISTS) & compiled.history_reads) - set(inputs.history))
    if unread:
        return None, (), ("recorded history lacks " + ", ".join(f"history.{k}" for k in unread)
                          + " (the policies it was decided under did not read it)")
    try:
        context = Context(card=inputs.card, event=inputs.event, history=inputs.history)
        decided = evaluate(compiled, context, inputs.now)
    except PolicyEngineError as exc:
        return None, (), f"evaluation failed: {exc}"
    failing = tuple(f"{r.key}: {r.message}".rstrip(": ") for r in decided.results if r.blocks())
    return decided.decision, failing, None


def whatif(log: AuditLog, compiled: CompiledPolicySet, stage: str) -> WhatIfReport:
    """Try every version now in ``stage`` under ``compiled`` (see the module docstring).

    Raises:
        LogUnavailableError, StorageError: the log cannot be read.
    """
    rows: list[WhatIfRow] = []
    for promoted in in_stage(log, stage):
        subject = promoted.envelope["subject"]
        for entry in _stage_decisions(log, promoted, stage):
            proposed, failing, note = _try(compiled, entry)
            rows.append(WhatIfRow(
                model=str(subject.get("name")), version=str(subject.get("version")),
                digest=str(subject.get("digest") or ""), decision_seq=entry.seq,
                promoted_seq=promoted.seq, recorded=str(_verdict(entry)),
                proposed=proposed, failing=failing, note=note))
    return WhatIfReport(stage, compiled.bundle_digest, tuple(rows))
