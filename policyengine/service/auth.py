"""Bearer-token authentication and role checks for the HTTP service.

Owns the token file format, how a presented token is matched (by its SHA-256,
so the file never holds a usable secret), and the role each endpoint needs.
Webhook endpoints do not use this module: they authenticate by their HMAC
secret (see ``webhooks_mlflow`` and ``webhooks_generic``).

Roles (issue 5): ``evaluator`` (decisions, promotions, events), ``approver``
(approvals, waivers), ``auditor`` (read-only), ``admin`` (everything). Every
role may read. A missing or unknown token is 401, a known token without the
role is 403; both are decided before a handler runs, so neither writes.

Token file (YAML or JSON)::

    tokens:
      - id: ci-pipeline                # recorded as the actor of every write
        sha256: "<64 hex of SHA-256(token)>"
        roles: [evaluator]

The hash of a new token: ``printf %s "$TOKEN" | sha256sum`` (or
:func:`hash_token`). The token itself is given only to its holder.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

__all__ = [
    "ROLES",
    "AuthError",
    "Principal",
    "TokenStore",
    "hash_token",
    "load_token_records",
    "require",
]

ROLES = frozenset({"evaluator", "approver", "auditor", "admin"})
"""Every role a token may hold."""

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$")


class AuthError(Exception):
    """A request is unauthenticated (401) or lacks the role (403)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: its id is the actor recorded in the log."""

    id: str
    roles: frozenset[str]

    def has(self, role: str) -> bool:
        """True when the principal holds ``role`` (admin holds every role)."""
        return role in self.roles or "admin" in self.roles


def hash_token(token: str) -> str:
    """Return the hex SHA-256 of a token, the form the token file stores."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenStore:
    """Token hashes mapped to principals; built once at start-up."""

    def __init__(self, records: Iterable[Mapping[str, Any]] = ()) -> None:
        self._by_hash: dict[str, Principal] = {}
        for i, rec in enumerate(records):
            where = f"tokens[{i}]"
            digest = str(rec.get("sha256", "")).lower()
            ident = str(rec.get("id", ""))
            roles = frozenset(str(r) for r in rec.get("roles", ()))
            if not _HEX64.match(digest):
                raise ValueError(
                    f"{where}.sha256: expected 64 lowercase hex, got {len(digest)} chars"
                )
            if not _ID.match(ident):
                raise ValueError(f"{where}.id: expected a short identifier, got {ident!r}")
            if not roles or not roles <= ROLES:
                raise ValueError(
                    f"{where}.roles: expected a non-empty subset of {sorted(ROLES)}, "
                    f"got {sorted(roles)}"
                )
            self._by_hash[digest] = Principal(ident, roles)

    @classmethod
    def from_file(cls, path: str | Path) -> TokenStore:
        """Load a token file (YAML or JSON, ``tokens: [{id, sha256, roles}]``)."""
        return cls(load_token_records(path))

    def __len__(self) -> int:
        return len(self._by_hash)

    def authenticate(self, token: str) -> Principal | None:
        """Return the principal for a presented token, or None when unknown."""
        # Keyed by SHA-256(token): timing of the look-up reveals nothing usable
        # about the token itself, and the stored hashes are not secrets.
        return self._by_hash.get(hash_token(token))


def load_token_records(path: str | Path) -> list[dict[str, Any]]:
    """Read the ``tokens`` list of a token file (YAML or JSON).

    Raises:
        ValueError: the file is not a mapping with a ``tokens`` list.
    """
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict) or not isinstance(data.get("tokens", []), list):
        raise ValueError(f"{path}: expected a mapping with a 'tokens' list")
    return list(data.get("tokens", []))


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


# Declares the bearer scheme in the OpenAPI document on every operation that
# depends on ``require``; the check itself stays in ``dependency`` below, so a
# missing token is an ErrorV1 401 rather than FastAPI's own 403.
_BEARER = HTTPBearer(auto_error=False, description="A token from the service's token file")


def require(role: str | None) -> Callable[..., Principal]:
    """FastAPI dependency: authenticate the bearer token and check ``role``.

    Args:
        role: the role the endpoint needs, or None for any authenticated caller.

    Raises:
        AuthError: 401 without a valid token, 403 without the role.
    """

    def dependency(
        request: Request,
        _declared: HTTPAuthorizationCredentials | None = Security(_BEARER),  # noqa: B008
    ) -> Principal:
        store: TokenStore = request.app.state.tokens
        token = _bearer(request)
        if token is None:
            raise AuthError(
                401, "unauthenticated", "missing bearer token: send 'Authorization: Bearer <token>'"
            )
        principal = store.authenticate(token)
        if principal is None:
            raise AuthError(401, "unauthenticated", "unknown bearer token")
        if role is not None and not principal.has(role):
            raise AuthError(
                403,
                "forbidden",
                f"role {role!r} required, token {principal.id!r} has {sorted(principal.roles)}",
            )
        request.state.actor = principal.id
        return principal

    return dependency
