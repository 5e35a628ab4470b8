"""The auditor's web pages of ``policyengine serve`` (server-rendered, read-only).

Part of the service adapter: :func:`install` adds the pages routers (``routes``;
``flows``: replay and what-if), the
verification-badge cache, the session keys and :class:`PagesGuard`, which

- refuses (403) every request other than GET/HEAD that carries a page session
  cookie and no bearer header (except the login form and logout): a page
  session is read-only whatever its token's roles, so no write is reachable
  from a browser session;
- adds the security headers to every page: a Content-Security-Policy that
  forbids every external source (styles from this origin only, no scripts,
  no frames, forms only to this origin), no sniffing, no referrer.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from policyengine.service.pages.badge import BadgeCache
from policyengine.service.pages.session import COOKIE, SessionKeys

__all__ = ["CSP", "PagesGuard", "install"]

CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
"""No script, no external style, font, image or frame; forms post to this origin only."""
_SAFE_METHODS = frozenset({"GET", "HEAD"})
_SESSION_PATHS = frozenset({"/pages/login", "/pages/logout"})
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


def _has_session(headers: dict[bytes, bytes]) -> bool:
    cookies = headers.get(b"cookie", b"").decode("latin-1")
    return any(part.strip().startswith(f"{COOKIE}=") for part in cookies.split(";"))


class PagesGuard:
    """Read-only page sessions and the pages' security headers (see the module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        path = scope["path"]
        if (scope["method"] not in _SAFE_METHODS and path not in _SESSION_PATHS
                and b"authorization" not in headers and _has_session(headers)):
            await _forbidden(send)
            return
        if not path.startswith("/pages"):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).extend(_HEADERS)
            await send(message)

        await self.app(scope, receive, with_headers)


async def _forbidden(send: Send) -> None:
    body = json.dumps({"code": "forbidden", "message": "page sessions are read-only: "
                       "writes need a bearer token with the role", "errors": []}).encode()
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def install(app: Any, svc: Any) -> None:
    """Add the pages to ``app`` (router, badge cache, session keys, guard)."""
    from policyengine.service.pages import flows, routes

    app.state.badges = BadgeCache()
    app.state.session_keys = SessionKeys(svc.signer)
    app.include_router(routes.router)
    app.include_router(flows.router)  # replay and what-if
    app.add_middleware(PagesGuard)
