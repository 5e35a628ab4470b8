"""Build the evaluation ``history`` of one model version from the audit log.

Owns turning log entries into the ``Context.history`` dict the engine reads
(see the shared contract): ``approvals`` (verified against the trust file),
``waivers`` (verified, minus those revoked by a verified revocation),
``decisions``, ``promotions``, ``events`` and ``evidence`` (reports recorded
with ``policyengine evidence import``: drift, fairness, metrics; each item
the entry's payload plus its ``time`` and ``seq``; newest first; absent when
there is none). An approval withdrawn by a
verified ``approval_revoked`` entry (signed by its approver or by a holder of
an admin role) never counts again: it moves to the rejected approvals with
the reason "revoked by X at T: reason". Approvals of another artifact
digest, expired or stale ones stay in ``approvals`` (they are genuine): the
approvals pack decides whether they count and says why. The payload of every
approval, waiver and revocation is checked against the digest in its envelope,
and its statement against the approver's key and role; an entry that fails is
left out and reported in ``rejected`` with the reason, and the history carries
the rejected approvals (``rejected_approvals``) so the approvals rule and the
reports can say why an approval did not count. Decision payloads (which hold
whole cards) are not re-hashed here: they only inform policies, and
``promote`` re-hashes the one decision it relies on.

Bounded work: decisions (and promotions, events) pile up for as long as a
version is decided; approvals, waivers and evidence do not. The gate builds
only the lists its policies can read (``CompiledPolicySet.history_reads``, a
conservative scan of the rules' CEL), each entry type through its own indexed
query, so a version decided 100,000 times costs what one decided ten times
costs when no rule reads ``history.decisions``. The lists left out are absent
from the history, so the history a decision records (for replay) is what
its policies could read, and a what-if can tell "not read" from "empty".

Not handled here: signing (``approvals.py``), evaluating (``policy/``),
appending (``gate.py``).
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from policyengine.approvals import (
    APPROVAL_KIND,
    APPROVAL_REVOCATION_KIND,
    REVOCATION_KIND,
    WAIVER_KIND,
    TrustStore,
    verify_statement,
)

__all__ = [
    "EVENT_TYPES",
    "GROWING_LISTS",
    "HistoryResult",
    "Rejection",
    "build_history",
    "history_from_entries",
    "payload_problem",
]

EVENT_TYPES: tuple[str, ...] = (
    "registered",
    "rolled_back",
    "retired",
    "drift_detected",
    "incident",
    "violation",
    "alias_reverted",
)
_SIGNED = ("approval", "waiver", "waiver_revoked", "approval_revoked")
_MODEL_TYPES = ("waiver", "waiver_revoked")
_ALWAYS_TYPES = ("approval", "approval_revoked", "evidence")
"""This version's entry types read for every decision (few per version)."""
GROWING_LISTS: Mapping[str, tuple[str, ...]] = {
    "decisions": ("decision",),
    "promotions": ("promoted",),
    "events": EVENT_TYPES,
}
"""History lists that grow for as long as a version is decided, and their entry types."""


class _Entry(Protocol):
    """What history reads of an ``audit.log.Entry``."""

    @property
    def seq(self) -> int: ...
    @property
    def envelope(self) -> dict[str, Any]: ...
    @property
    def payload(self) -> Any: ...
    @property
    def redacted(self) -> bool: ...


class _Log(Protocol):
    """What history reads of an ``audit.log.AuditLog``."""

    def query(
        self,
        *,
        name: str | None = None,
        version: str | None = None,
        types: list[str] | None = None,
    ) -> Iterable[_Entry]: ...


@dataclass(frozen=True)
class Rejection:
    """One log entry left out of the history, and why."""

    seq: int
    """Sequence number of the entry."""
    type: str
    """Entry type (approval, waiver, ...)."""
    actor: str
    """Who the entry says acted."""
    reason: str
    """Why it does not count."""
    role: str | None = None
    """The role an approval claimed."""

    def __str__(self) -> str:
        role = f" ({self.role})" if self.role else ""
        return f"{self.type} by {self.actor}{role} at seq {self.seq}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for ``history.rejected_approvals``."""
        return {
            "seq": self.seq,
            "type": self.type,
            "approver": self.actor,
            "role": self.role,
            "reason": self.reason,
        }


@dataclass
class HistoryResult:
    """The history dict and the entries that were left out."""

    history: dict[str, Any]
    """Context.history for the engine."""
    rejected: list[Rejection] = field(default_factory=list)
    """Entries that did not verify or do not apply, with reasons."""


def build_history(
    log: _Log,
    *,
    model: str,
    version: str,
    trust: TrustStore,
    allow_unsigned: bool = False,
    reads: Collection[str] | None = None,
) -> HistoryResult:
    """Read this model's entries from the log and build the verified history.

    Args:
        log: an ``audit.log.AuditLog`` (anything with ``query``).
        model, version: the model version being decided.
        trust: approvers and their keys.
        allow_unsigned: let unsigned approvals and waivers count (marked unsigned).
        reads: the history fields the policies can read
            (``CompiledPolicySet.history_reads``); ``decisions``, ``promotions``
            and ``events`` not among them are left out (absent, not empty), the
            rest is always built. None: every field.
    """
    kinds = [*_ALWAYS_TYPES]
    for key, types in GROWING_LISTS.items():
        if reads is None or key in reads:
            kinds.extend(types)
    # One query per entry type, each a seek on the (name, [version,] type, seq)
    # index (audit._tables): the rows come back in seq order, and entries of
    # types not asked for (above all the earlier decisions of the version) are
    # never touched. Waivers and their revocations may cover any version, the
    # rest is this version's own. Merged in seq order, they are exactly the
    # entries the builder keeps from a full read of the model's entries.
    streams = [log.query(name=model, types=[kind]) for kind in _MODEL_TYPES]
    streams += [log.query(name=model, version=version, types=[kind]) for kind in kinds]
    entries = heapq.merge(*streams, key=lambda entry: entry.seq)
    result = history_from_entries(
        entries, model=model, version=version, trust=trust, allow_unsigned=allow_unsigned
    )
    if reads is not None:
        for key in GROWING_LISTS.keys() - set(reads):  # not read: absent, not claimed empty
            del result.history[key]
    return result


def history_from_entries(
    entries: Iterable[_Entry],
    *,
    model: str,
    version: str,
    trust: TrustStore,
    allow_unsigned: bool = False,
) -> HistoryResult:
    """Build the history from already-fetched entries (seq order)."""
    builder = _Builder(model, version, trust, allow_unsigned)
    for entry in entries:
        builder.add(entry)
    return builder.result()


def payload_problem(entry: _Entry) -> str | None:
    """The payload must hash to the envelope's payload_digest (contract: RFC 8785 bytes)."""
    if entry.redacted or entry.payload is None:
        return "payload redacted"
    from audit.canonical import dumps

    want = str(entry.envelope.get("payload_digest", ""))
    # The stored bytes, when the reader kept them, are what the digest covers and
    # what ``payload`` was parsed from: hashing them skips re-encoding.
    stored = getattr(entry, "payload_bytes", None)
    got = "sha256:" + hashlib.sha256(stored if stored is not None
                                     else dumps(entry.payload)).hexdigest()
    return None if got == want else f"payload digest mismatch: expected {want[:19]}, got {got[:19]}"


class _Builder:
    """Accumulates history items while walking entries in seq order."""

    def __init__(self, model: str, version: str, trust: TrustStore, allow_unsigned: bool) -> None:
        self.model, self.version = model, version
        self.trust, self.allow_unsigned = trust, allow_unsigned
        self.approvals: list[dict[str, Any]] = []
        self.approval_seqs: dict[int, int] = {}
        """seq of a counted approval entry -> its index in ``approvals``."""
        self.withdrawn: dict[int, Rejection] = {}
        """index in ``approvals`` -> the rejection a verified revocation turned it into."""
        self.waivers: dict[str, dict[str, Any]] = {}
        self.revoked: set[str] = set()
        self.decisions: list[dict[str, Any]] = []
        self.promotions: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.evidence: list[dict[str, Any]] = []
        self.rejected: list[Rejection] = []

    def reject(self, entry: _Entry, reason: str, role: str | None = None) -> None:
        self.rejected.append(
            Rejection(
                entry.seq,
                str(entry.envelope.get("type")),
                str(entry.envelope.get("actor")),
                reason,
                role,
            )
        )

    def add(self, entry: _Entry) -> None:
        envelope = entry.envelope
        kind = envelope.get("type")
        subject = envelope.get("subject") or {}
        if subject.get("name") != self.model:
            return
        if kind not in ("waiver", "waiver_revoked") and subject.get("version") != self.version:
            return
        # Statements grant something and evidence is judged: re-hash them (evidence
        # payloads are small). Decision payloads (with whole cards) only inform here;
        # promote re-hashes the one decision it relies on.
        problem = payload_problem(entry) if kind in (*_SIGNED, "evidence") else None
        if problem is None and (entry.redacted or entry.payload is None):
            problem = "payload redacted"
        if problem:
            if kind in (*_SIGNED, "decision", "promoted", "evidence"):
                self.reject(entry, problem)
            return
        handler = getattr(self, f"_add_{kind}", None)
        if handler is not None and kind in _SIGNED:
            try:
                handler(entry, subject)
            except Exception as exc:  # fail closed: a statement that cannot be read never counts
                self.reject(entry, f"malformed statement: {type(exc).__name__}: {exc}"[:300])
        elif handler is not None:
            handler(entry, subject)
        elif kind in EVENT_TYPES:
            self.events.append({"type": kind, "time": envelope.get("time"), "data": entry.payload})

    def _add_approval(self, entry: _Entry, subject: Mapping[str, Any]) -> None:
        payload = entry.payload if isinstance(entry.payload, dict) else {}
        st = payload.get("statement") or {}
        role = st.get("role")
        if st.get("kind") != APPROVAL_KIND:
            return self.reject(entry, "payload is not an approval statement", role)
        bound = (st.get("model"), st.get("version"), st.get("digest"))
        if bound != (subject.get("name"), subject.get("version"), subject.get("digest")):
            return self.reject(entry, "signed statement does not match the entry's subject", role)
        check = verify_statement(
            st,
            payload.get("signature"),
            self.trust,
            roles=frozenset([str(role)]),
            allow_unsigned=self.allow_unsigned,
        )
        if not check:
            return self.reject(entry, str(check.reason), role)
        self.approval_seqs[entry.seq] = len(self.approvals)
        self.approvals.append(
            {
                "approver": st.get("approver"),
                "role": role,
                "model": st.get("model"),
                "version": st.get("version"),
                "digest": st.get("digest"),
                "time": st.get("time"),
                "expires": st.get("expires"),
                "signed": check.signed,
                "key_id": check.key_id,
                "note": payload.get("note"),
            }
        )
        return None

    def _verified(self, entry: _Entry, subject: Mapping[str, Any], kind: str, what: str) -> Any:
        """The statement of a waiver or revocation entry and its check, or None if rejected."""
        payload = entry.payload if isinstance(entry.payload, dict) else {}
        st = payload.get("statement") or {}
        if st.get("kind") != kind or st.get("model") != subject.get("name"):
            self.reject(entry, f"payload is not a {what} for this model")
            return None
        check = verify_statement(
            st,
            payload.get("signature"),
            self.trust,
            roles=self.trust.waiver_roles or None,
            allow_unsigned=self.allow_unsigned,
        )
        if not check:
            self.reject(entry, str(check.reason))
            return None
        return st, check

    def _add_waiver(self, entry: _Entry, subject: Mapping[str, Any]) -> None:
        found = self._verified(entry, subject, WAIVER_KIND, "waiver statement")
        if found:
            st, check = found
            keys = (
                "id",
                "rules",
                "model",
                "version",
                "versions",
                "reason",
                "ticket",
                "approver",
                "time",
                "expires",
            )
            self.waivers[str(st.get("id"))] = {k: st.get(k) for k in keys} | {
                "signed": check.signed
            }

    def _add_waiver_revoked(self, entry: _Entry, subject: Mapping[str, Any]) -> None:
        found = self._verified(entry, subject, REVOCATION_KIND, "waiver revocation")
        if found:
            self.revoked.add(str(found[0].get("waiver_id")))

    def _add_approval_revoked(self, entry: _Entry, subject: Mapping[str, Any]) -> None:
        """A revocation withdraws an approval for good, if its approver or an admin signed it."""
        payload = entry.payload if isinstance(entry.payload, dict) else {}
        st = payload.get("statement") or {}
        if st.get("kind") != APPROVAL_REVOCATION_KIND or (st.get("model"), st.get("version")) != (
            subject.get("name"),
            subject.get("version"),
        ):
            return self.reject(entry, "payload is not an approval revocation for this version")
        target = st.get("approval_seq")
        index = self.approval_seqs.get(target) if type(target) is int else None
        if index is None or not isinstance(target, int):
            return self.reject(entry, f"names seq {target!r}, which is no counted approval here")
        check = verify_statement(
            st, payload.get("signature"), self.trust, allow_unsigned=self.allow_unsigned
        )
        if not check:
            return self.reject(entry, str(check.reason))
        approval, by = self.approvals[index], str(st.get("approver"))
        if by != approval.get("approver") and not self.trust.is_admin(by):
            return self.reject(
                entry,
                f"{by!r} may not revoke an approval by {approval.get('approver')!r}: only its "
                "approver or a holder of an admin role in the trust file may",
            )
        reason = f"revoked by {by} at {st.get('time')}: {st.get('reason')}"
        self.withdrawn.setdefault(
            index, Rejection(target, "approval", str(approval.get("approver")), reason,
                             approval.get("role"))
        )
        return None

    def _add_decision(self, entry: _Entry, subject: Mapping[str, Any]) -> None:
        payload = entry.payload if isinstance(entry.payload, dict) else {}
        decision = payload.get("decision") or {}
        event = payload.get("event") or decision.get("event") or {}
        allow = decision.get("allow")
        verdict = decision.get("decision") or ("allow" if allow else "deny")
        self.decisions.append(
            {
                "id": decision.get("id"),
                "decision": verdict,
                "stage": event.get("stage"),
                "digest": subject.get("digest"),
                "bundle_digest": decision.get("bundle_digest"),
                "time": entry.envelope.get("time"),
                "seq": entry.seq,
            }
        )

    def _add_promoted(self, entry: _Entry, subject: Mapping[str, Any]) -> None:
        payload = entry.payload if isinstance(entry.payload, dict) else {}
        self.promotions.append(
            {
                "stage": payload.get("stage"),
                "digest": subject.get("digest"),
                "time": entry.envelope.get("time"),
                "seq": entry.seq,
            }
        )

    def _add_evidence(self, entry: _Entry, subject: Mapping[str, Any]) -> None:
        """Recorded evidence (collected oldest first; the history lists it newest first)."""
        if isinstance(entry.payload, dict):
            self.evidence.append(
                {**entry.payload, "time": entry.envelope.get("time"), "seq": entry.seq}
            )

    def result(self) -> HistoryResult:
        waivers = [w for wid, w in self.waivers.items() if wid not in self.revoked]
        approvals = [a for i, a in enumerate(self.approvals) if i not in self.withdrawn]
        rejected = [*self.rejected, *self.withdrawn.values()]
        history = {
            "approvals": approvals,
            "waivers": waivers,
            "decisions": self.decisions,
            "promotions": self.promotions,
            "events": self.events,
            "rejected_approvals": [r.to_dict() for r in rejected if r.type == "approval"],
        }
        if self.evidence:
            # Only when there is some: a history without evidence keeps the shape (and the
            # input digest) it had before evidence existed, so earlier decisions replay.
            # Newest first: `history.evidence.filter(e, e.kind == "drift")[0]` is the latest.
            history["evidence"] = self.evidence[::-1]
        return HistoryResult(history=history, rejected=rejected)
