"""Witness cosigning: c2sp.org/tlog-cosignature and c2sp.org/tlog-witness.

Owns the pure parts of witnessing and the witness's own state:

- cosignature keys: a witness signs with an Ed25519 key whose key id is
  SHA-256(name || 0x0A || 0x04 || public key)[:4] and whose vkey carries the
  signature type 0x04 (tlog-cosignature "Format");
- cosignatures: a signed-note line over ``cosignature/v1\\ntime <t>\\n`` plus
  the checkpoint body, the signature being ``u64 timestamp || ed25519 sig``;
- the ``add-checkpoint`` request body (``old <size>``, proof lines, a blank
  line, the signed checkpoint) and its parsing;
- :class:`Witness`: the checks of tlog-witness "add-checkpoint" over a
  :class:`WitnessState` (last checkpoint per origin, a JSON file replaced
  atomically), answering with a status and a body.

Not here: the HTTP server (``policyengine witness serve``), the log asking
witnesses to cosign (:mod:`audit.publish`), verifying a whole log's
cosignatures (:mod:`audit.evidence`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit import merkle
from audit.errors import IntegrityError, InvalidSignatureError, KeyLoadError, StorageError
from audit.keys import NoteVerifier, Signer, load_verifiers
from audit.note import check_note, parse_checkpoint

__all__ = [
    "CosignatureVerifier",
    "Witness",
    "WitnessResponse",
    "WitnessState",
    "cosign",
    "encode_add_checkpoint",
    "load_witness_keys",
    "parse_add_checkpoint",
    "parse_log_keys",
    "verified_cosigners",
    "witness_vkey",
]

# c2sp.org/signed-note "Signature types": 0x04 is a timestamped Ed25519 cosignature/v1.
_ALG_COSIGNATURE_V1 = b"\x04"
_EM_DASH = "\u2014"
_HEADER = "cosignature/v1\n"
_MAX_PROOF_LINES = 63  # tlog-witness: a client MUST NOT send more
_MAX_TIME = (1 << 63) - 1
_VKEY_RE = re.compile(r"([^\s+]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]+=*)")
_OLD_RE = re.compile(r"old (0|[1-9][0-9]*)")
SIZE_CONTENT_TYPE = "text/x.tlog.size"
"""Content type of a 409 answer: the witness's latest size (tlog-witness)."""


def _cosigner_key_id(name: str, public_key: bytes) -> bytes:
    # tlog-cosignature: SHA-256(<name> || "\n" || 0x04 || 32-byte public key)[:4]
    return hashlib.sha256(name.encode() + b"\n" + _ALG_COSIGNATURE_V1 + public_key).digest()[:4]


def _message(body: str, timestamp: int) -> bytes:
    """tlog-cosignature "Ed25519 signed message": header, time line, checkpoint body."""
    return f"{_HEADER}time {timestamp}\n{body}".encode()


def witness_vkey(signer: Signer) -> str:
    """The witness's verifier key ``<name>+<hex id>+<base64(0x04 || pub)>``."""
    kid = _cosigner_key_id(signer.name, signer.public_key)
    b64 = base64.b64encode(_ALG_COSIGNATURE_V1 + signer.public_key).decode()
    return f"{signer.name}+{kid.hex()}+{b64}"


def cosign(signer: Signer, body: str, timestamp: int) -> str:
    """Return the cosignature line (with its newline) of ``signer`` on a checkpoint body.

    Raises:
        InvalidSignatureError: ``timestamp`` outside 0..2^63-1.
    """
    if not 0 <= timestamp <= _MAX_TIME:
        raise InvalidSignatureError(f"cosignature time: expected 0..2^63-1, got {timestamp}")
    sig = signer.sign(_message(body, timestamp))
    raw = _cosigner_key_id(signer.name, signer.public_key) + timestamp.to_bytes(8, "big") + sig
    return f"{_EM_DASH} {signer.name} {base64.b64encode(raw).decode()}\n"


class CosignatureVerifier:
    """A witness public key; plugs into :func:`audit.note.check_note` like a NoteVerifier."""

    __slots__ = ("_public", "key_id", "name", "public_key", "times")

    def __init__(self, name: str, public_key: bytes) -> None:
        """Build from a key name and a raw 32-byte Ed25519 public key.

        Raises:
            KeyLoadError: bad key length.
        """
        if len(public_key) != 32:
            raise KeyLoadError(f"witness key {name!r}: expected 32 bytes, got {len(public_key)}")
        self.name, self.public_key = name, public_key
        self.key_id = _cosigner_key_id(name, public_key)
        self._public = Ed25519PublicKey.from_public_bytes(public_key)
        self.times: list[int] = []
        """Timestamps of the cosignatures this verifier accepted (for reports)."""

    @classmethod
    def from_vkey(cls, text: str) -> CosignatureVerifier:
        """Parse a witness vkey (signature type 0x04); its key id must match.

        Raises:
            KeyLoadError: malformed text, another signature type, or a key id mismatch.
        """
        m = _VKEY_RE.fullmatch(text.strip())
        if m is None:
            raise KeyLoadError("malformed witness key: expected <name>+<8 hex id>+<base64 key>")
        name, hex_id, b64 = m.groups()
        try:
            raw = base64.b64decode(b64, validate=True)
        except binascii.Error as exc:
            raise KeyLoadError(f"witness key {name!r} is not valid base64") from exc
        if len(raw) != 33 or raw[:1] != _ALG_COSIGNATURE_V1:
            raise KeyLoadError(
                f"witness key {name!r} is not a cosignature/v1 key: expected 0x04 and 32 "
                f"bytes, got {len(raw)} bytes starting 0x{raw[:1].hex() or '--'}")
        verifier = cls(name, raw[1:])
        if verifier.key_id.hex() != hex_id:
            raise KeyLoadError(
                f"witness key id mismatch for {name!r}: expected {verifier.key_id.hex()}, "
                f"got {hex_id}")
        return verifier

    @property
    def vkey(self) -> str:
        """The witness vkey text."""
        b64 = base64.b64encode(_ALG_COSIGNATURE_V1 + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{b64}"

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """True when ``sig`` (u64 time || Ed25519 signature) cosigns the body ``msg``."""
        if len(sig) != 72:
            return False
        timestamp = int.from_bytes(sig[:8], "big")
        if timestamp > _MAX_TIME:
            return False
        try:
            self._public.verify(sig[8:], _message(msg.decode(), timestamp))
        except InvalidSignature:
            return False
        self.times.append(timestamp)
        return True


def verified_cosigners(
    body: str, lines: Iterable[str], witnesses: Sequence[CosignatureVerifier]
) -> tuple[list[str], list[str]]:
    """Check cosignature lines on a checkpoint body; return (verified, failed) witness names.

    Lines from keys not in ``witnesses`` are ignored (signed-note rules); a
    witness counts once however many lines it has.

    Raises:
        InvalidSignatureError: a line is not a signed-note signature line.
    """
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    if not text:
        return [], []
    check = check_note(body + "\n" + text, witnesses)  # type: ignore[arg-type]
    failed = sorted(set(check.failed))
    return sorted(set(check.verified) - set(failed)), failed


def load_witness_keys(items: Iterable[str | Path]) -> list[CosignatureVerifier]:
    """Load witness vkeys from vkey texts or files of vkey lines (``#`` comments skipped).

    Raises:
        KeyLoadError: an item is neither a witness vkey nor a readable file of them.
    """
    out: list[CosignatureVerifier] = []
    for item in items:
        if isinstance(item, str) and _VKEY_RE.fullmatch(item.strip()):
            out.append(CosignatureVerifier.from_vkey(item))
            continue
        try:
            text = Path(item).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyLoadError(f"witness key {str(item)!r} is neither a vkey nor a "
                               "readable file") from exc
        lines = [ln.strip() for ln in text.splitlines()]
        out.extend(CosignatureVerifier.from_vkey(ln) for ln in lines
                   if ln and not ln.startswith("#"))
    return out


def encode_add_checkpoint(old: int, proof: Sequence[bytes], note: str) -> bytes:
    """The tlog-witness add-checkpoint request body."""
    lines = [f"old {old}\n", *(base64.b64encode(h).decode() + "\n" for h in proof), "\n"]
    return ("".join(lines) + note).encode()


class WitnessRequestError(IntegrityError):
    """An add-checkpoint request body is malformed (HTTP 400)."""

    code = "audit_witness_bad_request"


def parse_add_checkpoint(data: bytes) -> tuple[int, list[bytes], str]:
    """Parse an add-checkpoint body into (old size, consistency proof, signed note).

    Raises:
        WitnessRequestError: not UTF-8, a bad old line, a bad proof line, too
            many proof lines, or no blank line before the checkpoint.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WitnessRequestError("request body is not UTF-8") from exc
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise WitnessRequestError("expected old line, proof lines, a blank line and a checkpoint")
    first, *proof_lines = head.split("\n")
    m = _OLD_RE.fullmatch(first)
    if m is None:
        raise WitnessRequestError(f"expected 'old <size>' as the first line, got {first[:40]!r}")
    if len(proof_lines) > _MAX_PROOF_LINES:
        raise WitnessRequestError(f"too many proof lines: expected <= 63, got {len(proof_lines)}")
    proof = []
    for line in proof_lines:
        try:
            h = base64.b64decode(line, validate=True)
        except binascii.Error as exc:
            raise WitnessRequestError(f"proof line is not base64: {line[:40]!r}") from exc
        if len(h) != 32:
            raise WitnessRequestError(f"proof hash: expected 32 bytes, got {len(h)}")
        proof.append(h)
    return int(m.group(1)), proof, note


def parse_log_keys(items: Iterable[str]) -> dict[str, list[NoteVerifier]]:
    """Map origin -> log verifier keys from ``ORIGIN=VKEY`` or bare ``VKEY`` items.

    A bare vkey (or a file of vkeys) is trusted for the origin equal to its key name.

    Raises:
        KeyLoadError: a key is malformed or unreadable.
    """
    out: dict[str, list[NoteVerifier]] = {}
    for item in items:
        origin, eq, key = item.partition("=")
        if eq and "+" not in origin:
            out.setdefault(origin, []).extend(load_verifiers([key]))
            continue
        for v in load_verifiers([item]):
            out.setdefault(v.name, []).append(v)
    if not out:
        raise KeyLoadError("no log key given: pass --log-key ORIGIN=VKEY (or a vkey)")
    return out


class WitnessState:
    """The latest cosigned checkpoint per origin, in a JSON file replaced atomically."""

    def __init__(self, path: str | Path) -> None:
        """Open (or start) the state file at ``path``.

        Raises:
            StorageError: the file exists but is not a state file.
        """
        self.path = Path(path)
        self.lock = threading.Lock()
        """Held across check-and-persist (tlog-witness: the two must be atomic)."""
        self._logs: dict[str, dict[str, object]] = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self._logs = dict(data["logs"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise StorageError(f"witness state {self.path} unreadable: {exc}") from exc

    def latest(self, origin: str) -> tuple[int, bytes] | None:
        """The (size, root) last cosigned for ``origin``, or None."""
        rec = self._logs.get(origin)
        if rec is None:
            return None
        return int(rec["size"]), base64.b64decode(str(rec["root"]))  # type: ignore[call-overload]

    def store(self, origin: str, size: int, root: bytes, note: str) -> None:
        """Persist a new latest checkpoint for ``origin`` (fsync, then atomic rename)."""
        logs = dict(self._logs)
        logs[origin] = {"size": size, "root": base64.b64encode(root).decode(), "note": note}
        data = json.dumps({"logs": logs}, indent=2, sort_keys=True).encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name + ".")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._logs = logs


@dataclass(frozen=True)
class WitnessResponse:
    """What the witness answers: an HTTP status, a content type and a body."""

    status: int
    content_type: str
    body: bytes


def _text(status: int, message: str) -> WitnessResponse:
    return WitnessResponse(status, "text/plain; charset=utf-8", (message + "\n").encode())


class Witness:
    """A tlog witness: checks add-checkpoint requests and cosigns consistent checkpoints."""

    def __init__(self, signer: Signer, log_keys: dict[str, list[NoteVerifier]],
                 state: WitnessState, clock: Callable[[], float] = time.time) -> None:
        """Args: signer: the witness key; log_keys: origin -> trusted log keys;
        state: the persisted latest checkpoints; clock: seconds since the epoch."""
        self.signer, self.log_keys, self.state, self.clock = signer, log_keys, state, clock

    @property
    def vkey(self) -> str:
        """The witness's cosignature/v1 verifier key."""
        return witness_vkey(self.signer)

    def add_checkpoint(self, data: bytes) -> WitnessResponse:
        """Handle one add-checkpoint body (c2sp.org/tlog-witness, checks in spec order)."""
        try:
            old, proof, note = parse_add_checkpoint(data)
            body = note[: note.rfind("\n\n") + 1] if "\n\n" in note else note
            cp = parse_checkpoint(body)
        except (WitnessRequestError, InvalidSignatureError) as exc:
            return _text(400, f"bad request: {exc}")
        keys = self.log_keys.get(cp.origin)
        if keys is None:
            return _text(404, f"unknown log origin {cp.origin!r}")
        try:
            check = check_note(note, keys)
        except InvalidSignatureError as exc:
            return _text(400, f"bad request: {exc}")
        if not check.verified or check.failed:
            return _text(403, f"checkpoint for {cp.origin!r} has no valid signature by its log key")
        if old > cp.size:
            return _text(400, f"old size {old} is larger than the checkpoint size {cp.size}")
        with self.state.lock:
            return self._check_and_cosign(cp.origin, cp.size, cp.root, old, proof, note, body)

    def _check_and_cosign(self, origin: str, size: int, root: bytes, old: int,
                          proof: list[bytes], note: str, body: str) -> WitnessResponse:
        latest = self.state.latest(origin)
        known_size, known_root = latest if latest is not None else (0, b"")
        if old != known_size:
            return WitnessResponse(409, SIZE_CONTENT_TYPE, f"{known_size}\n".encode())
        if old == size and latest is not None:
            if root != known_root:  # two roots for one size: a split view
                return WitnessResponse(409, SIZE_CONTENT_TYPE, f"{known_size}\n".encode())
        elif old == 0:
            if proof:
                return _text(422, "consistency proof must be empty when old size is 0")
        else:
            try:  # RFC 9162 §2.1.4.2 (RFC 6962 §2.1.2 proofs)
                merkle.verify_consistency(old, size, proof, known_root, root)
            except IntegrityError as exc:
                return _text(422, f"consistency proof from size {old} does not verify: {exc}")
        self.state.store(origin, size, root, note)
        line = cosign(self.signer, body, int(self.clock()))
        return WitnessResponse(200, "text/plain; charset=utf-8", line.encode())
