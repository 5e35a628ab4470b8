"""AuditLog: append, checkpoint, prove and read entries over a :class:`Store`.

Owns the append transactions (entries are validated before any transaction
starts, so bad input never touches the log, and their envelopes are built and
hashed inside it, where seq and prev are known: :mod:`audit._rows`), signing
checkpoints, proofs, reads and receipts.

It does not store rows (:mod:`audit.store`), compute tree nodes
(:mod:`audit.tree`), decide what may be redacted (:mod:`audit.retention`) or
verify a whole log (:mod:`audit.verify`). The records it returns are
declared in :mod:`audit.records` and :mod:`audit.entries`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from audit import merkle
from audit._group import GroupCommit
from audit._rows import NewEntry, Prepared, build_rows, format_time, prepare, rfc3339
from audit.entries import Entry, entry_filters, entry_from_row
from audit.errors import InputError, IntegrityError, StorageError
from audit.keys import Signer
from audit.note import Checkpoint, parse_checkpoint, sign_note
from audit.records import AppendResult, LeafHashHex, Seq, SignedAppend, SignedCheckpoint
from audit.retention import AUDIT_TYPES, hold, redact, release
from audit.store import Condition, Head, NewRow, Store, Tx, open_store
from audit.transition import TRANSITION_TYPE, key_in_force, sign_transition

__all__ = [
    "DEFAULT_ORIGIN",
    "MIN_RETENTION_DAYS",
    "AppendResult",
    "AuditLog",
    "Entry",
    "InputError",
    "NewEntry",
    "SignedAppend",
    "SignedCheckpoint",
    "entry_filters",
    "format_time",
]

DEFAULT_ORIGIN = "policyengine.local/audit"

MIN_RETENTION_DAYS = 180
"""Retention floor: payloads younger than this many days are never redacted."""



def _now() -> str:
    return rfc3339(datetime.now(UTC))


class AuditLog:
    """The tamper-evident log: one linear chain of entries with signed checkpoints."""

    def __init__(
        self, store: Store, origin: str, signer: Signer | None = None,
        *, retention_days: int = MIN_RETENTION_DAYS,
    ) -> None:
        """Use :meth:`open`; this wraps an already opened store.

        Raises:
            InputError: ``retention_days`` below the 180-day floor.
        """
        if not isinstance(retention_days, int) or retention_days < MIN_RETENTION_DAYS:
            raise InputError(
                f"retention_days: expected >= {MIN_RETENTION_DAYS}, got {retention_days!r}"
            )
        self.store = store
        self.origin = origin
        self.signer = signer
        self.retention_days = retention_days
        self.publishers: list[Callable[[AuditLog, SignedCheckpoint], None]] = []
        """Called with each newly signed checkpoint after it is committed (e.g.
        :class:`audit.publish.Publisher`: witness cosignatures, timestamps)."""
        # Group commit (audit._group): concurrent appends of this process share
        # one transaction, and signed ones one checkpoint, per batch.
        self.signed_group: GroupCommit[list[Prepared], SignedAppend] = GroupCommit(
            self._write_signed)
        self.plain_group: GroupCommit[list[Prepared], list[AppendResult]] = GroupCommit(
            self._write_plain)

    @classmethod
    def open(
        cls, url: str, *, origin: str | None = None, signer: Signer | None = None,
        retention_days: int = MIN_RETENTION_DAYS, create: bool = True,
    ) -> AuditLog:
        """Open (creating if needed) the log at ``url``.

        Args:
            url: ``sqlite:///path`` or ``postgresql+psycopg://...``.
            origin: the log's name in envelopes and checkpoints; defaults to
                the stored origin, or ``policyengine.local/audit`` for a new log.
            signer: signs checkpoints; needed by :meth:`checkpoint`.
            retention_days: payloads younger than this are not redactable
                (never below 180 days).
            create: create a missing log; False makes a missing log an error.

        Raises:
            LogUnavailableError: the database cannot be opened.
            StorageError: ``origin`` differs from the origin of a non-empty log.
        """
        if not isinstance(retention_days, int) or retention_days < MIN_RETENTION_DAYS:
            raise InputError(
                f"retention_days: expected >= {MIN_RETENTION_DAYS}, got {retention_days!r}"
            )
        store = open_store(url, create=create)
        return cls(store, _settle_origin(store, origin), signer, retention_days=retention_days)

    def close(self) -> None:
        """Release database connections."""
        self.store.close()

    # -- appending -----------------------------------------------------------

    def append(
        self, type: str, subject: dict[str, str], actor: str, payload: Any,
        *, time: datetime | None = None,
    ) -> AppendResult:
        """Append one entry; it is durable when this returns.

        Raises:
            InputError: invalid type, subject, actor or time (nothing written).
            CanonicalizationError: payload is not JSON (nothing written).
            StorageError: the database refused the write.
        """
        return self.append_many([NewEntry(type, subject, actor, payload, time)])[0]

    def append_many(self, entries: Sequence[NewEntry]) -> list[AppendResult]:
        """Append entries in one transaction, in order; all or none are written.

        Raises:
            InputError, CanonicalizationError: any entry is invalid (nothing written).
            StorageError: the database refused the write.
        """
        prepared = [prepare(e) for e in entries]
        if not prepared:
            return []
        return self.plain_group.submit(prepared, len(prepared))

    def _write_plain(self, items: Sequence[list[Prepared]]) -> list[list[AppendResult]]:
        """One transaction for a batch of callers' entries; each gets its own results."""
        results = self._append([p for item in items for p in item])
        out, start = [], 0
        for item in items:
            out.append(results[start : start + len(item)])
            start += len(item)
        return out

    def append_within(
        self, type: str, subject: dict[str, str], actor: str, payload: Any,
        inside: Callable[[Tx, Head], None],
    ) -> AppendResult:
        """Append one of the log's own entries (redaction, legal holds) after ``inside``.

        ``inside(tx, head)`` runs first in the same transaction, holding the
        sequencer; if it raises, nothing is written. Used by :mod:`audit.retention`.

        Raises:
            InputError: ``type`` is not one of the log's own types, or the entry is invalid.
            StorageError: the database refused the write.
        """
        if type not in AUDIT_TYPES:
            raise InputError(f"type: expected one of {sorted(AUDIT_TYPES)}, got {type!r}")
        prepared = prepare(NewEntry(type, subject, actor, payload), internal=True)
        return self._append([prepared], inside)[0]

    def append_signed(
        self, type: str, subject: dict[str, str], actor: str, payload: Any,
        *, time: datetime | None = None,
    ) -> SignedAppend:
        """Append one entry and sign a checkpoint covering it, in one transaction.

        Both are durable when this returns, or neither is written: a key that
        cannot sign, or a stored tree that disagrees with the last checkpoint,
        rolls the entry back. Concurrent calls in this process are grouped
        (:mod:`audit._group`): one transaction and one checkpoint, covering
        every entry of the batch, at most 256 entries; a lone call is a
        batch of one.

        Raises:
            InputError, CanonicalizationError: the entry is invalid (nothing written).
            StorageError: no signer, or the database refused the write (nothing written).
            IntegrityError: the stored tree disagrees with the last checkpoint.
        """
        prepared = prepare(NewEntry(type, subject, actor, payload, time))
        return self._submit_signed([prepared])

    def append_signed_many(self, entries: Sequence[NewEntry]) -> SignedAppend:
        """Append entries in order and sign one checkpoint covering them, in one transaction.

        For entries the last one relies on (a decision's policy bundle): all of
        them and the checkpoint are durable when this returns, or none is
        written. The result describes the last entry; the others directly
        precede it. Grouped like :meth:`append_signed`: the submission is one
        member of its batch, its entries contiguous, and the batch's
        checkpoint covers the last of them.

        Raises:
            InputError, CanonicalizationError: any entry is invalid, or there is
                none (nothing written).
            StorageError: no signer, or the database refused the write (nothing written).
            IntegrityError: the stored tree disagrees with the last checkpoint.
        """
        if not entries:
            raise InputError("entries: expected at least one entry to append")
        return self._submit_signed([prepare(e) for e in entries])

    def _submit_signed(self, prepared: list[Prepared]) -> SignedAppend:
        """Queue one submission (its entries contiguous) for the next signed batch."""
        self._signer()  # no key: refused at once, before queueing
        return self.signed_group.submit(prepared, len(prepared))

    def _write_signed(self, items: Sequence[list[Prepared]]) -> list[SignedAppend]:
        """One transaction for a batch of submissions, and one checkpoint covering them all.

        Each submission's result describes its last entry, with the batch's checkpoint.
        """
        flat = [p for item in items for p in item]
        appended, checkpoint = self._append_signed(lambda _head: flat, [self._signer()])
        out, end = [], 0
        for item in items:
            end += len(item)
            out.append(SignedAppend(appended[end - 1], checkpoint))
        return out

    def rotate_key(self, new: Signer, actor: str) -> SignedAppend:
        """Hand signing over to ``new``: append a ``key_transition`` signed by the key in force.

        The transition (see :mod:`audit.transition`) takes effect at the size
        the entry makes the log; the checkpoint over it is signed by both keys,
        later ones by ``new`` alone. Afterwards this log signs with ``new``.

        Raises:
            StorageError: no signer, or the signer is not the key in force.
            InputError: ``new`` is the key in force already.
        """
        old = self._signer()
        if new.vkey == old.vkey:
            raise InputError("new key: expected a key other than the one in force")

        def transition(head: Head) -> list[Prepared]:
            note = sign_transition(self.origin, head.size + 1, old, new)
            entry = NewEntry(TRANSITION_TYPE, {"name": self.origin}, actor, {"transition": note})
            return [prepare(entry, internal=True)]

        appended, checkpoint = self._append_signed(transition, [new, old])
        self.signer = new
        return SignedAppend(appended[0], checkpoint)

    def _append_signed(self, prepare: Callable[[Head], list[Prepared]],
                       signers: list[Signer]) -> tuple[list[AppendResult], SignedCheckpoint]:
        """Append entries and one checkpoint over them signed by ``signers``; one transaction.

        ``signers[-1]`` must be the key in force (the last transition's new key).
        """
        # The barrier: on PostgreSQL the sequencer is not held across the WAL flush.
        with self.store.locked(barrier=True) as (tx, head):
            _check_in_force(tx, signers[-1])
            self._check_last(tx, head)
            rows = self._build_rows(head, prepare(head))
            new = self.store.insert_entries(tx.cursor, head, rows)
            # The new root from the new compact range: the nodes just written
            # are not visible to the tree reader before this transaction commits.
            root = merkle.CompactRange(new.size, new.frontier).root()
            note = sign_note(Checkpoint(self.origin, new.size, root).body(), signers)
            self.store.insert_checkpoint(tx, new.size, root, note, [s.vkey for s in signers])
        appended = [AppendResult(Seq(r.seq), LeafHashHex(r.leaf_hash.hex()), r.envelope, r.time)
                    for r in rows]
        return appended, self._published(SignedCheckpoint(new.size, root, note))

    def _append(
        self, prepared: list[Prepared], inside: Callable[[Tx, Head], None] | None = None
    ) -> list[AppendResult]:
        if not prepared:
            return []
        if inside is None:
            with self.store.appending() as (cur, head):
                rows = self._build_rows(head, prepared)
                self.store.insert_entries(cur, head, rows)
        else:
            with self.store.locked() as (tx, head):
                inside(tx, head)
                rows = self._build_rows(head, prepared)
                self.store.insert_entries(tx.cursor, head, rows)
        return [
            AppendResult(Seq(r.seq), LeafHashHex(r.leaf_hash.hex()), r.envelope, r.time)
            for r in rows
        ]

    def _build_rows(self, head: Head, prepared: list[Prepared]) -> list[NewRow]:
        return build_rows(self.origin, head, prepared, _now())

    # -- tree and checkpoints --------------------------------------------------

    def size(self) -> int:
        """Return the number of entries."""
        return self.store.size()

    def _bounded(self, size: int | None) -> int:
        current = self.store.size()
        if size is None:
            return current
        if not 0 <= size <= current:
            raise InputError(f"size: expected 0..{current}, got {size}")
        return size

    # Each reads the size and then the nodes: one snapshot, one read transaction.

    def root(self, size: int | None = None) -> bytes:
        """Return the RFC 9162 root of the first ``size`` entries (default all)."""
        with self.store.snapshot():
            return self.store.tree.root(self._bounded(size))

    def inclusion_proof(self, seq: int, size: int | None = None) -> list[bytes]:
        """Return the inclusion proof of ``seq`` in the tree of ``size`` (default all).

        Raises:
            InputError: ``size`` beyond the log.
            InvalidProofError: ``seq`` not below ``size``.
        """
        with self.store.snapshot():
            return self.store.tree.inclusion_proof(seq, self._bounded(size))

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """Return the consistency proof between tree sizes ``old`` and ``new``."""
        with self.store.snapshot():
            return self.store.tree.consistency_proof(old, self._bounded(new))

    def checkpoint(self) -> SignedCheckpoint:
        """Sign the current tree size, or return the checkpoint of that size.

        Checks consistency with the previous checkpoint before signing; never
        signs two roots for one size.

        Raises:
            StorageError: no signer configured.
            IntegrityError: the stored tree disagrees with an earlier checkpoint.
        """
        signer = self._signer()
        with self.store.locked() as (tx, head):
            root, last = self._check_last(tx, head)
            if last is not None and last.size == head.size:
                return SignedCheckpoint(last.size, bytes(last.root), last.note)
            _check_in_force(tx, signer)
            body = Checkpoint(self.origin, head.size, root).body()
            note = sign_note(body, [signer])
            self.store.insert_checkpoint(tx, head.size, root, note, [signer.vkey])
        return self._published(SignedCheckpoint(head.size, root, note))

    def _published(self, cp: SignedCheckpoint) -> SignedCheckpoint:
        """Run the publishers on a committed checkpoint (outside the transaction)."""
        for publish in self.publishers:
            publish(self, cp)
        return cp

    def _signer(self) -> Signer:
        if self.signer is None:
            raise StorageError(
                "cannot sign a checkpoint: no signing key; pass --signing-key or set "
                "POLICYENGINE_SIGNING_KEY"
            )
        return self.signer

    def _check_last(self, tx: Tx, head: Head) -> tuple[bytes, Any]:
        """The root at ``head.size`` and the last checkpoint, checked to be consistent.

        Read in the append's own transaction: on PostgreSQL that saves a pooled
        connection per read while the sequencer is held, and it is the snapshot
        the append extends.
        """
        tree = self.store.tree_in(tx)
        root = tree.root(head.size)
        last = self.store.latest_checkpoint(tx)
        if last is not None:
            signed = parse_checkpoint(last.note[: last.note.rfind("\n\n") + 1])
            if signed.size != last.size or signed.root != bytes(last.root):
                raise IntegrityError(f"stored checkpoint {last.size} disagrees with its own note")
            tree.check_extends(signed.size, signed.root, head.size, root)
        return root, last

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        """Return the checkpoint of the largest size, or None."""
        row = self.store.latest_checkpoint()
        return None if row is None else SignedCheckpoint(row.size, bytes(row.root), row.note)

    # -- reading ---------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside the block (:meth:`query`, :meth:`get`, proofs) see one
        snapshot of the log, in one read transaction of this thread."""
        with self.store.snapshot():
            yield

    def get(self, seq: int) -> Entry:
        """Return entry ``seq``.

        Raises:
            InputError: no such entry.
        """
        for row in self.store.iter_rows([Condition.equals("seq", seq)]):
            return entry_from_row(row)
        raise InputError(f"no entry {seq}: expected 0..{self.size() - 1}")

    def query(
        self, *, name: str | None = None, version: str | None = None,
        digest: str | None = None, types: list[str] | None = None, actor: str | None = None,
        since: datetime | None = None, until: datetime | None = None,
        after_seq: int | None = None, limit: int | None = None, descending: bool = False,
    ) -> Iterator[Entry]:
        """Stream entries matching every given filter, in seq order.

        ``after_seq`` is a cursor: entries after it (before it when descending).
        ``since`` is inclusive, ``until`` exclusive.
        """
        where = entry_filters(name=name, version=version, digest=digest, types=types,
                              actor=actor, since=since, until=until)
        start = 0 if after_seq is None or descending else after_seq + 1
        rows = self.store.iter_rows(where, start=start, descending=descending,
                                    before=after_seq if descending else None)
        for count, row in enumerate(rows):
            if limit is not None and count >= limit:
                return
            yield entry_from_row(row)

    def receipt(self, seq: int) -> dict[str, Any]:
        """Return an offline-verifiable receipt for entry ``seq`` (JSON-able dict).

        Signs a new checkpoint when none covers ``seq`` yet (needs a signer).
        """
        from audit.receipt import build_receipt

        with self.snapshot():  # entry, checkpoint and proof from one state of the log
            entry = self.get(seq)
            row = self.store.first_checkpoint_covering(seq)
            if row is not None:
                proof = self.inclusion_proof(seq, row.size)
                return build_receipt(entry.envelope_bytes, seq, row.size, proof, row.note)
        # None covers it yet: sign one, then prove against it (a snapshot taken
        # before the signing might not hold the nodes of entries it covers).
        cp = self.checkpoint()
        proof = self.inclusion_proof(seq, cp.size)
        return build_receipt(entry.envelope_bytes, seq, cp.size, proof, cp.note)

    def redact(self, seq: int, by: str, reason: str) -> AppendResult:
        """Redact the payload of ``seq`` (see :func:`audit.retention.redact`)."""
        return redact(self, seq, by, reason)

    def hold(self, name: str, version: str | None = None, *, by: str, reason: str) -> AppendResult:
        """Place a legal hold (see :func:`audit.retention.hold`)."""
        return hold(self, name, version, by=by, reason=reason)

    def release(
        self, name: str, version: str | None = None, *, by: str, reason: str
    ) -> AppendResult:
        """Release a legal hold (see :func:`audit.retention.release`)."""
        return release(self, name, version, by=by, reason=reason)


def _settle_origin(store: Store, origin: str | None) -> str:
    head = store.read_head()
    if origin is None or origin == head.origin:
        return head.origin
    if head.size:
        raise StorageError(
            f"log at {store.url} has origin {head.origin!r}, got {origin!r}; "
            "open it with its own origin"
        )
    with store.locked() as (tx, locked):
        if locked.size:
            raise StorageError(f"log at {store.url} has origin {locked.origin!r}, got {origin!r}")
        store.set_origin(tx, origin)
    return origin


def _check_in_force(tx: Tx, signer: Signer) -> None:
    """Only the key in force signs (c2sp key transitions, see :mod:`audit.transition`)."""
    vkey = key_in_force(tx)
    if vkey is not None and vkey != signer.vkey:
        raise StorageError(
            f"signing key {signer.name}+{signer.key_id.hex()} is not in force: the log's key "
            f"was rotated to {vkey.rsplit('+', 1)[0]}; configure the current signing key")
