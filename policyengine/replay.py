"""Replay: re-evaluate recorded decisions from the log alone and compare them whole.

Owns answering "would this decision be the same today?": for a ``decision``
entry, check its payload against the envelope's digest, read the recorded
inputs (card, event, the history evaluate read, the evaluation time; see
``bundles.py``), load the policy text from the ``policy_bundle`` entry of
its bundle digest, check that the bundle recomputes to that digest, compile
it with the recorded params, evaluate, and compare the whole Decision dict.

Outcomes of one decision (:class:`ReplayResult`):

- reproduced: the replayed Decision equals the recorded one field for field;
- fault (``fault`` names it): ``payload_mismatch`` (the decision payload does
  not hash to its envelope), ``history_mismatch`` (the recorded history does
  not hash to its recorded digest), ``bundle_missing``, ``bundle_mismatch``
  (the bundle entry's payload or its recompiled digest differs from what the
  decision recorded), ``bundle_invalid`` (the stored policies do not
  compile), ``evaluation_failed``, ``decision_differs`` (with the differing
  field paths);
- not replayable (``not_replayable`` says why): a redacted payload, or a
  decision recorded before payloads carried replay inputs. Not a fault.

Each bundle is compiled once per run (:class:`Replayer`), so replaying a
whole log costs about one evaluation per decision. Not handled here:
rendering and exit codes (``cli/audit_replay.py``, the pages).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from policyengine.bundles import compile_bundle, find_bundle, replay_inputs
from policyengine.errors import InputError, PolicyEngineError
from policyengine.history import payload_problem

if TYPE_CHECKING:
    from audit.log import AuditLog, Entry
    from policyengine.engine import Engine
    from policyengine.policy import CompiledPolicySet

__all__ = [
    "FAULTS",
    "Difference",
    "ReplayResult",
    "Replayer",
    "by_rule",
    "count_decisions",
    "diff",
    "replay_all",
    "replay_decision",
]

FAULTS = ("payload_mismatch", "history_mismatch", "bundle_missing", "bundle_mismatch",
          "bundle_invalid", "evaluation_failed", "decision_differs")
"""Every fault a replay can report."""

_RESULT_PATH = re.compile(r"^results\[(\d+)\]")
"""A difference inside one rule's result: ``results[3].outcome``."""

_MAX_DIFFERENCES = 50
"""Differences listed per decision; a result shows at most this many."""

Progress = Callable[[int, "int | None"], None]
"""Told (done, total or None) after each decision of a run."""


@dataclass(frozen=True)
class Difference:
    """One field whose recorded and replayed values differ."""

    path: str
    """Field path in the Decision dict, e.g. ``results[3].outcome``."""
    recorded: Any
    replayed: Any

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"path": self.path, "recorded": self.recorded, "replayed": self.replayed}


@dataclass(frozen=True)
class ReplayResult:
    """What replaying one recorded decision showed."""

    seq: int
    """Sequence number of the decision entry."""
    reproduced: bool
    """True when the replayed Decision equals the recorded one."""
    fault: str | None = None
    """One of :data:`FAULTS`, or None."""
    differences: tuple[Difference, ...] = ()
    """Fields that differ (``decision_differs``)."""
    not_replayable: str | None = None
    """Why the decision cannot be replayed (not a fault), or None."""
    detail: str = ""
    """One line on the fault."""
    subject: dict[str, str] = field(default_factory=dict)
    """name, version, digest of the decided model version."""
    verdict: str | None = None
    """The recorded allow or deny."""
    bundle_digest: str | None = None
    """The bundle digest the decision recorded."""

    def __bool__(self) -> bool:
        return self.reproduced

    @property
    def status(self) -> str:
        """reproduced | fault | not_replayable."""
        if self.reproduced:
            return "reproduced"
        return "fault" if self.fault else "not_replayable"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``audit replay --format json``)."""
        return {"seq": self.seq, "status": self.status, "reproduced": self.reproduced,
                "fault": self.fault, "detail": self.detail,
                "not_replayable": self.not_replayable, "subject": dict(self.subject),
                "verdict": self.verdict, "bundle_digest": self.bundle_digest,
                "differences": [d.to_dict() for d in self.differences]}


class _Fault(Exception):
    """A replay fault found while preparing the replay (code and one line)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


def diff(recorded: Any, replayed: Any, path: str = "") -> Iterator[Difference]:
    """Every leaf where two JSON values differ, with its field path.

    Numbers compare as RFC 8785 stores them: a recorded payload reads back
    ``3650.0`` as ``3650``, the same JSON number.
    """
    if isinstance(recorded, Mapping) and isinstance(replayed, Mapping):
        for key in sorted(recorded.keys() | replayed.keys(), key=str):
            sub = f"{path}.{key}" if path else str(key)
            yield from diff(recorded.get(key), replayed.get(key), sub)
    elif (isinstance(recorded, list) and isinstance(replayed, list)
          and len(recorded) == len(replayed)):
        for index, (a, b) in enumerate(zip(recorded, replayed, strict=True)):
            yield from diff(a, b, f"{path}[{index}]")
    elif not _same_leaf(recorded, replayed):
        yield Difference(path or "$", recorded, replayed)


def _equal(a: Any, b: Any) -> bool:
    """True when :func:`diff` finds no difference: one pass, no paths built."""
    kind = type(a)
    if kind is dict and type(b) is dict and a.keys() == b.keys():
        return all(_equal(value, b[key]) for key, value in a.items())
    if kind is list and type(b) is list and len(a) == len(b):
        return all(map(_equal, a, b))
    if kind in _LEAVES and type(b) in _LEAVES:
        return _same_leaf(a, b)
    return next(diff(a, b), None) is None  # anything else: exactly as diff sees it


_LEAVES = (str, int, float, bool, type(None))


def by_rule(differences: Iterable[Difference],
            decision: Mapping[str, Any]) -> list[tuple[str, list[Difference]]]:
    """Differences grouped by the recorded rule they fall in, in the order found.

    A difference at ``results[i]...`` belongs to the recorded decision's i-th
    result, labelled ``policy/rule``; any other field (the verdict, reasons,
    digests) is grouped under ``decision``.
    """
    results = decision.get("results")
    rows = results if isinstance(results, list) else []
    groups: dict[str, list[Difference]] = {}
    for item in differences:
        found = _RESULT_PATH.match(item.path)
        index = int(found.group(1)) if found else None
        row = rows[index] if index is not None and index < len(rows) else None
        if isinstance(row, Mapping):
            label = f"{row.get('policy', '?')}/{row.get('rule', '?')}"
        else:
            label = "decision" if index is None else f"results[{index}]"
        groups.setdefault(label, []).append(item)
    return list(groups.items())


def _same_leaf(a: Any, b: Any) -> bool:
    """Equal as the log stores them (RFC 8785: 3650.0 and 3650 are one number; true is not 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


class Replayer:
    """Replays decisions of one log, finding and compiling each bundle once."""

    def __init__(self, log: AuditLog) -> None:
        self.log = log
        self._bundles: dict[str, Entry | None] = {}
        self._compiled: dict[tuple[str, tuple[tuple[str, str], ...]],
                             CompiledPolicySet | _Fault] = {}

    def replay(self, entry: Entry) -> ReplayResult:
        """Replay one ``decision`` entry (see the module docstring for outcomes)."""
        payload: Mapping[str, Any] = entry.payload if isinstance(entry.payload, Mapping) else {}
        found = payload.get("decision")
        decision: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        verdict, digest = decision.get("decision"), decision.get("bundle_digest")
        # What every outcome says about the entry; each return fills in the outcome.
        base = ReplayResult(
            seq=entry.seq,
            reproduced=False,
            subject=dict(entry.envelope.get("subject") or {}),
            verdict=verdict if isinstance(verdict, str) else None,
            bundle_digest=digest if isinstance(digest, str) else None,
        )
        if entry.redacted or entry.payload is None:
            return replace(base, not_replayable="payload redacted")
        try:
            problem = payload_problem(entry)
            if problem:
                raise _Fault("payload_mismatch", f"decision {problem}")
            inputs = replay_inputs(payload)
            if isinstance(inputs, str):
                return replace(base, not_replayable=inputs)
            differences = self._compare(inputs)
        except _Fault as fault:
            return replace(base, fault=fault.code, detail=fault.detail)
        if differences:
            shown = tuple(differences[:_MAX_DIFFERENCES])
            paths = ", ".join(d.path for d in shown[:5])
            more = f" (+{len(differences) - 5} more)" if len(differences) > 5 else ""
            return replace(base, fault="decision_differs", differences=shown,
                           detail=f"replayed decision differs at {paths}{more}")
        return replace(base, reproduced=True)

    def _compare(self, inputs: Any) -> list[Difference]:
        from policyengine.policy import Context, evaluate
        from policyengine.policy.compile import digest_of

        try:
            history_digest = digest_of(inputs.history)
        except ValueError as exc:
            raise _Fault("history_mismatch", f"recorded history cannot be hashed: {exc}") from exc
        if history_digest != inputs.history_digest:
            raise _Fault("history_mismatch", f"recorded history hashes to {history_digest[:19]}, "
                                             f"the decision recorded {inputs.history_digest[:19]}")
        compiled = self._compiled_for(inputs.decision)
        try:
            context = Context(card=inputs.card, event=inputs.event, history=inputs.history)
            replayed = evaluate(compiled, context, inputs.now).to_dict()
        except PolicyEngineError as exc:
            raise _Fault("evaluation_failed", f"evaluation failed: {exc}") from exc
        if _equal(inputs.decision, replayed):  # the common case, without walking twice
            return []
        return list(diff(inputs.decision, replayed))

    def _compiled_for(self, decision: Mapping[str, Any]) -> CompiledPolicySet:
        digest = str(decision.get("bundle_digest") or "")
        refs = decision.get("policies") or []
        sources = tuple(sorted({(str(p.get("name")), str(p.get("source"))) for p in refs
                                if isinstance(p, Mapping)}))
        key = (digest, sources)
        if key not in self._compiled:
            try:
                self._compiled[key] = self._compile(digest, dict(sources))
            except _Fault as fault:
                self._compiled[key] = fault
        found = self._compiled[key]
        if isinstance(found, _Fault):
            raise found
        return found

    def _compile(self, digest: str, sources: dict[str, str]) -> CompiledPolicySet:
        if digest not in self._bundles:
            self._bundles[digest] = find_bundle(self.log, digest)
        entry = self._bundles[digest]
        if entry is None:
            raise _Fault("bundle_missing", f"no policy_bundle entry for {digest[:19]}")
        where = f"policy_bundle entry {entry.seq}"
        problem = payload_problem(entry)
        if problem:
            raise _Fault("bundle_mismatch", f"{where}: {problem}")
        if not isinstance(entry.payload, Mapping):
            raise _Fault("bundle_invalid", f"{where} holds no payload object")
        try:
            compiled = compile_bundle(entry.payload, sources)
        except (PolicyEngineError, KeyError, TypeError, AttributeError) as exc:
            line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise _Fault("bundle_invalid", f"{where} does not compile: {line}") from exc
        if compiled.bundle_digest != digest:
            raise _Fault("bundle_mismatch", f"{where} recomputes to "
                                            f"{compiled.bundle_digest[:19]}, the decision "
                                            f"recorded {digest[:19]}")
        return compiled


def _log_of(engine_or_log: Engine | AuditLog) -> AuditLog:
    """The log of an Engine, or the log itself."""
    from policyengine.engine import Engine

    return engine_or_log.log if isinstance(engine_or_log, Engine) else engine_or_log


def replay_decision(engine_or_log: Engine | AuditLog, seq: int) -> ReplayResult:
    """Replay the decision at ``seq`` from the log alone.

    Raises:
        InputError: the entry at ``seq`` is not a decision (exit 2).
        audit InputError: no entry ``seq`` (exit 2).
        LogUnavailableError, StorageError: the log cannot be read (exit 3).
    """
    log = _log_of(engine_or_log)
    entry = log.get(seq)
    kind = entry.envelope.get("type")
    if kind != "decision":
        raise InputError(f"entry {seq} is a {kind} entry, not a decision; "
                         "pick a decision's seq (`policyengine audit query --type decision`)")
    return Replayer(log).replay(entry)


def count_decisions(log: AuditLog, *, model: str | None = None,
                    version: str | None = None) -> int | None:
    """How many decision entries a run will replay (None when the store cannot say)."""
    try:
        from audit.log import entry_filters

        return log.store.count(entry_filters(name=model, version=version, types=["decision"]))
    except Exception:  # only the progress bar's total depends on it
        return None


def replay_all(log: AuditLog, progress: Progress | None = None, *,
               model: str | None = None, version: str | None = None) -> Iterator[ReplayResult]:
    """Replay every decision (of ``model`` / ``version`` when given), streaming, in seq order.

    Args:
        log: the audit log.
        progress: told ``(done, total)`` after each decision.
        model, version: only this model (version).
    """
    total = count_decisions(log, model=model, version=version) if progress else None
    entries: Iterable[Entry] = log.query(name=model, version=version, types=["decision"])
    replayer = Replayer(log)
    for done, entry in enumerate(entries, 1):
        yield replayer.replay(entry)
        if progress is not None:
            progress(done, total)
