"""Receipts: one entry, its inclusion proof and a signed checkpoint, verifiable offline.

Owns the receipt format and its verification. A receipt is a JSON object:

    {"v": 1,
     "envelope": <the envelope as a JSON object>,
     "envelope_b64": <base64 of the exact canonical envelope bytes>,
     "payload_digest": "sha256:<hex>",
     "leaf_index": <seq>,
     "inclusion_proof": [<base64 hash>, ...],
     "checkpoint": <signed C2SP checkpoint note>,
     "verdict": "allow" | "deny"}           (optional, decision entries)

``verdict`` is what the entry's payload decided, shown beside the entry for
people: it is not part of the verified bytes (the payload is bound by
``payload_digest`` but not carried in a receipt), so a verifier checks only
its shape; the payload fetched from the log confirms it.

:func:`verify_receipt` needs only the log's public key(s): it recomputes the
canonical envelope bytes, the leaf hash (RFC 9162 §2.1.1), the root through
the inclusion proof (RFC 9162 §2.1.3.2) and checks the checkpoint signature
(c2sp.org/signed-note). Every field is bound, so changing any byte of a
receipt serialised by :func:`dumps_receipt` makes it unparsable or fail.
Producing proofs and checkpoints is :mod:`audit.log`'s job.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from typing import Any

from audit.canonical import dumps, dumps_envelope
from audit.errors import CanonicalizationError, IntegrityError
from audit.keys import NoteVerifier
from audit.merkle import leaf_hash, verify_inclusion
from audit.note import open_note, parse_checkpoint

__all__ = ["RECEIPT_VERSION", "build_receipt", "dumps_receipt", "loads_receipt", "verify_receipt"]

RECEIPT_VERSION = 1
"""The receipt format version written in ``"v"``."""

_KEYS = frozenset(
    {
        "v",
        "envelope",
        "envelope_b64",
        "payload_digest",
        "leaf_index",
        "inclusion_proof",
        "checkpoint",
    }
)
_VERDICTS = ("allow", "deny")
"""Values of the optional, unverified ``verdict`` view."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def build_receipt(
    envelope: bytes, seq: int, size: int, proof: Sequence[bytes], note: str,
    *, verdict: str | None = None,
) -> dict[str, Any]:
    """Assemble the receipt of entry ``seq`` from stored bytes.

    Args:
        envelope: the stored canonical envelope bytes of the entry.
        seq: the entry's seq (its Merkle leaf index).
        size: the tree size of the checkpoint in ``note``.
        proof: the inclusion proof of ``seq`` in the tree of ``size`` leaves.
        note: the signed checkpoint note for ``size``.
        verdict: ``allow`` or ``deny`` read from a decision entry's payload, shown
            beside the entry (not covered by the proof).

    Returns:
        A JSON-able dict; serialise it with :func:`dumps_receipt`.

    Raises:
        IntegrityError: the parts do not belong together (seq, size or
            digest disagree).
    """
    obj = json.loads(envelope)
    if obj.get("seq") != seq or not 0 <= seq < size:
        raise IntegrityError(
            f"receipt parts disagree: envelope seq {obj.get('seq')}, seq {seq}, size {size}"
        )
    checkpoint_size = note.split("\n", 2)[1] if note.count("\n") >= 2 else ""
    if checkpoint_size != str(size):
        raise IntegrityError(
            f"receipt checkpoint size mismatch: expected {size}, got {checkpoint_size!r}"
        )
    if verdict is not None and verdict not in _VERDICTS:
        raise IntegrityError(f"receipt verdict: expected allow or deny, got {verdict!r}")
    receipt = {
        "v": RECEIPT_VERSION,
        "envelope": obj,
        "envelope_b64": _b64(envelope),
        "payload_digest": obj["payload_digest"],
        "leaf_index": seq,
        "inclusion_proof": [_b64(p) for p in proof],
        "checkpoint": note,
    }
    if verdict is not None:
        receipt["verdict"] = verdict
    return receipt


def dumps_receipt(receipt: dict[str, Any]) -> bytes:
    """Serialise a receipt as RFC 8785 canonical JSON (no insignificant bytes)."""
    return dumps(receipt)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise IntegrityError(f"receipt has a duplicate key {key!r}")
        out[key] = value
    return out


def loads_receipt(data: bytes | str) -> dict[str, Any]:
    """Parse receipt JSON, refusing duplicate keys.

    Raises:
        IntegrityError: not JSON, not UTF-8, or duplicate keys.
    """
    try:
        obj = json.loads(data, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as exc:
        raise IntegrityError(f"receipt is not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise IntegrityError(f"receipt must be a JSON object, got {type(obj).__name__}")
    return obj


def _field(receipt: dict[str, Any], key: str, kind: type) -> Any:
    value = receipt[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise IntegrityError(
            f"receipt field {key!r}: expected {kind.__name__}, got {type(value).__name__}"
        )
    return value


def _decode(what: str, text: Any) -> bytes:
    if not isinstance(text, str):
        raise IntegrityError(f"receipt {what}: expected base64 text, got {type(text).__name__}")
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise IntegrityError(f"receipt {what} is not base64") from exc
    # One spelling per value: unused low bits of the last character must be zero.
    if _b64(raw) != text:
        raise IntegrityError(f"receipt {what} is not canonical base64")
    return raw


def _check_shape(receipt: Any) -> None:
    if not isinstance(receipt, dict):
        raise IntegrityError(f"receipt must be a JSON object, got {type(receipt).__name__}")
    missing, extra = _KEYS - receipt.keys(), receipt.keys() - _KEYS - {"verdict"}
    if missing or extra:
        raise IntegrityError(
            f"receipt fields: missing {sorted(missing)}, unexpected {sorted(extra)}"
        )
    if _field(receipt, "v", int) != RECEIPT_VERSION:
        raise IntegrityError(f"receipt version: expected {RECEIPT_VERSION}, got {receipt['v']}")
    if receipt.get("verdict") not in (None, *_VERDICTS):
        raise IntegrityError(
            f"receipt verdict: expected allow or deny, got {receipt['verdict']!r}")


def _envelope_bytes(receipt: dict[str, Any]) -> bytes:
    """The envelope bytes, after checking the JSON object and digest agree with them."""
    raw = _decode("envelope_b64", receipt["envelope_b64"])
    envelope = _field(receipt, "envelope", dict)
    try:
        canonical = dumps_envelope(envelope)
    except CanonicalizationError as exc:
        raise IntegrityError(f"receipt envelope is not canonical: {exc}") from exc
    if canonical != raw:
        raise IntegrityError("receipt envelope does not match envelope_b64 byte for byte")
    digest = _field(receipt, "payload_digest", str)
    if envelope.get("payload_digest") != digest:
        raise IntegrityError(
            f"receipt payload digest mismatch: expected {envelope.get('payload_digest')}, "
            f"got {digest}"
        )
    if envelope.get("seq") != _field(receipt, "leaf_index", int):
        raise IntegrityError(
            f"receipt leaf index mismatch: expected {envelope.get('seq')}, "
            f"got {receipt['leaf_index']}"
        )
    return raw


def verify_receipt(receipt: dict[str, Any], verifiers: Iterable[NoteVerifier]) -> None:
    """Verify a receipt offline with the log's public key(s).

    Args:
        receipt: the parsed receipt (see :func:`loads_receipt`).
        verifiers: the trusted verifier keys; unknown signatures are ignored.

    Raises:
        IntegrityError: any field is missing, malformed or inconsistent.
        InvalidSignatureError: the checkpoint has no valid trusted signature.
        InvalidProofError: the entry is not in the tree the checkpoint signs.
    """
    verifiers = list(verifiers)
    if not verifiers:
        raise IntegrityError("no verifier keys given: expected at least one public key")
    _check_shape(receipt)
    envelope = _envelope_bytes(receipt)
    proof = [
        _decode(f"inclusion_proof[{i}]", p)
        for i, p in enumerate(_field(receipt, "inclusion_proof", list))
    ]
    body, _names = open_note(_field(receipt, "checkpoint", str), verifiers)
    checkpoint = parse_checkpoint(body)
    origin = receipt["envelope"].get("log")
    if checkpoint.origin != origin:
        raise IntegrityError(
            f"receipt checkpoint origin mismatch: expected {origin!r}, got {checkpoint.origin!r}"
        )
    verify_inclusion(
        leaf_hash(envelope), receipt["leaf_index"], checkpoint.size, proof, checkpoint.root
    )
