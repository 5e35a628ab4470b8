"""What happened to a model: filtered queries and per-model timelines over the audit log.

Owns reading the log the way an auditor asks about it: :func:`query` (entries
matching model, version, digest, type, decision, actor, policy, rule and time
filters) and :func:`timeline` (every entry about one model, or one version, in
seq order, each summarised: the rules a decision failed, who approved in which
role, a waiver's expiry, promotions, alias violations and reverts, redactions
and legal holds). Each row says whether a checkpoint whose signature verifies
with the given keys covers it (:func:`verified_checkpoint`).

Read only: nothing here writes to the log. Rendering (table, CSV, HTML) is the
adapters' job; rows are plain frozen dataclasses with ``to_dict``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "Filters",
    "Row",
    "Timeline",
    "VerifiedCheckpoint",
    "decision_of",
    "decisive_results",
    "parse_when",
    "query",
    "standing",
    "summarise",
    "timeline",
    "verified_checkpoint",
]

_DECIDING = frozenset({"fail", "error"})
"""Rule outcomes that deny when the rule is enforced with severity deny."""


def parse_when(text: str | None, what: str) -> datetime | None:
    """An RFC 3339 time with a zone (``Z`` allowed) from a filter, or None when empty.

    Raises:
        InputError: not a time, or no zone (naive times would be read in the
            server's zone, so they are refused).
    """
    from policyengine.errors import InputError

    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"{what}: expected an RFC 3339 time, got {text!r}") from exc
    if value.tzinfo is None:
        raise InputError(f"{what}: expected a time with a zone (e.g. Z), got {text!r}")
    return value


@dataclass(frozen=True)
class Filters:
    """What :func:`query` selects; every given filter must hold (None = any)."""

    model: str | None = None
    """Subject name."""
    version: str | None = None
    """Subject version."""
    digest: str | None = None
    """Subject artifact digest (``sha256:...``)."""
    types: tuple[str, ...] | None = None
    """Entry types (decision, approval, waiver, promoted, ...)."""
    decision: str | None = None
    """``allow`` or ``deny``: decision entries with that outcome only."""
    actor: str | None = None
    """Who caused the entry."""
    policy: str | None = None
    """Decisions made under that policy name (applied), and waivers naming it."""
    rule: str | None = None
    """Decisions with a result for that rule (``rule`` or ``policy/rule``), and waivers of it."""
    since: datetime | None = None
    """Inclusive lower bound on the entry time (timezone-aware)."""
    until: datetime | None = None
    """Exclusive upper bound on the entry time (timezone-aware)."""
    limit: int | None = None
    """At most this many rows."""
    newest_first: bool = False
    """Stream in descending seq order."""

    def __post_init__(self) -> None:
        from policyengine.errors import InputError

        if self.decision not in (None, "allow", "deny"):
            raise InputError(f"decision: expected allow or deny, got {self.decision!r}")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise InputError(f"{name}: expected a time with a zone (e.g. Z), got {value}")
        if self.limit is not None and self.limit < 1:
            raise InputError(f"limit: expected at least 1, got {self.limit}")


@dataclass(frozen=True)
class Row:
    """One entry as an auditor reads it."""

    seq: int
    """Position in the log."""
    time: str
    """Entry time (RFC 3339, UTC)."""
    type: str
    """Entry type."""
    model: str
    """Subject name."""
    version: str | None
    """Subject version (None for model-wide entries: waivers, holds)."""
    digest: str | None
    """Subject artifact digest."""
    actor: str
    """Who caused the entry."""
    decision: str | None
    """``allow``/``deny`` for decisions, else None."""
    summary: str
    """One line saying what the entry records."""
    details: dict[str, Any] = field(default_factory=dict)
    """The fields the summary is built from (failed rules, approver, role, expiry ...)."""
    redacted: bool = False
    """The payload was redacted (a ``redaction`` tombstone says by whom and why)."""
    covered: bool | None = None
    """A verified checkpoint covers this entry (None when no key was given to check)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


@dataclass(frozen=True)
class VerifiedCheckpoint:
    """The newest checkpoint whose signature verifies and whose root matches the log."""

    size: int
    """Entries it covers (seqs ``0 .. size-1``)."""
    root: str
    """Hex root hash."""
    note: str
    """The signed note."""


@dataclass(frozen=True)
class Timeline:
    """Every entry about one model (or version), in seq order."""

    model: str
    version: str | None
    rows: tuple[Row, ...]
    checkpoint: VerifiedCheckpoint | None
    """The checkpoint the ``covered`` flags refer to (None: none verified)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        cp = None if self.checkpoint is None else asdict(self.checkpoint)
        return {"model": self.model, "version": self.version, "checkpoint": cp,
                "entries": [r.to_dict() for r in self.rows]}


def verified_checkpoint(log: Any, verifiers: Sequence[Any]) -> VerifiedCheckpoint | None:
    """The latest checkpoint if its signature verifies with ``verifiers`` and its root
    equals the stored tree's root at its size; else None (nothing is then "covered").

    This checks one signed tree head, not the chain of every entry (that is
    :class:`audit.verify.Verifier`'s job); it answers "is this entry under a
    signature the auditor's key accepts".
    """
    if not verifiers:
        return None
    from audit.note import open_note, parse_checkpoint

    latest = log.latest_checkpoint()
    if latest is None:
        return None
    try:
        body, _names = open_note(latest.note, verifiers)
        signed = parse_checkpoint(body)
    except Exception:  # a bad or unknown signature verifies nothing
        return None
    if signed.size != latest.size or signed.root != log.root(latest.size):
        return None
    return VerifiedCheckpoint(latest.size, signed.root.hex(), latest.note)


def decision_of(payload: Any) -> dict[str, Any]:
    """The Decision dict inside a ``decision`` entry's payload (empty when redacted)."""
    if isinstance(payload, dict) and isinstance(payload.get("decision"), dict):
        return payload["decision"]
    return {}


def decisive_results(decision: dict[str, Any]) -> list[dict[str, Any]]:
    """The results that denied: enforced, severity deny, failed or errored (evaluate.py)."""
    return [
        r for r in decision.get("results") or []
        if isinstance(r, dict) and r.get("outcome") in _DECIDING
        and r.get("mode") == "enforce" and r.get("severity") == "deny"
    ]


def _rule_ids(result: dict[str, Any]) -> set[str]:
    rule = str(result.get("rule"))
    return {rule, f"{result.get('policy')}/{rule}"}


def _decision_details(payload: Any) -> dict[str, Any]:
    decision = decision_of(payload)
    event = (payload.get("event") if isinstance(payload, dict) else None) or {}
    failed = [
        {"rule": f"{r.get('policy')}/{r.get('rule')}", "outcome": r.get("outcome"),
         "message": r.get("message")}
        for r in decisive_results(decision)
    ]
    waived = [f"{r.get('policy')}/{r.get('rule')}" for r in decision.get("results") or []
              if isinstance(r, dict) and r.get("outcome") == "waived"]
    return {
        "decision": decision.get("decision"), "stage": event.get("stage"),
        "event": event.get("type"), "failed": failed, "waived": waived,
        "bundle_digest": decision.get("bundle_digest"),
        "policies": [f"{p.get('name')}@{p.get('version')}" for p in decision.get("policies") or []
                     if isinstance(p, dict) and p.get("applied")],
    }


def _statement(payload: Any) -> dict[str, Any]:
    st = payload.get("statement") if isinstance(payload, dict) else None
    return st if isinstance(st, dict) else {}


def _details(kind: str, payload: Any) -> dict[str, Any]:
    """The fields of one entry's payload that its summary names."""
    if kind == "decision":
        return _decision_details(payload)
    data = payload if isinstance(payload, dict) else {}
    if kind == "approval":
        st = _statement(payload)
        return {"approver": st.get("approver"), "role": st.get("role"),
                "expires": st.get("expires"), "signed": bool(data.get("signature")),
                "note": data.get("note")}
    if kind == "waiver":
        st = _statement(payload)
        return {k: st.get(k) for k in ("id", "rules", "reason", "ticket", "approver", "expires")}
    if kind == "waiver_revoked":
        return {"waiver_id": _statement(payload).get("waiver_id")}
    if kind in ("redaction", "legal_hold", "legal_hold_release"):
        return {k: data[k] for k in ("seq", "by", "reason", "holds") if k in data}
    keys = ("stage", "kind", "reason", "alias", "action", "data")
    return {k: data[k] for k in keys if data.get(k) not in (None, "", {})}


def summarise(kind: str, details: dict[str, Any], redacted: bool = False) -> str:
    """One line for an entry of type ``kind`` with :func:`_details` ``details``."""
    if redacted:
        return f"{kind} (payload redacted)"
    d = details
    if kind == "decision":
        where = f" {d.get('event') or 'promote'} to {d.get('stage')}" if d.get("stage") else ""
        text = f"{d.get('decision')}{where}"
        if d.get("failed"):
            text += "; failed: " + ", ".join(f["rule"] for f in d["failed"])
        if d.get("waived"):
            text += "; waived: " + ", ".join(d["waived"])
        return text
    texts = {
        "approval": lambda: f"approved by {d.get('approver')} as {d.get('role')}"
        + (f", expires {d['expires']}" if d.get("expires") else "")
        + ("" if d.get("signed") else " (unsigned)"),
        "waiver": lambda: f"waiver {d.get('id')} of {', '.join(d.get('rules') or [])} "
        f"by {d.get('approver')} until {d.get('expires')} (ticket {d.get('ticket')})",
        "waiver_revoked": lambda: f"waiver {d.get('waiver_id')} revoked",
        "promoted": lambda: f"promoted to {d.get('stage')}",
        "redaction": lambda: f"payload of entry {d.get('seq')} redacted by {d.get('by')}: "
        f"{d.get('reason')}",
        "legal_hold": lambda: f"legal hold by {d.get('by')}: {d.get('reason')}",
        "legal_hold_release": lambda: f"legal hold(s) {d.get('holds')} released by "
        f"{d.get('by')}: {d.get('reason')}",
        "violation": lambda: f"violation {d.get('kind')}: {d.get('reason')}",
    }
    if kind in texts:
        return texts[kind]()
    extra = f" to {d['stage']}" if d.get("stage") else ""
    return f"{kind.replace('_', ' ')}{extra}"


def _row(entry: Any, covered_size: int | None) -> Row:
    env = entry.envelope
    subject = env.get("subject") or {}
    kind = str(env.get("type"))
    details = {} if entry.redacted or entry.payload is None else _details(kind, entry.payload)
    return Row(
        seq=entry.seq, time=str(env.get("time")), type=kind, model=str(subject.get("name")),
        version=subject.get("version"), digest=subject.get("digest"), actor=str(env.get("actor")),
        decision=details.get("decision") if kind == "decision" else None,
        summary=summarise(kind, details, entry.redacted), details=details,
        redacted=bool(entry.redacted),
        covered=None if covered_size is None else entry.seq < covered_size,
    )


def _matches(row: Row, f: Filters) -> bool:
    """The filters that read payloads (decision, policy, rule)."""
    if f.decision is not None and row.decision != f.decision:
        return False
    if f.policy is not None:
        names = {p.split("@", 1)[0] for p in row.details.get("policies") or []}
        names |= {r.split("/", 1)[0] for r in row.details.get("rules") or [] if "/" in r}
        if f.policy not in names:
            return False
    if f.rule is not None:
        ids = set(row.details.get("rules") or [])
        ids |= {i for r in row.details.get("_results") or [] for i in _rule_ids(r)}
        ids |= {r.rsplit("/", 1)[-1] for r in list(ids)}
        if f.rule not in ids:
            return False
    return True


def _with_results(row: Row, entry: Any) -> Row:
    """Rows of decisions keep their results' ids for the rule filter (not rendered)."""
    results = decision_of(entry.payload).get("results") or []
    slim = [{"policy": r.get("policy"), "rule": r.get("rule")} for r in results
            if isinstance(r, dict)]
    return Row(**{**asdict(row), "details": {**row.details, "_results": slim}})


def _public(row: Row) -> Row:
    if "_results" not in row.details:
        return row
    details = {k: v for k, v in row.details.items() if k != "_results"}
    return Row(**{**asdict(row), "details": details})


def query(log: Any, filters: Filters, verifiers: Sequence[Any] = ()) -> Iterator[Row]:
    """Stream the entries matching every filter, in seq order.

    Args:
        log: the audit log (``audit.log.AuditLog``).
        filters: what to select.
        verifiers: keys a covering checkpoint must verify with; none leaves
            ``covered`` None.

    Raises:
        InputError: a filter is malformed (raised when ``Filters`` is built).
    """
    cp = verified_checkpoint(log, verifiers)
    size = None if cp is None else cp.size
    types = list(filters.types) if filters.types else None
    if filters.decision is not None:
        types = [t for t in (types or ["decision"]) if t == "decision"]
    reads_payload = filters.decision or filters.policy or filters.rule
    entries = log.query(name=filters.model, version=filters.version, digest=filters.digest,
                        types=types, actor=filters.actor, since=filters.since,
                        until=filters.until, descending=filters.newest_first)
    count = 0
    for entry in entries:
        row = _row(entry, size)
        if reads_payload:
            if row.type == "decision":
                row = _with_results(row, entry)
            if not _matches(row, filters):
                continue
        yield _public(row)
        count += 1
        if filters.limit is not None and count >= filters.limit:
            return


def timeline(
    log: Any, model: str, version: str | None = None, verifiers: Sequence[Any] = ()
) -> Timeline:
    """Every entry about ``model`` in seq order; with ``version``, that version's entries
    and the model-wide ones (waivers, holds on the model) that apply to it.

    Raises:
        InputError: ``model`` is empty.
    """
    from policyengine.errors import InputError

    if not model:
        raise InputError("model: expected a model name, got nothing")
    cp = verified_checkpoint(log, verifiers)
    size = None if cp is None else cp.size
    rows = tuple(_row(e, size) for e in _about(log.query(name=model), version))
    return Timeline(model, version, rows, cp)


def _about(entries: Iterable[Any], version: str | None) -> Iterator[Any]:
    for entry in entries:
        entry_version = (entry.envelope.get("subject") or {}).get("version")
        if version is None or entry_version in (None, version):
            yield entry


def standing(rows: Iterable[Row]) -> dict[str, Any]:
    """Where a version stands after ``rows`` (its timeline): stage and last decision.

    The stage is the last ``promoted`` stage, unless a later ``rolled_back`` or
    ``retired`` entry says otherwise; ``registered`` before any promotion.
    """
    stage: str | None = None
    last: Row | None = None
    for row in rows:
        if row.type == "registered" and stage is None:
            stage = "registered"
        elif row.type == "promoted":
            stage = row.details.get("stage") or stage
        elif row.type in ("rolled_back", "retired"):
            stage = row.type.replace("_", " ")
        elif row.type == "decision" and not row.redacted:
            last = row
    decision = None if last is None else {
        "seq": last.seq, "time": last.time, "decision": last.decision,
        "stage": last.details.get("stage"), "summary": last.summary}
    return {"stage": stage, "last_decision": decision}
