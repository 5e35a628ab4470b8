"""C2SP signed notes and tlog checkpoints: format, sign, open.

Owns the text formats of c2sp.org/signed-note and c2sp.org/tlog-checkpoint:

- a checkpoint body is ``<origin>\\n<size>\\n<base64 root>\\n`` plus optional
  non-empty extension lines;
- a signed note is the body, a blank line, then one line per signature:
  ``— <key name> <base64(4-byte key id || signature)>\\n`` (em dash U+2014).

Verification follows the signed-note rules: signatures from unknown keys
(name and key id not both matching a configured verifier) are ignored; a
signature from a known key that fails to verify rejects the whole note; a
note with no verified known signature is rejected. Keys live in
:mod:`audit.keys`; which roots a log may sign is decided by :mod:`audit.log`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from audit.errors import InvalidSignatureError
from audit.keys import NoteVerifier, Signer

__all__ = [
    "Checkpoint",
    "NoteCheck",
    "check_note",
    "open_note",
    "parse_checkpoint",
    "sign_note",
]

_EM_DASH = "\u2014"
# c2sp.org/signed-note: verifiers must accept at least 16 signatures; cap the rest.
_MAX_SIGNATURES = 100
_SIG_LINE_RE = re.compile(rf"{_EM_DASH} ([^\s+]+) ([A-Za-z0-9+/]+=*)")
_CONTROL_RE = re.compile(r"[\x00-\x09\x0b-\x1f]")
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True)
class Checkpoint:
    """A tlog checkpoint: log origin, tree size and RFC 9162 root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        """Return the checkpoint note text (c2sp.org/tlog-checkpoint "Note text")."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "".join(f"{line}\n" for line in (*lines, *self.extensions))


def _malformed(why: str) -> InvalidSignatureError:
    return InvalidSignatureError(f"malformed note: {why}")


def _b64decode_canonical(what: str, text: str) -> bytes:
    """Decode standard base64, refusing non-canonical spellings of the same bytes."""
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise _malformed(f"{what} is not base64") from exc
    # Unused low bits of the last character must be zero, so one text per value.
    if base64.b64encode(raw).decode() != text:
        raise _malformed(f"{what} is not canonical base64")
    return raw


def parse_checkpoint(body: str) -> Checkpoint:
    """Parse a checkpoint body (the note text, without signatures).

    Raises:
        InvalidSignatureError: the text is not a well-formed checkpoint.
    """
    if not body.endswith("\n"):
        raise _malformed("checkpoint must end with a newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise _malformed(
            f"checkpoint needs origin, size and root on non-empty lines, got {len(lines)} lines"
        )
    origin, size, root_b64, *extensions = lines
    if not _SIZE_RE.fullmatch(size):
        raise _malformed(f"checkpoint size: expected a decimal without leading zeros, got {size!r}")
    root = _b64decode_canonical("checkpoint root", root_b64)
    if len(root) != 32:
        raise _malformed(f"checkpoint root: expected 32 bytes, got {len(root)}")
    return Checkpoint(origin, int(size), root, tuple(extensions))


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise _malformed("text must end with a newline")
    if _CONTROL_RE.search(text):
        raise _malformed("text holds a control character other than newline")


def sign_note(body: str, signers: Sequence[Signer]) -> str:
    """Sign ``body`` with every signer; return the signed note text.

    Args:
        body: the note text (for a checkpoint, :meth:`Checkpoint.body`).
        signers: one or more signers; their order is the signature order.

    Raises:
        InvalidSignatureError: no signer, or a body that is not valid note text.
    """
    if not signers:
        raise InvalidSignatureError("no signer given: expected at least one key to sign with")
    _check_text(body)
    msg = body.encode("utf-8")
    lines = [
        f"{_EM_DASH} {s.name} {base64.b64encode(s.key_id + s.sign(msg)).decode()}\n"
        for s in signers
    ]
    return body + "\n" + "".join(lines)


@dataclass(frozen=True)
class NoteCheck:
    """What verifying one signed note found (never raised; see :func:`open_note`).

    Attributes:
        body: the note text the signatures cover.
        verified: names of known keys whose signatures verified.
        failed: names of known keys whose signatures did not verify.
        unknown: ``name+hexid`` of signatures from keys not configured.
    """

    body: str
    verified: tuple[str, ...]
    failed: tuple[str, ...]
    unknown: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.verified) and not self.failed


def _split_note(note: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """Split a signed note into its text and (name, key id, signature) triples."""
    if _CONTROL_RE.search(note):
        raise _malformed("note holds a control character other than newline")
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise _malformed("expected text, a blank line and signature lines")
    text, sig_block = note[: cut + 1], note[cut + 2 :]
    sigs = []
    for line in sig_block[:-1].split("\n"):
        m = _SIG_LINE_RE.fullmatch(line)
        if m is None:
            raise _malformed(f"bad signature line {line[:40]!r}")
        raw = _b64decode_canonical("signature", m.group(2))
        if len(raw) < 5:
            raise _malformed(f"signature too short: expected more than 4 bytes, got {len(raw)}")
        sigs.append((m.group(1), raw[:4], raw[4:]))
    if len(sigs) > _MAX_SIGNATURES:
        raise _malformed(
            f"too many signatures: expected at most {_MAX_SIGNATURES}, got {len(sigs)}"
        )
    return text, sigs


def check_note(note: str, verifiers: Iterable[NoteVerifier]) -> NoteCheck:
    """Verify every signature of ``note`` that a configured verifier knows.

    Raises:
        InvalidSignatureError: the note is malformed (not a failed signature:
            those are reported in the result).
    """
    text, sigs = _split_note(note)
    known = {(v.name, v.key_id): v for v in verifiers}
    msg = text.encode("utf-8")
    verified: list[str] = []
    failed: list[str] = []
    unknown: list[str] = []
    for name, kid, sig in sigs:
        v = known.get((name, kid))
        if v is None:
            unknown.append(f"{name}+{kid.hex()}")
        elif v.verify(msg, sig):
            verified.append(name)
        else:
            failed.append(name)
    return NoteCheck(text, tuple(verified), tuple(failed), tuple(unknown))


def open_note(note: str, verifiers: Iterable[NoteVerifier]) -> tuple[str, list[str]]:
    """Verify a signed note; return its text and the names of the keys that signed it.

    Raises:
        InvalidSignatureError: malformed note, a known key's signature that
            does not verify, or no signature from any configured key.
    """
    check = check_note(note, verifiers)
    if check.failed:
        raise InvalidSignatureError(
            f"invalid signature for key {check.failed[0]}: the note was altered or forged"
        )
    if not check.verified:
        seen = ", ".join(check.unknown) or "none"
        raise InvalidSignatureError(
            f"note has no signature from a configured key: got signatures from {seen}"
        )
    return check.body, list(check.verified)
