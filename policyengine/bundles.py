"""Policy bundles in the log: what a decision was made under, recorded once per digest.

Owns the ``policy_bundle`` entry (DESIGN.md "Policies": the bundle's text is
itself a log entry, once per digest) and the replay inputs a decision entry
carries, so any decision can be re-evaluated from the log alone:

- :func:`bundle_entries` gives the entry for a compiled set unless the log
  already holds one for its digest (an indexed lookup on the subject digest);
  the gate records it with the decision, in the decision's one signed
  transaction, so a failed decision leaves no bundle behind either;
- :func:`compile_bundle` reads the entry back: the policy files (path
  relative to their policies root, the path they were loaded from, text) and
  the param overrides, compiled again;
- :func:`replay_inputs` reads a decision payload's recorded inputs (card,
  event, the history evaluate read, its digest, the evaluation time).

Payload of a ``policy_bundle`` entry (subject ``{name: policy-bundle, digest}``)::

    {"bundle_digest": "sha256:...", "digest_version": 2, "params": {policy: {param: value}},
     "files": [{"path": "fairness/policy.yaml", "source": "<as loaded>", "text": "..."}]}

The bundle digest covers each file's ``path`` and ``text`` as recorded here
(``policy/compile.py``), so recompiling the entry derives it again.
``digest_version`` names the digest's definition; entries recorded before it
existed lack it and are recompiled under version 1 (canonical forms only).

Not handled here: evaluating or comparing (``replay.py``, ``whatif.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from audit.log import AuditLog, Entry, NewEntry
    from policyengine.engine import Engine, Policies
    from policyengine.policy import CompiledPolicySet

__all__ = [
    "BUNDLE_SUBJECT",
    "BUNDLE_TYPE",
    "ReplayInputs",
    "bundle_entries",
    "bundle_payload",
    "compile_bundle",
    "find_bundle",
    "format_now",
    "replay_inputs",
]

BUNDLE_TYPE = "policy_bundle"
"""Entry type of a recorded policy bundle."""
BUNDLE_SUBJECT = "policy-bundle"
"""Subject name of every bundle entry (the digest is the subject digest)."""


def bundle_payload(policies: Policies) -> dict[str, Any]:
    """The ``policy_bundle`` payload of a compiled set: its files, in load order, and params.

    Each file's ``path`` is the one its bundle digest covers (:func:`~.compile.file_path`:
    relative to the configured root it was found under; a file root: its name).
    """
    from policyengine.policy.compile import BUNDLE_DIGEST_VERSION, file_path

    files: list[dict[str, str]] = []
    seen: set[str] = set()
    for doc in policies.documents:
        if doc.file not in seen:
            seen.add(doc.file)
            files.append({"path": file_path(doc), "source": doc.file, "text": doc.text})
    return {
        "bundle_digest": policies.compiled.bundle_digest,
        "digest_version": BUNDLE_DIGEST_VERSION,
        "params": {name: dict(values) for name, values in policies.params.items()},
        "files": files,
    }


def find_bundle(log: AuditLog, digest: str) -> Entry | None:
    """The first ``policy_bundle`` entry for ``digest`` (indexed on the subject digest)."""
    return next(iter(log.query(digest=digest, types=[BUNDLE_TYPE], limit=1)), None)


def bundle_entries(engine: Engine, policies: Policies, actor: str) -> list[NewEntry]:
    """The ``policy_bundle`` entry of ``policies`` to record, or none if the log holds it.

    The caller records it with the decision (``ledger.record(preceding=...)``)
    and then adds the digest to ``engine.bundles_recorded``. Two processes
    deciding at once under a new bundle may both record it; the copies are
    alike and readers take the first.

    Raises:
        LogUnavailableError: the log cannot be read (nothing decided).
    """
    from audit.log import NewEntry
    from policyengine.ledger import log_errors

    digest = policies.compiled.bundle_digest
    if digest in engine.bundles_recorded:
        return []
    with log_errors(engine.config):
        found = find_bundle(engine.log, digest) is not None
    if found:
        engine.bundles_recorded.add(digest)
        return []
    subject = {"name": BUNDLE_SUBJECT, "digest": digest}
    return [NewEntry(BUNDLE_TYPE, subject, actor, bundle_payload(policies))]


def _parse(text: str, label: str, path: str) -> list[Any]:
    """Policy documents of one stored file, labelled ``label``, at ``path`` in its root.

    Raises:
        PolicyLoadError: the stored text does not parse.
    """
    from policyengine.errors import PolicyLoadError
    from policyengine.policy.load import OTHER_KINDS, parse_documents

    found, problems = parse_documents(text, label, path)
    if problems:
        raise PolicyLoadError(problems)
    return [d for d in found
            if not (isinstance(d.data, dict) and d.data.get("kind") in OTHER_KINDS)]


def compile_bundle(payload: Mapping[str, Any],
                   sources: Mapping[str, str] | None = None) -> CompiledPolicySet:
    """Compile a ``policy_bundle`` payload again.

    Args:
        payload: the bundle entry's payload.
        sources: policy name -> the source path a decision recorded for it; the
            file holding that policy is labelled so (one bundle serves decisions
            made from checkouts at different paths). Default: the stored source.

    The digest is derived under the entry's ``digest_version``; an entry
    without one was recorded before the marker existed, when the digest
    covered the policies' canonical forms only (version 1), and is recompiled
    so, so decisions recorded then still replay. A new entry always carries
    the marker, so it never falls back to the weaker definition unnoticed: its
    decision recorded a version-2 digest, which a version-1 recompilation
    does not match (``bundle_mismatch``).

    Raises:
        PolicyLoadError, ConfigError: the stored files or params do not compile,
            or the digest version is unknown.
        KeyError, TypeError: the payload is not a bundle payload.
    """
    from policyengine.policy import compile_policies

    docs: list[Any] = []
    for item in payload["files"]:
        text, path = str(item["text"]), str(item["path"])
        label = str(item.get("source") or path)
        found = _parse(text, label, path)
        wanted = {sources[d.name] for d in found if sources and d.name in sources}
        if len(wanted) == 1 and label not in wanted:
            found = _parse(text, wanted.pop(), path)
        docs.extend(found)
    version = payload.get("digest_version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise TypeError(f"digest_version {version!r} is not an integer")
    return compile_policies(docs, params=payload.get("params") or {}, digest_version=version)


def format_now(now: datetime) -> str:
    """RFC 3339 UTC with microseconds: the evaluation time as a decision records it."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class ReplayInputs:
    """What evaluate read for one recorded decision."""

    decision: dict[str, Any]
    """The recorded Decision."""
    card: dict[str, Any]
    event: dict[str, Any]
    history: dict[str, Any]
    """The history dict evaluate read, as recorded."""
    history_digest: str
    """Its digest as recorded."""
    now: datetime
    """The evaluation time."""


def replay_inputs(payload: Any) -> ReplayInputs | str:
    """The recorded inputs of a decision payload, or why it has none.

    Decisions recorded before payloads carried their history and evaluation
    time give a reason (they are not replayable), never an error.
    """
    if not isinstance(payload, Mapping):
        return "payload is not a decision payload"
    decision = payload.get("decision")
    if not isinstance(decision, Mapping):
        return "payload holds no decision"
    missing = [k for k in ("card", "event", "history", "history_digest", "now")
               if k not in payload]
    if missing:
        return f"recorded without replay inputs (no {', '.join(missing)} in the payload)"
    try:
        now = datetime.fromisoformat(str(payload["now"]).replace("Z", "+00:00"))
    except ValueError:
        return f"recorded evaluation time {payload['now']!r} is not RFC 3339"
    return ReplayInputs(dict(decision), dict(payload["card"]), dict(payload["event"]),
                        dict(payload["history"]), str(payload["history_digest"]), now)
