"""Page sessions: who is reading, from the bearer header or a signed session cookie.

The login form takes a bearer token once and sets a cookie that holds only a
reference to it (the token's SHA-256, which the token file already stores and
which is no secret) and an expiry, signed with HMAC-SHA256 so it cannot be
forged or extended. The cookie is HttpOnly and SameSite=Strict (and Secure
over HTTPS); every request looks the reference up in the token store again,
so a token removed from the token file ends its sessions at the next restart.

The HMAC key is derived from the log's signing key: an Ed25519 signature is
deterministic (RFC 8032 §5.1.6), so every worker of one service derives the
same key from the same fixed message, and nobody without the signing key can.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from typing import Any

from fastapi import Request

from policyengine.service.auth import Principal, TokenStore, hash_token

__all__ = ["COOKIE", "SESSION_SECONDS", "SessionKeys", "login_cookie", "principal_of"]

COOKIE = "pe_session"
SESSION_SECONDS = 8 * 3600
"""A page session lasts one working day; then the login form asks again."""
_DOMAIN = b"policyengine/pages/session-key/v1\n"


class SessionKeys:
    """Signs and checks session cookies with a key derived from the signing key."""

    def __init__(self, signer: Any) -> None:
        # Without a signing key (a read-only process) sessions last as long as the process.
        secret = signer.sign(_DOMAIN) if signer is not None else os.urandom(64)
        self._key = hashlib.sha256(_DOMAIN + secret).digest()

    def _mac(self, body: bytes) -> str:
        return hmac.new(self._key, body, hashlib.sha256).hexdigest()

    def issue(self, token_sha256: str, now: float | None = None) -> str:
        """A cookie value naming ``token_sha256`` until now + :data:`SESSION_SECONDS`."""
        expires = int((now or time.time()) + SESSION_SECONDS)
        body = f"v1.{token_sha256}.{expires}".encode()
        return base64.urlsafe_b64encode(body).decode().rstrip("=") + "." + self._mac(body)

    def check(self, value: str, now: float | None = None) -> str | None:
        """The token reference of a valid, unexpired cookie value, else None."""
        encoded, _, mac = value.partition(".")
        try:
            body = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (ValueError, TypeError):
            return None
        if not hmac.compare_digest(self._mac(body), mac):
            return None
        version, ref, expires = [*body.decode("ascii", "replace").split("."), "", ""][:3]
        if version != "v1" or not expires.isdigit() or int(expires) <= (now or time.time()):
            return None
        return ref


def login_cookie(keys: SessionKeys, store: TokenStore, token: str) -> tuple[str, Principal] | None:
    """The cookie value and principal for a token typed into the login form, or None."""
    principal = store.authenticate(token.strip())
    if principal is None:
        return None
    return keys.issue(hash_token(token.strip())), principal


def principal_of(request: Request) -> Principal | None:
    """The reader: a bearer token in the header, else a valid session cookie, else None."""
    store: TokenStore = request.app.state.tokens
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return store.authenticate(value.strip())
    keys: SessionKeys | None = getattr(request.app.state, "session_keys", None)
    cookie = request.cookies.get(COOKIE)
    if keys is None or not cookie:
        return None
    ref = keys.check(cookie)
    return None if ref is None else store.by_hash(ref)
