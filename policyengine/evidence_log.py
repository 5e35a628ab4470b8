"""Record parsed evidence in the audit log as an ``evidence`` entry.

Owns the one write of imported evidence: the entry's subject is the model
version the evidence is about (name, version, and the artifact digest when
given), its payload :meth:`Evidence.to_dict` (kind, format, source file and
digest, and the drift, fairness or metrics it carries). It goes through the
engine's one door to the log (entry, signed checkpoint, receipt), so a
receipt proves the evidence was logged and ``history.evidence`` shows it.
Reading and parsing reports is :mod:`policyengine.evidence`'s job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from policyengine.errors import InputError

if TYPE_CHECKING:
    from policyengine.engine import Engine
    from policyengine.evidence import Evidence
    from policyengine.ledger import Recorded

__all__ = ["ENTRY_TYPE", "record_evidence"]

ENTRY_TYPE = "evidence"
"""Audit log entry type of recorded evidence (history.py reads it back)."""


def record_evidence(
    engine: Engine,
    evidence: Evidence,
    *,
    model: str,
    version: str,
    actor: str,
    digest: str | None = None,
) -> Recorded:
    """Append ``evidence`` for ``model`` ``version``; returns where the log holds it.

    Raises:
        InputError: no model or version (nothing written).
        KeyUnavailableError, LogUnavailableError: exit 3.
    """
    if not model or not version:
        raise InputError(
            "evidence import: --model and --version are required: reports name no model "
            "version, and evidence counts only for the version it is recorded against"
        )
    subject = {"name": model, "version": version, "digest": digest}
    return engine.record(ENTRY_TYPE, subject, actor, evidence.to_dict())
