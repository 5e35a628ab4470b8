"""Reading the fields of stored envelope bytes, for :mod:`audit.verify` only.

Owns the two ways the verifier parses an envelope: one regular expression of
the canonical (RFC 8785) envelope of the contract shape, which also proves the
bytes canonical, and a JSON fallback that accepts any canonical envelope with
the required fields (re-encoding it must give the same bytes). Internal and
unstable: nothing outside the audit package should import it.
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple

from audit.canonical import dumps_envelope
from audit.errors import CanonicalizationError


class Env(NamedTuple):
    """The envelope fields verification needs."""

    log: str
    digest: str
    prev: str
    seq: int
    type: str


# A JSON string as RFC 8785 writes it (no "\/" escapes, lowercase \u00xx),
# written as an unrolled, possessive loop so plain runs are scanned in one step.
_S = rb'[^"\\\x00-\x1f]*+(?:\\(?:["\\bfnrt]|u00(?:0[0-7bef]|1[0-9a-f]))[^"\\\x00-\x1f]*+)*+'
# What follows the subject's opening brace (the subject per the contract).
_TAIL = (rb'(?:"digest":"' + _S + rb'",)?"name":"' + _S + rb'"(?:,"version":"' + _S
         + rb'")?\},"time":"' + _S + rb'","type":"([a-z_]+)","v":1\}')
# The canonical envelope: keys in RFC 8785 order.
ENVELOPE_RE = re.compile(
    rb'\{"actor":"' + _S + rb'","log":"(' + _S + rb')","payload_digest":"sha256:([0-9a-f]{64})"'
    rb',"prev":"([0-9a-f]{64})","seq":(0|[1-9][0-9]{0,15}),"subject":\{' + _TAIL
)
_STRING_RE = re.compile(_S)
_HEX64 = re.compile(r"[0-9a-f]{64}")
ZERO_PREV = b"0" * 64

Fields = tuple[bytes, bytes, bytes, bytes, bytes]
"""Raw envelope fields: log (as escaped in JSON), payload digest hex, prev hex, seq, type."""


def json_text(value: str) -> bytes:
    """A string as RFC 8785 writes it between its quotes."""
    return json.dumps(value, ensure_ascii=False)[1:-1].encode("utf-8", "surrogatepass")


def _json_fields(data: bytes) -> Fields | None:
    """Slow path: any envelope that is canonical JSON with the required fields."""
    try:
        obj = json.loads(data)
        if not isinstance(obj, dict) or dumps_envelope(obj) != data:
            return None
    except (ValueError, CanonicalizationError):
        return None
    digest, prev, seq = obj.get("payload_digest"), obj.get("prev"), obj.get("seq")
    if not (isinstance(digest, str) and digest.startswith("sha256:")
            and _HEX64.fullmatch(digest[7:]) and isinstance(prev, str) and _HEX64.fullmatch(prev)
            and type(seq) is int and seq >= 0 and obj.get("v") == 1
            and isinstance(obj.get("log"), str) and isinstance(obj.get("type"), str)):
        return None
    return (json_text(obj["log"]), digest[7:].encode(), prev.encode(), str(seq).encode(),
            obj["type"].encode())


def read_fields(data: bytes) -> Fields | None:
    """Return the raw envelope fields, or None when the bytes are not a canonical envelope."""
    m = ENVELOPE_RE.fullmatch(data)
    if m is None:
        return _json_fields(bytes(data))
    return m.groups()  # type: ignore[return-value]


def plain_string(text: bytes) -> bool:
    """Whether ``text`` is the inside of a canonical JSON string (as the envelope pattern reads)."""
    return _STRING_RE.fullmatch(text) is not None


def fast_pattern(log: bytes) -> re.Pattern[bytes]:
    """:data:`ENVELOPE_RE` for one log, for callers that already know the fields.

    ``log`` (a :func:`plain_string`) is written into the pattern; the digest
    and prev are taken as any 64 bytes (``.{64}``, one step in the regex
    engine) for the caller to compare with the values it expects. Groups:
    digest, prev, seq, type. A match whose digest and prev equal 64 lowercase
    hex is a match of :data:`ENVELOPE_RE` with these fields and this log.
    """
    return re.compile(
        rb'\{"actor":"' + _S + rb'","log":"' + re.escape(log)
        + rb'","payload_digest":"sha256:((?s:.{64}))","prev":"((?s:.{64}))"'
        rb',"seq":(0|[1-9][0-9]{0,15}),"subject":\{' + _TAIL
    )


def decode(fields: Fields) -> Env | None:
    """Decoded fields for the slow paths (fault classification, redaction)."""
    log, digest, prev, seq, type_ = fields
    try:
        text = json.loads(b'"' + log + b'"')
    except ValueError:  # invalid UTF-8 inside the string
        return None
    return Env(text, digest.decode(), prev.decode(), int(seq), type_.decode())


def parse_envelope(data: bytes) -> Env | None:
    """Return the decoded envelope fields, or None when not a canonical envelope."""
    fields = read_fields(data)
    return None if fields is None else decode(fields)
