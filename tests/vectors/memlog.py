"""In-memory logs with fixed keys and times, for tests and named vectors.

Builds envelopes exactly as the contract defines them (RFC 8785 bytes, leaf
hash SHA-256(0x00 || envelope), prev = previous leaf hash) without a
database, so verification and receipts are tested apart from storage.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from audit.canonical import dumps, dumps_envelope
from audit.keys import Signer
from audit.merkle import CompactRange, inclusion_proof, leaf_hash
from audit.note import Checkpoint, sign_note
from audit.receipt import build_receipt
from audit.records import StoredCheckpoint, StoredEntry

ORIGIN = "test.example/audit"
ZERO_PREV = "0" * 64


def fixed_signer(label: str = "1", name: str = ORIGIN) -> Signer:
    """A deterministic Ed25519 signer derived from ``label`` (tests only)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    seed = hashlib.sha256(f"policyengine test key {label}".encode()).digest()
    return Signer(name, Ed25519PrivateKey.from_private_bytes(seed))


def envelope(
    seq: int, prev: str, payload: bytes, *, type_: str = "decision", origin: str = ORIGIN
) -> bytes:
    """Canonical envelope bytes of entry ``seq`` with a fixed time."""
    return dumps_envelope(
        {
            "v": 1,
            "log": origin,
            "seq": seq,
            "time": f"2026-11-26T15:{seq // 60 % 60:02d}:{seq % 60:02d}.000000Z",
            "type": type_,
            "subject": {"name": "credit-risk", "version": "3"},
            "actor": "ci@example.org",
            "payload_digest": "sha256:" + hashlib.sha256(payload).hexdigest(),
            "prev": prev,
        }
    )


@dataclass
class MemLog:
    """A list of stored entries and checkpoints, appended like the real log."""

    signer: Signer = field(default_factory=fixed_signer)
    origin: str = ORIGIN
    entries: list[StoredEntry] = field(default_factory=list)
    checkpoints: list[StoredCheckpoint] = field(default_factory=list)

    def append(self, payload: Any, type_: str = "decision") -> StoredEntry:
        """Append one entry with a JSON payload; return its stored record."""
        data = dumps(payload)
        prev = self.entries[-1].leaf_hash.hex() if self.entries else ZERO_PREV
        env = envelope(len(self.entries), prev, data, type_=type_, origin=self.origin)
        entry = StoredEntry(len(self.entries), env, leaf_hash(env), data, False)
        self.entries.append(entry)
        return entry

    def fill(self, n: int) -> MemLog:
        """Append ``n`` decision entries with small distinct payloads."""
        for _ in range(n):
            self.append({"decision": "allow", "n": len(self.entries)})
        return self

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` entries (all by default)."""
        cr = CompactRange()
        for e in self.entries[: len(self.entries) if size is None else size]:
            cr.append(e.leaf_hash)
        return cr.root()

    def checkpoint(
        self,
        size: int | None = None,
        signers: Iterable[Signer] | None = None,
        root: bytes | None = None,
    ) -> StoredCheckpoint:
        """Sign and store a checkpoint of ``size`` entries (default: all)."""
        size = len(self.entries) if size is None else size
        body = Checkpoint(self.origin, size, self.root(size) if root is None else root).body()
        cp = StoredCheckpoint(size, sign_note(body, list(signers or [self.signer])))
        self.checkpoints.append(cp)
        self.checkpoints.sort(key=lambda c: c.size)
        return cp

    def redact(self, seq: int, *, tombstone: bool = True) -> None:
        """Delete the payload of ``seq``; append a ``redaction`` tombstone unless told not to."""
        old = self.entries[seq]
        self.entries[seq] = StoredEntry(old.seq, old.envelope, old.leaf_hash, None, True)
        if tombstone:
            digest = "sha256:" + hashlib.sha256(old.payload or b"").hexdigest()
            self.append(
                {
                    "seq": seq,
                    "by": "dpo@example.org",
                    "reason": "erasure request",
                    "digest": digest,
                },
                type_="redaction",
            )

    def receipt(self, seq: int, size: int | None = None) -> dict[str, Any]:
        """A receipt for ``seq`` against a new checkpoint of ``size`` entries."""
        cp = self.checkpoint(size)
        proof = inclusion_proof(seq, [e.leaf_hash for e in self.entries[: cp.size]])
        return build_receipt(self.entries[seq].envelope, seq, cp.size, proof, cp.note)
