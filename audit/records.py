"""Stored-row records shared by the store, the export reader and the verifier.

Owns the two plain, immutable records that flow from storage into
verification. They carry bytes exactly as stored; nothing here parses,
hashes or checks them (that is :mod:`audit.verify`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StoredCheckpoint", "StoredEntry"]


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """One stored log entry, as read back from a store or an export bundle.

    Attributes:
        seq: the position the store holds the row at (the envelope's own
            ``seq`` is inside ``envelope`` and is what the leaf hash binds).
        envelope: the canonical envelope bytes, verbatim.
        leaf_hash: the stored leaf hash (32 bytes), SHA-256(0x00 || envelope).
        payload: the canonical payload bytes, or None when redacted.
        redacted: True when the payload was redacted (its content deleted).
    """

    seq: int
    envelope: bytes
    leaf_hash: bytes
    payload: bytes | None
    redacted: bool


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """One stored signed checkpoint: its tree size and the signed note text."""

    size: int
    note: str
