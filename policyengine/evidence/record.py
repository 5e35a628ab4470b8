"""Record parsed evidence in the audit log as an ``evidence`` entry.

Owns the one write of this package. The entry's subject is the model version
the evidence is about (name, version, and the artifact digest when given);
its payload is :meth:`Evidence.to_dict` (kind, format, source file and
digest, and the drift, fairness or metrics it carries). The write goes
through :func:`_append`, the same append -> checkpoint -> receipt sequence
gate and promote use, so a receipt proves the evidence was logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from policyengine.errors import InputError

if TYPE_CHECKING:
    from policyengine.config import Config
    from policyengine.evidence._model import Evidence

__all__ = ["ENTRY_TYPE", "RecordedEvidence", "record_evidence"]

ENTRY_TYPE = "evidence"
"""Audit log entry type of recorded evidence (history.py reads it back)."""


@dataclass(frozen=True)
class RecordedEvidence:
    """Where recorded evidence sits in the log."""

    seq: int
    """Sequence number of the evidence entry."""
    checkpoint_size: int
    """Size of the signed checkpoint covering it."""
    receipt: dict[str, Any]
    """Offline-verifiable receipt of the entry."""


def _append(
    log: Any, config: Config, subject: dict[str, str], actor: str, payload: dict[str, Any],
    now: datetime | None,
) -> tuple[Any, Any, dict[str, Any]]:
    """Append, checkpoint, receipt: the log's one write sequence (see gate.py)."""
    from policyengine.gate import log_errors, receipt_for

    with log_errors(config):
        appended = log.append(ENTRY_TYPE, subject, actor, payload, time=now)
        checkpoint = log.checkpoint()
        receipt = receipt_for(log, appended, checkpoint)
    return appended, checkpoint, receipt


def record_evidence(
    evidence: Evidence,
    *,
    model: str,
    version: str,
    config: Config,
    actor: str,
    digest: str | None = None,
    now: datetime | None = None,
    err: TextIO | None = None,
    log: Any = None,
    signer: Any = None,
) -> RecordedEvidence:
    """Append ``evidence`` for ``model`` ``version`` and return its receipt.

    Raises:
        InputError: no model or version (nothing written).
        KeyUnavailableError, LogUnavailableError: exit 3.
    """
    from policyengine.gate import open_log

    if not model or not version:
        raise InputError(
            "evidence import: --model and --version are required: reports name no model "
            "version, and evidence counts only for the version it is recorded against"
        )
    subject = {"name": model, "version": version, **({"digest": digest} if digest else {})}
    log = log or open_log(config, signer or config.signer(err))
    appended, checkpoint, receipt = _append(log, config, subject, actor, evidence.to_dict(), now)
    return RecordedEvidence(
        seq=appended.seq,
        checkpoint_size=checkpoint.size,
        receipt=receipt,
    )
