"""Stored-row records shared by the store, the export reader and the verifier.

Owns the plain, immutable records that flow from storage into verification,
:class:`AppendResult` (what an acknowledged append hands back),
:class:`SignedCheckpoint` and :class:`SignedAppend` (what a signing append
hands back), and
:class:`EntryStream`, the iterator stores hand out: it yields
:class:`StoredEntry` records, or plain row tuples to the verifier, which reads
every entry and need not build a record for each. They carry
bytes exactly as stored; nothing here parses, hashes or checks them (that is
:mod:`audit.verify`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple, NewType

__all__ = [
    "AppendResult",
    "CheckpointRecord",
    "EntryRecord",
    "EntryStream",
    "EntryTuple",
    "Head",
    "LeafHashHex",
    "NewRow",
    "Seq",
    "SignedAppend",
    "SignedCheckpoint",
    "StoredCheckpoint",
    "StoredEntry",
]

Seq = NewType("Seq", int)
"""A position in the log: the entry's sequence number and Merkle leaf index.

Distinct from a tree size (a count of entries) so the two are not mixed up:
the entry at ``Seq(n)`` is covered by checkpoints of size ``n + 1`` and up."""

LeafHashHex = NewType("LeafHashHex", str)
"""Hex of a leaf hash, SHA-256(0x00 || canonical envelope) (RFC 9162 s2.1.1)."""

EntryTuple = tuple[int, bytes, bytes, "bytes | None", Any]
"""A stored entry as a plain tuple: (seq, envelope, leaf_hash, payload, redacted).

The fields mean what :class:`StoredEntry`'s do; ``redacted`` is truthy when
the payload was redacted (SQLite hands back 0/1)."""


@dataclass(frozen=True)
class AppendResult:
    """What an acknowledged (durable) append returns."""

    seq: Seq
    """Position in the log and Merkle leaf index."""
    leaf_hash: LeafHashHex
    """Hex SHA-256(0x00 || envelope)."""
    envelope: bytes
    """The canonical envelope bytes exactly as stored."""
    time: str
    """The envelope time, RFC 3339 UTC with microseconds."""


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


def _record(row: EntryTuple) -> StoredEntry:
    seq, envelope, leaf_hash, payload, redacted = row
    return StoredEntry(seq, envelope, leaf_hash, payload, bool(redacted))


class EntryStream(Iterator[StoredEntry]):
    """A lazy stream of stored entries: iterate for records, or take :meth:`rows`.

    Nothing is read until the first ``next()`` or :meth:`rows` call; the
    stream is consumed once, either way.
    """

    __slots__ = ("_it", "_source")

    def __init__(self, source: Callable[[], Iterator[EntryTuple]]) -> None:
        """Wrap ``source``, a function returning an iterator of row tuples in seq order."""
        self._source = source
        self._it: Iterator[StoredEntry] | None = None

    def __iter__(self) -> EntryStream:
        return self

    def __next__(self) -> StoredEntry:
        if self._it is None:
            self._it = map(_record, self._source())
        return next(self._it)

    def rows(self) -> Iterator[EntryTuple]:
        """The same entries as plain :data:`EntryTuple` tuples.

        Raises:
            ValueError: records were already read from this stream.
        """
        if self._it is not None:
            raise ValueError("entry stream already started: expected a fresh stream")
        self._it = iter(())
        return self._source()


class EntryRecord(NamedTuple):
    """An entry row joined with its payload row, as :meth:`Store.iter_rows` yields it."""

    seq: int
    leaf_hash: bytes
    envelope: bytes
    type: str
    subject_name: str
    subject_version: str | None
    subject_digest: str | None
    actor: str
    time: str
    content: bytes | None
    redacted: bool | int | None
    digest: str | None


class CheckpointRecord(NamedTuple):
    """A stored checkpoint row."""

    size: int
    root: bytes
    note: str


@dataclass(frozen=True)
class Head:
    """The log's state read inside a write transaction."""

    origin: str
    """Log origin every envelope names."""
    size: int
    """Entries in the log; the next seq."""
    last_leaf: bytes
    """Leaf hash of entry ``size - 1`` (32 zero bytes when empty)."""
    frontier: list[bytes]
    """Compact range of the tree (RFC 9162 perfect subtrees, largest first)."""


class NewRow(NamedTuple):
    """An entry ready to persist: envelope built and hashed by the log."""

    seq: int
    leaf_hash: bytes
    envelope: bytes
    type: str
    subject: dict[str, str]
    actor: str
    time: str
    payload_digest: str
    payload: bytes


@dataclass(frozen=True)
class SignedCheckpoint:
    """A signed tree head: C2SP checkpoint body in a signed note."""

    size: int
    """Tree size the checkpoint commits to."""
    root: bytes
    """RFC 9162 root hash at that size."""
    note: str
    """The signed note text."""


@dataclass(frozen=True)
class SignedAppend:
    """One entry and the signed checkpoint over it, written in one transaction."""

    appended: AppendResult
    """The entry as stored."""
    checkpoint: SignedCheckpoint
    """The checkpoint signed at the size the entry made the log."""
