"""Streaming verification of a whole log: entries, chain, tree, checkpoints, payloads.

Owns :class:`Verifier`, which reads entries and checkpoints once, in order,
from a store or an export bundle, and names the first fault it finds. Memory
does not grow with the log: it keeps a compact range (RFC 9162 §2.1.1, one
hash per set bit of the size), the last two leaf hashes, the next
checkpoint, one batch of rows, and the redacted entries still waiting for
their tombstone.

For each entry at position ``p`` it checks, in this order: the envelope
parses (a strict pattern of the canonical form, else JSON plus a canonical
re-encoding); its leaf hash SHA-256(0x00 || envelope) (RFC 9162 §2.1.1)
equals the stored one; its ``seq`` equals ``p``; its ``prev`` equals the
previous leaf hash; its ``log`` is the origin; its payload hashes to
``payload_digest`` (redacted payloads are reported, not failed, when a
``redaction`` tombstone names them with the same digest). Batches of
ordinary entries are checked whole (:mod:`audit._batch`, the same checks in
whole-batch passes); any other batch takes these checks one entry at a time,
so the first fault is always named by them. Each checkpoint is
checked when the stream reaches its size: signature (c2sp.org/signed-note),
origin, and root against the streamed tree hash; checkpoints verified this
way are consistent with each other by construction (they are roots of
prefixes of one leaf sequence). A trusted checkpoint from the auditor must
match too, and one larger than the log means truncation.

How the fault class is told apart, from the envelope ``seq`` (bound by the
leaf hash) and the ``prev`` links (each entry commits to its predecessor):

- modified: an envelope that does not hash to its stored leaf hash or does
  not parse; or a broken ``prev`` link with ``seq`` in place: the entry
  before the link (``p - 1``) was rewritten and rehashed, unless a verified
  checkpoint already covers it or the next entry does not link to ``p``, in
  which case ``p`` itself was rewritten. Also a validly signed checkpoint
  whose root differs from the log's when no later checkpoint matches the
  log: the entries after the last matching checkpoint were rewritten with
  their chain, and ``first_bad_seq`` (the first seq after that checkpoint)
  is a lower bound.
- inserted: ``seq`` below ``p`` (a seq seen again), or ``seq`` above ``p``
  where the next entry carries ``p`` and links to ``p - 1`` and the stray
  seq is a duplicate or beyond the log; or an entry whose next entry repeats
  its seq and links past it.
- deleted: ``seq`` above ``p`` and seq ``p`` never appears later.
- reordered: ``seq`` above ``p`` and seq ``p`` appears later (a swap of
  neighbours is recognised at once from the links).
- truncated: a validly signed checkpoint, or the trusted checkpoint, covers
  more entries than the log holds.
- forged_checkpoint: a checkpoint that is malformed, carries a bad signature
  by a known key, names another origin, or signs a size other than stored.
- unknown_key: a checkpoint signed only by keys the auditor did not supply,
  or, once the log has key transitions (:mod:`audit.transition`), by a key
  other than the one in force at its size; or checkpoints signed by keys of
  the log's chain that no key the auditor gave vouches for (the chain never
  reaches a trusted key).
- forged_transition: a ``key_transition`` entry that is malformed, not
  signed by the key in force (or by its new key), names another origin, or
  takes effect at a size other than its own seq + 1.
- inconsistent_checkpoints: a validly signed checkpoint whose root differs
  from the log's while the next checkpoint matches the log (so the two
  signed trees cannot be consistent), two different roots signed for one
  size, or a trusted checkpoint whose root differs (fork or rollback).
- payload_mismatch: a present payload whose SHA-256 differs from the
  envelope's digest, or a payload missing without being marked redacted.
- redaction_abuse: a payload marked redacted that no later ``redaction``
  tombstone names, a tombstone whose recorded digest differs from the
  redacted entry's digest, or a tombstone that is itself redacted.

For a checkpoint fault ``first_bad_seq`` is the first seq the bad checkpoint
covers that no verified checkpoint covers before it. Reading the rows is the
caller's job (:mod:`audit.store`, :mod:`audit.export`).
"""

from __future__ import annotations

import binascii
import hashlib
import json
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain, islice

from audit._batch import check_batch, extend, fast_matcher
from audit._chain_faults import Link, raise_link_fault
from audit._envelope import (
    ZERO_PREV,
    Fields,
    decode,
    json_text,
    read_fields,
)
from audit._report import Fault, FaultClass, VerificationReport
from audit.errors import InvalidSignatureError
from audit.keys import NoteVerifier
from audit.merkle import CompactRange
from audit.note import Checkpoint, check_note, parse_checkpoint
from audit.records import EntryStream, EntryTuple, StoredCheckpoint, StoredEntry
from audit.transition import KeyChain, first_key, transition_from_payload

__all__ = ["FaultClass", "VerificationReport", "Verifier"]

_AS_ROW = operator.attrgetter("seq", "envelope", "leaf_hash", "payload", "redacted")
"""StoredEntry -> EntryTuple; the hot loop reads plain tuples (no attribute lookups)."""
_SPECIAL_TYPES = (b"redaction", b"key_transition")
"""Entry types whose payload the verifier reads (their checks live in :meth:`_Run._payload`)."""
_BATCH = 1024
"""Entries checked at once on the fast path (about 1.5 KB each while in flight)."""


class Verifier:
    """Verifies a log read as a stream of entries and checkpoints (see module doc)."""

    def __init__(
        self,
        verifiers: Sequence[NoteVerifier],
        origin: str | None = None,
        trusted_checkpoint: str | None = None,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Configure the keys, the log origin and an optional trusted checkpoint.

        Args:
            verifiers: public keys whose checkpoint signatures count.
            origin: the log origin; None adopts the first entry's ``log``.
            trusted_checkpoint: a signed checkpoint note the auditor kept
                from earlier (catches truncation and rollback).
            progress: called with the number of entries read, at least every 16,384.

        Raises:
            KeyLoadError: no verifier keys were given.
            InvalidSignatureError: the trusted checkpoint does not verify with
                these keys or names another origin.
        """
        from audit.errors import KeyLoadError

        self._verifiers = list(verifiers)
        if not self._verifiers:
            raise KeyLoadError("no verifier keys given: expected at least one public key")
        self._origin = origin
        self._progress = progress
        self._trusted: Checkpoint | None = None
        if trusted_checkpoint is not None:
            check = check_note(trusted_checkpoint, self._verifiers)
            if not check:
                raise InvalidSignatureError(
                    "trusted checkpoint does not verify with the given keys: "
                    f"verified {list(check.verified)}, failed {list(check.failed)}"
                )
            self._trusted = parse_checkpoint(check.body)
            if origin is not None and self._trusted.origin != origin:
                raise InvalidSignatureError(
                    f"trusted checkpoint origin: expected {origin!r}, got {self._trusted.origin!r}"
                )

    def verify(
        self, entries: Iterable[StoredEntry], checkpoints: Iterable[StoredCheckpoint],
        *, transitions: Iterable[bytes | str] = (),
    ) -> VerificationReport:
        """Verify every entry and checkpoint; never raises on a failed check.

        Args:
            entries: every entry of the log, in seq order (streamed).
            checkpoints: every stored checkpoint, in size order (streamed).
            transitions: payloads of the log's ``key_transition`` entries, read
                ahead (an unverified hint: the first one names the log's first
                key, so a key later in the chain can anchor it).

        Returns:
            A report naming the first fault and its seq, or ok.
        """
        chain = KeyChain(self._verifiers, first_key(transitions))
        run = _Run(chain, self._origin, self._trusted, iter(checkpoints), self._progress)
        rows = entries.rows() if isinstance(entries, EntryStream) else map(_AS_ROW, entries)
        try:
            run.consume(iter(rows))
            run.finish()
        except Fault as fault:
            return run.report(fault)
        return run.report(None)


class _Run:
    """State of one verification pass; O(log n) memory plus pending redactions."""

    def __init__(self, chain: KeyChain, origin: str | None,
                 trusted: Checkpoint | None, checkpoints: Iterator[StoredCheckpoint],
                 progress: Callable[[int], None] | None) -> None:
        self.chain, self.origin, self.trusted = chain, origin, trusted
        self.unanchored: int | None = None
        """First seq covered only by checkpoints of keys no trusted key vouches for yet."""
        self.checkpoints, self.progress = checkpoints, progress
        self.next_cp = next(checkpoints, None)
        self.p = 0
        self.stack: list[bytes] = []
        """Roots of the perfect subtrees so far (a compact range, RFC 9162 §2.1.1)."""
        self.pending: dict[int, str] = {}
        self.redacted: list[int] = []
        self.verified_size = 0
        self.below_verified = 0
        """The verified size before ``verified_size`` (for faults at that same size)."""
        self.checked = 0
        self.held: Fault | None = None
        """A root mismatch waiting for the next checkpoint to tell its class."""
        self.due = 0
        """The next size at which a checkpoint (stored or trusted) is due."""

    def report(self, fault: Fault | None) -> VerificationReport:
        # A held root mismatch precedes any later fault (its seq is lower).
        if self.held is not None and (
                fault is None or fault.fault is not FaultClass.INCONSISTENT_CHECKPOINTS):
            fault = self.held
        redacted = tuple(s for s in self.redacted if s not in self.pending)
        if fault is None:
            unsigned = self.p - self.verified_size
            return VerificationReport(
                True, None, None,
                f"ok: {self.p} entries, {self.checked} checkpoints, {len(redacted)} redacted, "
                f"{unsigned} entries after the last checkpoint",
                self.p, self.checked, redacted, None, unsigned, tuple(self.chain.history))
        return VerificationReport(False, fault.fault, fault.seq, fault.message, self.p,
                                  self.checked, redacted, fault.checkpoint_size,
                                  self.p - self.verified_size, tuple(self.chain.history))

    def consume(self, it: Iterator[EntryTuple]) -> None:
        """One pass over the entries, in batches that end where a checkpoint is due.

        A batch of ordinary good entries is checked whole (:mod:`audit._batch`);
        any other batch (the first entry, a redaction, a key transition, an
        envelope with extra fields, a fault) entry by entry on the
        full path (:meth:`_slow`), which names the first fault.
        """
        self._due_checkpoints()
        origin = None if self.origin is None else json_text(self.origin)
        fast = fast_matcher(origin)
        last, before = ZERO_PREV, b""
        while True:
            rows = list(islice(it, min(_BATCH, self.due - self.p)))
            if not rows:
                return
            done = None if fast is None else check_batch(rows, self.p, last, fast)
            if done is None:
                origin, last, before = self._slow(rows, it, origin, last, before)
                if fast is None:
                    fast = fast_matcher(origin)
            else:
                leaves, hexes = done
                extend(self.stack, self.p, leaves)
                self.p += len(rows)
                before, last = (hexes[-2] if len(hexes) > 1 else last), hexes[-1]
            if self.p >= self.due:
                self._due_checkpoints()
                if self.progress is not None:
                    self.progress(self.p)

    def _slow(self, rows: list[EntryTuple], it: Iterator[EntryTuple], origin: bytes | None,
              last: bytes, before: bytes) -> tuple[bytes | None, bytes, bytes]:
        """The full path: every check of each entry from its parsed envelope; raises a fault.

        Returns the origin (the first entry names it when none was given) and
        the hex leaf hashes of the last two entries.
        """
        sha, hexlify, stack = hashlib.sha256, binascii.hexlify, self.stack
        entries = iter(rows)
        ahead = chain(entries, it)  # fault classification reads past the faulty entry
        for _seq, env, stored_leaf, payload, redacted in entries:
            h = sha(b"\x00" + env).digest()  # RFC 9162 §2.1.1: SHA-256(0x00 || envelope)
            origin = self._entry(env, stored_leaf, payload, redacted, h,
                                 (last, before, origin), ahead)
            # RFC 9162 §2.1.1 streamed: merge the perfect subtrees this leaf completes.
            n, node = self.p, h
            while n & 1:
                node = sha(b"\x01" + stack.pop() + node).digest()
                n >>= 1
            stack.append(node)
            before, last = last, hexlify(h)
            self.p += 1
        return origin, last, before

    def _entry(self, env: bytes, stored_leaf: bytes, payload: bytes | None, redacted: object,
               h: bytes, links: tuple[bytes, bytes, bytes | None],
               it: Iterator[EntryTuple]) -> bytes | None:
        """Every check of the entry at ``self.p``, from its parsed envelope; raises a fault.

        ``links`` is (previous leaf hash hex, the one before it, origin as
        escaped in JSON or None). Returns the origin (the first entry names it).
        """
        p, (last, before, origin) = self.p, links
        fields = read_fields(env)
        if fields is None:
            raise Fault(FaultClass.MODIFIED, p,
                         f"entry {p}: stored envelope is not a canonical envelope")
        log, digest, prev, seq, type_ = fields
        if h != stored_leaf:
            raise Fault(FaultClass.MODIFIED, p,
                         f"entry {p}: leaf hash mismatch: expected "
                         f"{bytes(stored_leaf).hex()}, got {h.hex()}")
        if prev != last or int(seq) != p:
            raise_link_fault(fields, h, it,
                             Link(p, last.decode(), before.decode(), self.verified_size))
        if log != origin:
            origin = self._check_origin(fields)
        if redacted or payload is None or type_ in _SPECIAL_TYPES:
            self._payload(payload, bool(redacted), fields)
        else:
            got = hashlib.sha256(payload).hexdigest()
            if got.encode() != digest:
                raise Fault(FaultClass.PAYLOAD_MISMATCH, p,
                             f"entry {p}: payload digest mismatch: expected sha256:"
                             f"{digest.decode()}, got sha256:{got}")
        return origin

    def _root(self) -> bytes:
        return CompactRange(self.p, self.stack).root()

    def _check_origin(self, fields: Fields) -> bytes:
        """The first entry names the origin when none was given; later ones must match."""
        env = decode(fields)
        if self.origin is None and env is not None:
            self.origin = env.log
            return fields[0]
        got = env.log if env is not None else fields[0].decode("utf-8", "replace")
        raise Fault(FaultClass.MODIFIED, self.p,
                     f"entry {self.p}: log origin mismatch: expected {self.origin!r}, got {got!r}")

    def _payload(self, payload: bytes | None, redacted: bool, fields: Fields) -> None:
        """Redacted, missing and tombstone payloads (the uncommon cases)."""
        p, f = self.p, decode(fields)
        if f is None:
            raise Fault(FaultClass.MODIFIED, p, f"entry {p}: envelope log is not valid UTF-8")
        if redacted:
            if f.type == "redaction":
                raise Fault(FaultClass.REDACTION_ABUSE, p,
                             f"entry {p}: the payload of a redaction tombstone was redacted")
            self.pending[p] = f.digest
            self.redacted.append(p)
        elif payload is None:
            raise Fault(FaultClass.PAYLOAD_MISMATCH, p,
                         f"entry {p}: payload missing but not marked redacted")
        else:
            got = hashlib.sha256(payload).hexdigest()
            if got != f.digest:
                raise Fault(FaultClass.PAYLOAD_MISMATCH, p,
                             f"entry {p}: payload digest mismatch: expected sha256:{f.digest}, "
                             f"got sha256:{got}")
        if f.type == "redaction" and not redacted:
            self._tombstone(bytes(payload or b""))
        elif f.type == "key_transition":
            self._transition(None if redacted else payload)

    def _transition(self, payload: bytes | None) -> None:
        """A ``key_transition`` entry: signed by the key in force (see audit.transition)."""
        p = self.p
        try:
            if payload is None:
                raise InvalidSignatureError("its payload is missing")
            problem = self.chain.follow(p, transition_from_payload(payload), self.origin)
        except InvalidSignatureError as exc:
            problem = str(exc)
        if problem is not None:
            raise Fault(FaultClass.FORGED_TRANSITION, p, f"key transition at seq {p} {problem}")

    def _tombstone(self, payload: bytes) -> None:
        """A ``redaction`` entry: its payload names the redacted seq and its digest."""
        p = self.p
        try:
            body = json.loads(payload)
            target, digest = body["seq"], body["digest"]
            if type(target) is not int or not isinstance(digest, str):
                raise TypeError
        except (ValueError, KeyError, TypeError) as exc:
            raise Fault(FaultClass.REDACTION_ABUSE, p,
                         f"entry {p}: redaction tombstone does not name a seq and digest") from exc
        if not 0 <= target < p:
            raise Fault(FaultClass.REDACTION_ABUSE, p,
                         f"entry {p}: redaction tombstone names seq {target}, expected below {p}")
        recorded = self.pending.pop(target, None)
        if recorded is not None and "sha256:" + recorded != digest:
            raise Fault(FaultClass.REDACTION_ABUSE, target,
                         f"entry {target}: redacted payload digest changed: tombstone {p} "
                         f"recorded {digest}, envelope has sha256:{recorded}")

    def _due_checkpoints(self) -> None:
        """Check every checkpoint (stored, then trusted) whose size the stream reached."""
        p = self.p
        while self.next_cp is not None and self.next_cp.size <= p:
            cp = self.next_cp
            if cp.size < p:
                raise Fault(FaultClass.FORGED_CHECKPOINT, self._lo(cp.size),
                             f"checkpoint of size {cp.size} listed after size {p}: "
                             "expected checkpoints in size order", cp.size)
            self._check_stored(cp, self._root())
            self.next_cp = next(self.checkpoints, None)
        trusted = self.trusted
        if trusted is not None and trusted.size == p and trusted.root != self._root():
            raise Fault(FaultClass.INCONSISTENT_CHECKPOINTS, self._lo(p),
                         f"log is inconsistent with the trusted checkpoint at size {p}: "
                         f"expected root {trusted.root.hex()}, got "
                         f"{self._root().hex()} (history rewritten or rolled back)", p)
        sizes = [c.size for c in (self.next_cp, self.trusted) if c is not None and c.size > p]
        self.due = min(sizes, default=1 << 62)
        if self.progress is not None:
            self.due = min(self.due, (p | 0x3FFF) + 1)

    def _open(self, cp: StoredCheckpoint) -> Checkpoint:
        """Signature, format, origin and size of one stored checkpoint; raises a fault."""
        lo = self._lo(cp.size)

        def fault(kind: FaultClass, why: str) -> Fault:
            return Fault(kind, lo, f"checkpoint at size {cp.size}: {why}", cp.size)

        try:
            check = check_note(cp.note, self.chain.checkpoint_keys())
            if check.failed:
                raise fault(FaultClass.FORGED_CHECKPOINT,
                            f"invalid signature for known key {check.failed[0]}")
            if not check.verified:
                in_force = self.chain.in_force
                why = "" if in_force is None else f" (the key in force is {in_force.name}+" \
                    f"{in_force.key_id.hex()})"
                raise fault(FaultClass.UNKNOWN_KEY,
                            f"signed only by unknown keys {', '.join(check.unknown) or 'none'}"
                            + why)
            signed = parse_checkpoint(check.body)
        except InvalidSignatureError as exc:
            raise fault(FaultClass.FORGED_CHECKPOINT, str(exc)) from exc
        if self.origin is not None and signed.origin != self.origin:
            raise fault(FaultClass.FORGED_CHECKPOINT,
                        f"origin mismatch: expected {self.origin!r}, got {signed.origin!r}")
        if signed.size != cp.size:
            raise fault(FaultClass.FORGED_CHECKPOINT,
                        f"stored size differs from the signed size {signed.size}")
        return signed

    def _check_stored(self, cp: StoredCheckpoint, root: bytes) -> None:
        """Signature and root of a stored checkpoint at the current size.

        A validly signed root that differs from the log's is held back until
        the next checkpoint: if that one matches the log, the odd one out is
        inconsistent with it (inconsistent_checkpoints); if it also differs,
        or none follows, the entries were rewritten (modified).
        """
        signed = self._open(cp)
        if signed.root != root:
            lo = self._lo(cp.size)
            why = (f"checkpoint at size {cp.size} signs root {signed.root.hex()}, but the "
                   f"log's root at that size is {root.hex()}")
            if self.verified_size == cp.size:
                raise Fault(FaultClass.INCONSISTENT_CHECKPOINTS, lo,
                             f"two different roots signed for size {cp.size}: {why}", cp.size)
            if self.held is None:
                self.held = Fault(FaultClass.MODIFIED, lo,
                                   f"entries {lo} to {cp.size - 1} were rewritten: {why}", cp.size)
                return
            raise self.held
        if self.held is not None:
            raise Fault(FaultClass.INCONSISTENT_CHECKPOINTS, self.held.seq,
                         f"{self.held.message.split(': ', 1)[1]}; it is inconsistent with the "
                         f"checkpoint at size {cp.size}, which matches the log",
                         self.held.checkpoint_size)
        if not self.chain.anchored and self.unanchored is None:
            self.unanchored = self._lo(cp.size)
        elif self.chain.anchored:
            self.unanchored = None  # a trusted key's root vouches for every earlier entry
        if cp.size != self.verified_size:
            self.below_verified = self.verified_size
        self.verified_size = cp.size
        self.checked += 1

    def _lo(self, size: int) -> int:
        """First seq a checkpoint of ``size`` covers that no verified smaller one covers."""
        return self.verified_size if self.verified_size < size else self.below_verified

    def finish(self) -> None:
        """After the last entry: truncation, then redactions without a tombstone."""
        p = self.p
        if self.next_cp is not None:
            cp = self.next_cp
            self._open(cp)
            raise Fault(FaultClass.TRUNCATED, p,
                         f"log truncated: a signed checkpoint covers {cp.size} entries, "
                         f"the log holds {p}", cp.size)
        if self.trusted is not None and self.trusted.size > p:
            raise Fault(FaultClass.TRUNCATED, p,
                         f"log truncated: the trusted checkpoint covers {self.trusted.size} "
                         f"entries, the log holds {p}", self.trusted.size)
        if self.unanchored is not None or not self.chain.anchored:
            seq = self.unanchored if self.unanchored is not None else 0
            keys = ", ".join(f"{v.name}+{v.key_id.hex()}" for v in self.chain.trusted)
            raise Fault(FaultClass.UNKNOWN_KEY, seq,
                         f"checkpoints from seq {seq} on are signed by keys of the log's "
                         f"key chain that none of the given keys ({keys}) vouches for: "
                         "pass the log's first key or a later key of its chain")
        if self.pending:
            seq = min(self.pending)
            raise Fault(FaultClass.REDACTION_ABUSE, seq,
                         f"entry {seq}: payload marked redacted, but no redaction tombstone "
                         "names it")
