"""Entries made ready to store: input checks, canonical payloads, envelopes, rows.

Owns what :class:`audit.log.AuditLog` does to an entry before and inside the
append transaction: :func:`prepare` validates it and canonicalises its
payload (RFC 8785) before any transaction starts, so bad input never touches
the log; :func:`build_rows` writes the envelopes once seq and prev are known
and hashes them (RFC 9162 §2.1.1 leaf hashes).

The envelope bytes are formatted from a template of its fixed keys in RFC
8785 order, with every string escaped as RFC 8785 escapes it: equal byte for
byte to :func:`audit.canonical.dumps_envelope` of the envelope object (the
tests prove it), without walking and sorting a dict per entry. Storing rows
is :mod:`audit.store`.
"""

from __future__ import annotations

import hashlib
import re
from binascii import hexlify
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from audit.canonical import dumps, json_string
from audit.errors import InputError
from audit.merkle import leaf_hash
from audit.records import Head, NewRow
from audit.retention import AUDIT_TYPES

__all__ = ["NewEntry", "Prepared", "build_rows", "envelope_bytes", "format_time", "prepare"]

_TYPE_RE = re.compile(r"[a-z_]+")
_SUBJECT_KEYS = frozenset({"name", "version", "digest"})
_ZERO = b"0" * 64

# RFC 8785 §3.2.3: keys sorted by UTF-16 code units (all ASCII here).
_ENVELOPE = (b'{"actor":%s,"log":%s,"payload_digest":"%s","prev":"%s","seq":%d,'
             b'"subject":%s,"time":"%s","type":"%s","v":1}')


@dataclass(frozen=True)
class NewEntry:
    """One entry to append with :meth:`audit.log.AuditLog.append_many`."""

    type: str
    """Entry type, ``[a-z_]+``."""
    subject: dict[str, str]
    """``{"name": ..., "version"?: ..., "digest"?: ...}``, string values."""
    actor: str
    """Who caused the entry."""
    payload: Any
    """Any JSON value; stored as RFC 8785 bytes beside the envelope."""
    time: datetime | None = None
    """Entry time (timezone-aware); now when None."""


class Prepared(NamedTuple):
    """An entry checked and canonicalised, waiting for its seq and prev."""

    type: str
    subject: dict[str, str]
    actor: str
    payload: bytes
    """RFC 8785 bytes of the payload."""
    digest: str
    """``sha256:`` hex of ``payload``."""
    time: str | None
    """RFC 3339 entry time; None: the time of the transaction."""
    actor_json: bytes
    """``actor`` as an RFC 8785 string."""
    subject_json: bytes
    """``subject`` as an RFC 8785 object."""


_last_time: tuple[datetime | None, str] = (None, "")
"""The last time formatted: a batch's entries often share one datetime (immutable)."""


def format_time(value: datetime) -> str:
    """Return RFC 3339 UTC with microseconds and ``Z``.

    Raises:
        InputError: ``value`` is naive (no timezone).
    """
    global _last_time
    last = _last_time
    if value is last[0]:
        return last[1]
    if not isinstance(value, datetime):
        raise InputError(f"time: expected a datetime, got {type(value).__name__}")
    if value.tzinfo is UTC:  # the common case: no conversion; "+00:00" becomes "Z"
        text = value.isoformat(timespec="microseconds")[:-6] + "Z"
    elif value.tzinfo is None or value.utcoffset() is None:
        raise InputError(
            "time: expected a timezone-aware datetime, got a naive one; pass tzinfo=UTC")
    else:
        text = rfc3339(value.astimezone(UTC))
    _last_time = (value, text)
    return text


def rfc3339(utc: datetime) -> str:
    """RFC 3339 text of a UTC datetime: always 6 fraction digits, then ``Z``."""
    # isoformat is several times faster than strftime and zero-pads the year.
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _check_subject(subject: Any) -> dict[str, str]:
    if not isinstance(subject, dict):
        raise InputError(f"subject: expected a dict with 'name', got {type(subject).__name__}")
    if not subject.keys() <= _SUBJECT_KEYS:
        extra = set(subject) - _SUBJECT_KEYS
        raise InputError(
            f"subject: expected keys name, version, digest, got unknown {sorted(map(str, extra))}"
        )
    if not subject.get("name"):
        raise InputError("subject: 'name' is required and must be a non-empty string")
    for key, value in subject.items():
        if not isinstance(value, str):
            raise InputError(f"subject.{key}: expected a string, got {type(value).__name__}")
    return dict(subject)


def _subject_json(subject: dict[str, str]) -> bytes:
    """RFC 8785 object of a checked subject: keys digest, name, version in that order."""
    digest, version = subject.get("digest"), subject.get("version")
    out = b'{"name":' + json_string(subject["name"], "subject.name")
    if digest is not None:
        out = b'{"digest":' + json_string(digest, "subject.digest") + b"," + out[1:]
    if version is not None:
        out += b',"version":' + json_string(version, "subject.version")
    return out + b"}"


def prepare(entry: NewEntry, *, internal: bool = False) -> Prepared:
    """Validate and canonicalise one entry before any transaction starts.

    Raises:
        InputError: invalid type, subject, actor or time.
        CanonicalizationError: the payload is not JSON, or a string is not
            valid Unicode (a lone surrogate).
    """
    kind, actor = entry.type, entry.actor
    if type(kind) is not str or not _TYPE_RE.fullmatch(kind):
        raise InputError(f"type: expected [a-z_]+, got {kind!r}")
    if kind in AUDIT_TYPES and not internal:
        raise InputError(f"type: {kind!r} is written by the audit log itself")
    if not isinstance(actor, str) or not actor:
        raise InputError(f"actor: expected a non-empty string, got {actor!r}")
    subject = _check_subject(entry.subject)
    payload = dumps(entry.payload)
    time = None if entry.time is None else format_time(entry.time)
    return Prepared(kind, subject, actor, payload,
                    "sha256:" + hashlib.sha256(payload).hexdigest(), time,
                    json_string(actor, "actor"), _subject_json(subject))


def envelope_bytes(origin_json: bytes, seq: int, time: str, p: Prepared, prev: bytes) -> bytes:
    """The RFC 8785 envelope of ``p`` at ``seq`` after the leaf of hex ``prev``.

    Equal to ``dumps_envelope({"v": 1, "log": origin, "seq": seq, "time": time,
    "type": p.type, "subject": p.subject, "actor": p.actor, "payload_digest":
    p.digest, "prev": prev})``: type, time, digest and prev hold no character
    JSON escapes ([a-z_], RFC 3339, hex), the rest were escaped by :func:`prepare`.
    """
    return _ENVELOPE % (p.actor_json, origin_json, p.digest.encode(), prev, seq,
                        p.subject_json, time.encode(), p.type.encode())


def build_rows(origin: str, head: Head, prepared: list[Prepared], now: str) -> list[NewRow]:
    """Envelopes and leaf hashes of ``prepared`` as entries ``head.size..``, chained by prev.

    ``now`` is the time of entries that have none.
    """
    origin_json = json_string(origin, "log")
    prev = hexlify(head.last_leaf) if head.size else _ZERO
    rows: list[NewRow] = []
    seq = head.size
    for p in prepared:
        time = p.time or now
        envelope = envelope_bytes(origin_json, seq, time, p, prev)
        leaf = leaf_hash(envelope)
        rows.append(NewRow(seq, leaf, envelope, p.type, p.subject, p.actor, time,
                           p.digest, p.payload))
        prev = hexlify(leaf)
        seq += 1
    return rows
