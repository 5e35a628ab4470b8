"""Bearer-token authentication and role checks for the HTTP service.

Owns the token file format, how a presented token is matched (by its SHA-256,
so the file never holds a usable secret), and the role each endpoint needs.
Webhook endpoints do not use this module: they authenticate by their HMAC
secret (see ``webhooks_mlflow`` and ``webhooks_generic``).

Roles: ``evaluator`` (decisions, promotions, events), ``approver``
(approvals, waivers), ``auditor`` (read-only), ``admission`` (the Kubernetes
admission check only), ``admin`` (everything). Every role may read. A
missing or unknown token is 401, a known token without the role is 403;
both are decided before a handler runs, so neither writes.

Token file (YAML or JSON)::

    tokens:
      - id: ci-pipeline                # recorded as the actor of every write
        sha256: "<64 hex of SHA-256(token)>"
        roles: [evaluator]

The hash of a new token: ``printf %s "$TOKEN" | sha256sum`` (or
:func:`hash_token`). The token itself is given only to its holder. The file's
shape is strict (:class:`TokensFile`): an unknown key is refused, and so is a
hash listed twice (which record's roles would apply is then a guess). A
service with no token at all refuses to start (:func:`load_tokens`): it could
only answer 401, and a readiness probe would call it ready.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field

from policyengine.errors import ConfigError
from policyengine.strict import StrictModel, validate_file

__all__ = [
    "ROLES",
    "AuthError",
    "Principal",
    "TokenStore",
    "TokensFile",
    "hash_token",
    "load_token_records",
    "load_tokens",
    "require",
]

ROLES = frozenset({"evaluator", "approver", "auditor", "admission", "admin"})
"""Every role a token may hold."""

_Role = Literal["evaluator", "approver", "auditor", "admission", "admin"]


class _TokenRecord(StrictModel):
    """One token: who holds it (recorded as the actor), its hash, its roles."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    roles: list[_Role] = Field(min_length=1)


class TokensFile(StrictModel):
    """The shape of a tokens file; any other key, at any depth, is refused."""

    tokens: list[_TokenRecord]


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

    def __init__(
        self, records: Iterable[Mapping[str, Any]] = (), *, source: str = "tokens"
    ) -> None:
        """Check every record and index it by hash.

        Raises:
            ConfigError: a record has an unknown key or a bad value, or a hash
                is listed twice.
        """
        self._by_hash: dict[str, Principal] = {}
        seen: dict[str, int] = {}
        for i, rec in enumerate(records):
            # Values are not echoed: a token pasted into `sha256` must not reach a log.
            item = validate_file(_TokenRecord, rec, f"{source}: tokens[{i}]", show_values=False)
            if item.sha256 in seen:
                raise ConfigError(
                    f"{source}: tokens[{i}].sha256 repeats tokens[{seen[item.sha256]}].sha256: "
                    "each token needs its own record; merge their roles or drop one"
                )
            seen[item.sha256] = i
            self._by_hash[item.sha256] = Principal(item.id, frozenset(item.roles))

    @classmethod
    def from_file(cls, path: str | Path) -> TokenStore:
        """Load a token file (YAML or JSON, ``tokens: [{id, sha256, roles}]``)."""
        return cls(load_token_records(path), source=str(path))

    def __len__(self) -> int:
        return len(self._by_hash)

    def authenticate(self, token: str) -> Principal | None:
        """Return the principal for a presented token, or None when unknown."""
        # Keyed by SHA-256(token): timing of the look-up reveals nothing usable
        # about the token itself, and the stored hashes are not secrets.
        return self._by_hash.get(hash_token(token))

    def by_hash(self, sha256: str) -> Principal | None:
        """Return the principal whose token hashes to ``sha256`` (a page session's reference)."""
        return self._by_hash.get(sha256)


def load_token_records(path: str | Path) -> list[dict[str, Any]]:
    """Read and check the ``tokens`` list of a token file (YAML or JSON).

    Raises:
        ConfigError: the file is unreadable, or not ``tokens: [...]`` with only
            known keys.
    """
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read tokens file: {exc}") from exc
    parsed = validate_file(TokensFile, {} if data is None else data, str(path), show_values=False)
    return [record.model_dump() for record in parsed.tokens]


def load_tokens(
    records: Iterable[Mapping[str, Any]],
    tokens_file: Path | None,
    *,
    source: str = "service config",
) -> TokenStore:
    """The tokens of the service: inline records, then the tokens file.

    Raises:
        ConfigError: a record or the file is invalid, a hash repeats, or there
            is no token at all (the service refuses to start without one).
    """
    inline = list(records)
    store = TokenStore(inline, source=source)
    if tokens_file is not None:
        store = TokenStore([*inline, *load_token_records(tokens_file)], source=str(tokens_file))
    if not len(store):
        raise ConfigError(
            f"{source}: no bearer tokens configured: the service refuses to start without one; "
            "set tokens_file: (or POLICYENGINE_TOKENS_FILE) to a file of "
            "tokens: [{id, sha256, roles}]"
        )
    return store


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


def require(role: str | None) -> Callable[..., Awaitable[Principal]]:
    """FastAPI dependency: authenticate the bearer token and check ``role``.

    Args:
        role: the role the endpoint needs, or None for any authenticated caller.

    Raises:
        AuthError: 401 without a valid token, 403 without the role.
    """

    # async: a plain function would be run in the thread pool, one hand-off per
    # request for a dictionary look-up and one SHA-256.
    async def dependency(
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
