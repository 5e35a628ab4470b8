"""Input limits and the one error mapping of the HTTP service.

Owns: the request body size limit (an ASGI middleware that refuses an
oversize body before it is buffered), JSON body parsing through the one
bounded reader (:func:`policyengine.inputs.parse_json`: nesting depth,
duplicate keys, numbers no double holds, NUL and invalid UTF-8 are all 422
with the JSON path; only a syntax error is 400) into pydantic models with
JSON-path errors (422), and the single place where an error ``code`` becomes
an HTTP status and an ``ErrorV1`` body. No response ever carries a stack trace.

It does not own authentication (``auth``) or webhook signatures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from audit.errors import AuditError
from policyengine.inputs import DocumentError, json_path, parse_json
from policyengine.service.auth import AuthError
from policyengine.service.wire import ErrorItem, ErrorV1

__all__ = [
    "BodyTooLargeError",
    "ErrorV1",
    "InputError",
    "SizeLimitMiddleware",
    "install_error_handlers",
    "parse_body",
    "parse_bytes",
    "status_for_code",
]

_log = structlog.get_logger("policyengine.service")
M = TypeVar("M", bound=BaseModel)


class InputError(Exception):
    """A request body the service refuses, with its status and located errors."""

    def __init__(
        self, status: int, code: str, message: str, errors: Sequence[ErrorItem] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.errors = list(errors)


class BodyTooLargeError(InputError):
    """The request body exceeds the configured limit (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, "body_too_large", f"request body exceeds {limit} bytes")


# The one mapping from error codes (PolicyEngineError.code, AuditError.code)
# to HTTP statuses. Codes not listed fall back by family in status_for_code.
_STATUS_BY_CODE: dict[str, int] = {
    # audit/errors.py
    "audit_log_unavailable": 503,
    "audit_storage_error": 503,
    "audit_key_load_error": 503,
    "audit_invalid_proof": 500,
    "audit_invalid_signature": 500,
    "audit_integrity_error": 500,
    "audit_retention_refused": 409,
    "audit_canonicalization_error": 422,
    "audit_invalid_input": 400,
    # policyengine/errors.py
    "internal_error": 500,
    "policy_invalid": 500,
    "card_invalid": 422,
    "bad_input": 422,
    "config_invalid": 400,
    "evaluation_failed": 422,
    "log_unavailable": 503,
    "recorded_incomplete": 503,
    "key_unavailable": 503,
    "mlflow_unavailable": 502,
    "promotion_refused": 409,
    "retention_refused": 409,
}


def status_for_code(code: str, *, audit: bool) -> int:
    """Return the HTTP status for an error code (the only such mapping)."""
    if code in _STATUS_BY_CODE:
        return _STATUS_BY_CODE[code]
    if code.endswith("_not_found"):
        return 404
    if code.endswith("_unavailable"):
        return 503
    if code.endswith(("_invalid", "_validation_error", "_input_error")):
        return 422
    return 500 if audit else 400


def loads_limited(raw: bytes, max_depth: int) -> Any:
    """Parse a JSON body under the bounded reader's limits and ``max_depth``.

    Raises:
        InputError: 400 ``malformed_json`` for a syntax error; 422 for a body
            the reader refuses (``json_too_deep`` for nesting, ``bad_input``
            otherwise), with the JSON path of the refused value.
    """
    try:
        return parse_json(raw, "request body", max_depth=max_depth)
    except DocumentError as exc:
        if exc.kind == "syntax":
            raise InputError(400, "malformed_json", str(exc)) from exc
        code = {"depth": "json_too_deep", "duplicate_key": "duplicate_key"}.get(
            exc.kind, "bad_input"
        )
        items = [ErrorItem(path=json_path(exc.path), message=exc.problem)] \
            if exc.path is not None else []
        raise InputError(422, code, str(exc), items) from exc


async def parse_body(request: Request, model: type[M]) -> M:
    """Read, size-check, depth-check and validate a JSON body into ``model``.

    Raises:
        InputError: 400/413 for unreadable bodies, 422 with JSON paths for
            bodies that do not match ``model``.
    """
    return parse_bytes(await request.body(), request.app.state.limits.max_json_depth, model)


def parse_bytes(raw: bytes, max_depth: int, model: type[M]) -> M:
    """:func:`parse_body` over a body already read: the CPU part, which a handler
    may run off the event loop (a worker thread) beside the call it precedes.

    Raises:
        InputError: as :func:`parse_body`.
    """
    data = loads_limited(raw, max_depth)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _validation_input_error(exc.errors()) from exc


def _validation_input_error(errors: Sequence[Any]) -> InputError:
    items = [ErrorItem(path=json_path(e.get("loc", ())), message=str(e.get("msg"))) for e in errors]
    first = items[0] if items else ErrorItem(path="$", message="invalid")
    return InputError(422, "invalid_request", f"{first.path}: {first.message}", items)


class SizeLimitMiddleware:
    """ASGI middleware refusing request bodies larger than ``max_bytes``.

    A declared Content-Length over the limit is refused at once; a streamed
    body is counted as it arrives and the read fails on the byte that passes
    the limit, so an oversize body is never held in memory.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            scope.setdefault("state", {})["body_too_large"] = True
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            if scope.get("state", {}).get("body_too_large"):
                raise BodyTooLargeError(self.max_bytes)
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)


def error_response(
    status: int, code: str, message: str, errors: Sequence[ErrorItem] = (),
    *, seq: int | None = None,
) -> JSONResponse:
    """Build an ErrorV1 JSON response (``seq`` only when an entry was recorded)."""
    body = ErrorV1(code=code, message=message, errors=list(errors), seq=seq)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


# Errors of the log's storage: their messages name the server's database
# (path or host), which is the operator's business, not the client's.
_LOG_CODES = frozenset({"log_unavailable", "audit_log_unavailable", "audit_storage_error"})
_LOG_UNAVAILABLE = (
    "the audit log is unavailable; retry later; the operator finds the cause in the "
    "service log (event request_failed with this response's X-Request-Id)"
)


def _public_message(exc: Exception, code: str, message: str) -> str:
    """The first line a client may see: log errors without server paths."""
    if code in _LOG_CODES:
        return _LOG_UNAVAILABLE
    summary = getattr(exc, "summary", None)
    if code == "recorded_incomplete" and callable(summary):
        return f"{summary()}; the service log has the cause"
    return message.splitlines()[0] if message else code


def install_error_handlers(app: FastAPI) -> None:
    """Register the one exception handler per error family on ``app``."""
    from policyengine.errors import PolicyEngineError

    async def on_input(request: Request, exc: InputError) -> JSONResponse:
        return error_response(exc.status, exc.code, str(exc), exc.errors)

    async def on_auth(request: Request, exc: AuthError) -> JSONResponse:
        return error_response(exc.status, exc.code, str(exc))

    async def on_domain(request: Request, exc: Exception) -> JSONResponse:
        code = getattr(exc, "code", "internal_error")
        status = status_for_code(code, audit=isinstance(exc, AuditError))
        message = exc.diagnostics() if hasattr(exc, "diagnostics") else str(exc)
        if status >= 500:
            _log.error("request_failed", code=code, error=message)
        items = [
            ErrorItem(path=str(e.path), message=str(e.message))
            for e in getattr(exc, "errors", None) or []
            if hasattr(e, "path") and hasattr(e, "message")
        ]
        seq = getattr(exc, "seq", None) if code == "recorded_incomplete" else None
        return error_response(status, code, _public_message(exc, code, message), items, seq=seq)

    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        err = _validation_input_error(exc.errors())
        return error_response(err.status, err.code, str(err), err.errors)

    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = error_response(exc.status_code, "http_error", str(exc.detail))
        response.headers.update(exc.headers or {})  # 405 keeps Allow (RFC 9110 s15.5.6)
        return response

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        _log.error("unhandled_error", error_type=type(exc).__name__)
        return error_response(500, "internal_error", "internal error; see the service log")

    app.add_exception_handler(InputError, on_input)  # type: ignore[arg-type]
    app.add_exception_handler(AuthError, on_auth)  # type: ignore[arg-type]
    app.add_exception_handler(PolicyEngineError, on_domain)
    app.add_exception_handler(AuditError, on_domain)
    app.add_exception_handler(RequestValidationError, on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, on_http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, on_unexpected)
