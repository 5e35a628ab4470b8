"""Ed25519 keys in the C2SP signed-note formats: generate, load, sign, verify.

Owns key material: the signer used to sign checkpoints and the verifiers an
auditor configures. Key ids and text formats follow c2sp.org/signed-note and
golang.org/x/mod/sumdb/note:

- key id = SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4]
- verifier key (vkey): ``<name>+<8 hex key id>+<base64(0x01 || public key)>``
- signer key (skey): ``PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 || seed)>``

A signer also loads from PKCS#8 PEM (Ed25519) or from an environment variable.
A key file readable by group or others is refused. Nothing here logs, prints
or ``repr``s private key material. Note parsing and signing live in
:mod:`audit.note`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from audit.errors import KeyLoadError

__all__ = [
    "DEFAULT_KEY_NAME",
    "ENV_SIGNING_KEY",
    "NoteVerifier",
    "Signer",
    "generate_key",
    "key_id",
    "load_signer",
    "load_verifiers",
]

ENV_SIGNING_KEY = "POLICYENGINE_SIGNING_KEY"
"""Environment variable holding a signing key (skey or PEM text, or a file path)."""

DEFAULT_KEY_NAME = "policyengine.local/audit"
"""Key name given to PEM keys, which carry no name; it matches the default log origin."""

# c2sp.org/signed-note "Signature types": 0x01 is Ed25519.
_ALG_ED25519 = b"\x01"
_SKEY_PREFIX = "PRIVATE+KEY+"
# c2sp.org/signed-note: key names are non-empty, without Unicode spaces or "+".
_NAME = r"[^\s+]+"
_VKEY_RE = re.compile(rf"({_NAME})\+([0-9a-f]{{8}})\+([A-Za-z0-9+/]+=*)")
_SKEY_RE = re.compile(rf"PRIVATE\+KEY\+({_NAME})\+([0-9a-f]{{8}})\+([A-Za-z0-9+/]+=*)")


def key_id(name: str, public_key: bytes) -> bytes:
    """Return the 4-byte key id SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + _ALG_ED25519 + public_key).digest()[:4]


def _check_name(name: str) -> None:
    if not re.fullmatch(_NAME, name):
        raise KeyLoadError(
            f"invalid key name {name!r}: expected a non-empty name without spaces or '+'"
        )


def _decode_key(what: str, b64: str, hex_id: str, name: str) -> bytes:
    """Decode ``base64(0x01 || 32 bytes)`` of a vkey or skey; return the 32 bytes."""
    try:
        raw = base64.b64decode(b64, validate=True)
    except binascii.Error as exc:
        raise KeyLoadError(f"{what} for {name!r} is not valid base64") from exc
    if len(raw) != 33 or raw[:1] != _ALG_ED25519:
        raise KeyLoadError(
            f"{what} for {name!r} is not Ed25519: expected 0x01 and 32 bytes, "
            f"got {len(raw)} bytes starting 0x{raw[:1].hex() or '--'}"
        )
    return raw[1:]


class NoteVerifier:
    """A public key that verifies signed-note signatures of one key name."""

    __slots__ = ("_public", "key_id", "name", "public_key")

    def __init__(self, name: str, public_key: bytes) -> None:
        """Build from a key name and a raw 32-byte Ed25519 public key.

        Raises:
            KeyLoadError: bad name or key length.
        """
        _check_name(name)
        if len(public_key) != 32:
            raise KeyLoadError(
                f"ed25519 public key has wrong length: expected 32 bytes, got {len(public_key)}"
            )
        self.name = name
        self.public_key = public_key
        self.key_id = key_id(name, public_key)
        self._public = Ed25519PublicKey.from_public_bytes(public_key)

    @property
    def vkey(self) -> str:
        """The verifier key text ``<name>+<hex id>+<base64(0x01 || pub)>``."""
        b64 = base64.b64encode(_ALG_ED25519 + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{b64}"

    @classmethod
    def from_vkey(cls, text: str) -> NoteVerifier:
        """Parse a verifier key; its key id must match its name and key.

        Raises:
            KeyLoadError: malformed text, not Ed25519, or a key id mismatch.
        """
        m = _VKEY_RE.fullmatch(text.strip())
        if m is None:
            raise KeyLoadError(
                "malformed verifier key: expected <name>+<8 hex key id>+<base64 key>"
            )
        name, hex_id, b64 = m.groups()
        verifier = cls(name, _decode_key("verifier key", b64, hex_id, name))
        if verifier.key_id.hex() != hex_id:
            raise KeyLoadError(
                f"verifier key id mismatch for {name!r}: expected {verifier.key_id.hex()}, "
                f"got {hex_id}"
            )
        return verifier

    def verify(self, msg: bytes, sig: bytes) -> bool:
        """Return True when ``sig`` is this key's Ed25519 signature of ``msg``."""
        try:
            self._public.verify(sig, msg)
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"NoteVerifier({self.vkey!r})"


class Signer:
    """An Ed25519 private key with a signed-note key name.

    ``repr`` and ``str`` show the name and key id only, never key material.
    """

    __slots__ = ("_private", "key_id", "name", "public_key")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        """Wrap an Ed25519 private key under a key name.

        Raises:
            KeyLoadError: the name is not a valid signed-note key name.
        """
        _check_name(name)
        self.name = name
        self._private = private_key
        self.public_key = private_key.public_key().public_bytes_raw()
        self.key_id = key_id(name, self.public_key)

    @property
    def vkey(self) -> str:
        """The matching verifier key text, safe to print and publish."""
        return self.verifier().vkey

    def verifier(self) -> NoteVerifier:
        """Return the matching :class:`NoteVerifier`."""
        return NoteVerifier(self.name, self.public_key)

    def sign(self, msg: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of ``msg`` (RFC 8032)."""
        return self._private.sign(msg)

    @classmethod
    def from_skey(cls, text: str) -> Signer:
        """Parse a signer key ``PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>``.

        Raises:
            KeyLoadError: malformed text, not Ed25519, or a key id mismatch.
        """
        m = _SKEY_RE.fullmatch(text.strip())
        if m is None:
            raise KeyLoadError(
                "malformed signer key: expected PRIVATE+KEY+<name>+<8 hex key id>+<base64 seed>"
            )
        name, hex_id, b64 = m.groups()
        seed = _decode_key("signer key", b64, hex_id, name)
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed))
        if signer.key_id.hex() != hex_id:
            raise KeyLoadError(
                f"signer key id mismatch for {name!r}: expected {signer.key_id.hex()}, got {hex_id}"
            )
        return signer

    @classmethod
    def from_pem(cls, data: bytes | str, name: str = DEFAULT_KEY_NAME) -> Signer:
        """Load an unencrypted PKCS#8 PEM Ed25519 private key under ``name``.

        Raises:
            KeyLoadError: not PEM, encrypted, or not an Ed25519 key.
        """
        raw = data.encode() if isinstance(data, str) else data
        try:
            key = serialization.load_pem_private_key(raw, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise KeyLoadError(
                "cannot read PEM private key: expected unencrypted PKCS#8 Ed25519"
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyLoadError(
                f"PEM key is not Ed25519: expected Ed25519PrivateKey, got {type(key).__name__}"
            )
        return cls(name, key)

    def to_skey(self) -> str:
        """Return the signer key text; handle it as a secret."""
        seed = self._private.private_bytes_raw()
        b64 = base64.b64encode(_ALG_ED25519 + seed).decode()
        return f"{_SKEY_PREFIX}{self.name}+{self.key_id.hex()}+{b64}"

    def __repr__(self) -> str:
        return f"Signer(name={self.name!r}, key_id={self.key_id.hex()!r})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("Signer holds a private key and cannot be pickled")


def generate_key(name: str) -> tuple[str, str]:
    """Generate a new Ed25519 key; return ``(skey, vkey)`` texts.

    Raises:
        KeyLoadError: the name is not a valid signed-note key name.
    """
    signer = Signer(name, Ed25519PrivateKey.generate())
    return signer.to_skey(), signer.vkey


def _parse_signer_text(text: str, name: str) -> Signer:
    stripped = text.strip()
    if stripped.startswith(_SKEY_PREFIX):
        return Signer.from_skey(stripped)
    if stripped.startswith("-----BEGIN"):
        return Signer.from_pem(stripped, name)
    raise KeyLoadError(
        "unrecognised signing key: expected a PRIVATE+KEY+... signer key or a PEM private key"
    )


def _read_private_file(path: Path) -> str:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise KeyLoadError(f"cannot read signing key {path}: {exc.strerror}") from exc
    # Refuse keys others can read (as ssh does): the key signs the whole log.
    if mode & 0o077:
        raise KeyLoadError(
            f"signing key {path} is accessible by group or others (mode {mode & 0o777:o}): "
            f"run chmod 600 {path}"
        )
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyLoadError(f"cannot read signing key {path}: {exc}") from exc


def load_signer(
    path: str | Path | None = None,
    env: str = ENV_SIGNING_KEY,
    *,
    name: str = DEFAULT_KEY_NAME,
) -> Signer:
    """Load the signing key from a file, else from the environment variable ``env``.

    The file or variable holds a signer key (``PRIVATE+KEY+...``) or a PKCS#8
    PEM Ed25519 key (named ``name``); the variable may also hold a file path.

    Raises:
        KeyLoadError: no key configured, unreadable or unsafe file (readable
            by group or others: fix with ``chmod 600``), or a malformed key.
    """
    if path is not None:
        return _parse_signer_text(_read_private_file(Path(path)), name)
    value = os.environ.get(env)
    if not value:
        raise KeyLoadError(
            f"no signing key: set {env} or pass a key file (create one with 'keys generate')"
        )
    stripped = value.strip()
    if stripped.startswith((_SKEY_PREFIX, "-----BEGIN")):
        return _parse_signer_text(stripped, name)
    return _parse_signer_text(_read_private_file(Path(stripped)), name)


def _verifiers_from_text(text: str, origin: str, name: str) -> list[NoteVerifier]:
    if "-----BEGIN" in text:
        try:
            key = serialization.load_pem_public_key(text.encode())
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise KeyLoadError(f"cannot read PEM public key in {origin}") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise KeyLoadError(f"public key in {origin} is not Ed25519")
        return [NoteVerifier(name, key.public_bytes_raw())]
    lines = [ln.strip() for ln in text.splitlines()]
    return [NoteVerifier.from_vkey(ln) for ln in lines if ln and not ln.startswith("#")]


def load_verifiers(
    items: Iterable[str | Path], *, name: str = DEFAULT_KEY_NAME
) -> list[NoteVerifier]:
    """Load verifier keys from vkey texts or files.

    Each item is a vkey string, or a path to a file holding vkey lines (blank
    lines and ``#`` comments skipped) or one PEM Ed25519 public key (named
    ``name``).

    Raises:
        KeyLoadError: an item is neither a vkey nor a readable key file, or a
            key in it is malformed.
    """
    out: list[NoteVerifier] = []
    for item in items:
        if isinstance(item, str) and _VKEY_RE.fullmatch(item.strip()):
            out.append(NoteVerifier.from_vkey(item))
            continue
        path = Path(item)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyLoadError(
                f"verifier key {str(item)!r} is neither a vkey nor a readable file"
            ) from exc
        out.extend(_verifiers_from_text(text, str(path), name))
    return out
