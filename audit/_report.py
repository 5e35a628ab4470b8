"""The outcome of verifying a log: fault classes and the report.

Owns :class:`FaultClass`, :class:`VerificationReport` and the internal
exception that stops a verification pass at its first fault. The checks
themselves live in :mod:`audit.verify`, which re-exports the public names.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from audit.transition import KeyTransition

__all__ = ["Fault", "FaultClass", "VerificationReport"]


class FaultClass(StrEnum):
    """The class of the first fault verification found."""

    MODIFIED = "modified"
    INSERTED = "inserted"
    DELETED = "deleted"
    REORDERED = "reordered"
    TRUNCATED = "truncated"
    FORGED_CHECKPOINT = "forged_checkpoint"
    FORGED_TRANSITION = "forged_transition"
    INCONSISTENT_CHECKPOINTS = "inconsistent_checkpoints"
    UNKNOWN_KEY = "unknown_key"
    PAYLOAD_MISMATCH = "payload_mismatch"
    REDACTION_ABUSE = "redaction_abuse"
    MISSING_WITNESS = "missing_witness"
    BAD_TIMESTAMP = "bad_timestamp"


@dataclass(frozen=True)
class VerificationReport:
    """Outcome of one verification; true when the log verified.

    Attributes:
        ok: True when no fault was found.
        fault: the class of the first fault, or None.
        first_bad_seq: the first seq at fault, or None.
        message: one line saying what was found, or a summary when ok.
        entries_checked: entries verified before the fault (all when ok).
        checkpoints_checked: checkpoints whose signature and root verified.
        redacted_seqs: seqs whose payload was redacted under a tombstone.
        checkpoint_size: size of the checkpoint at fault, for checkpoint faults.
        unsigned_entries: entries after the last verified checkpoint.
        transitions: ``(seq, transition)`` of each key transition verified, in log order.
    """

    ok: bool
    fault: FaultClass | None
    first_bad_seq: int | None
    message: str
    entries_checked: int
    checkpoints_checked: int
    redacted_seqs: tuple[int, ...] = ()
    checkpoint_size: int | None = None
    unsigned_entries: int = 0
    transitions: tuple[tuple[int, KeyTransition], ...] = ()

    def __bool__(self) -> bool:
        return self.ok


class Fault(Exception):
    """Internal: stops the stream with a fault (turned into a report)."""

    def __init__(self, fault: FaultClass, seq: int | None, message: str,
                 checkpoint_size: int | None = None) -> None:
        super().__init__(message)
        self.fault, self.seq, self.message = fault, seq, message
        self.checkpoint_size = checkpoint_size
