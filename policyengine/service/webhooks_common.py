"""What every webhook endpoint shares: rejection, bounded evidence of it, replay.

Owns the rejection path: a refused delivery gets a 4xx ``ErrorV1`` response,
a ``policyengine_webhook_deliveries`` count, and at most one
``webhook_rejected`` log entry per (source, reason, minute), so auditors see
that deliveries were refused without a flood being able to fill the log. The
entry holds the reason and, when it looks like one, the delivery id; never the
body or the headers.

Also owns reading a webhook body under the size limit, parsing it (depth
limit, and no duplicate object keys: the HMAC covers the bytes, so the bytes
must have one meaning, RFC 8259 s4), the timestamp window check (stale or
far-future timestamps are refused) and how a webhook operation is described
in the OpenAPI document. Signature formats belong to each source's module.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from policyengine.service.limits import BodyTooLargeError, InputError, error_response, loads_limited
from policyengine.service.operations import serialised
from policyengine.service.runtime import Service
from policyengine.service.wire import DeliveryResultV1, json_body, responses

__all__ = [
    "WebhookRejectedError",
    "check_timestamp",
    "deliver",
    "parse_json",
    "read_body",
    "reject",
    "safe_id",
    "signed_headers",
    "webhook_doc",
]

_log = structlog.get_logger("policyengine.service")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


class WebhookRejectedError(Exception):
    """A delivery the service refuses: ``reason`` is a closed-set label."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def safe_id(value: str | None) -> str | None:
    """Return a delivery id fit to log (short, plain characters), else None."""
    if value and _SAFE_ID.match(value):
        return value
    return None


def signed_headers(request: Request, prefix: str, secret: str | None) -> tuple[str, str, str]:
    """(delivery id, timestamp, signature) from ``{prefix}-Delivery-Id`` etc.

    Raises:
        WebhookRejectedError: 503 when no secret is configured, 400 when a
            header is missing.
    """
    if not secret:
        raise WebhookRejectedError(
            503, "not_configured", f"no secret configured for {prefix} webhooks"
        )
    names = (f"{prefix}-Delivery-Id", f"{prefix}-Timestamp", f"{prefix}-Signature")
    values = tuple(request.headers.get(n, "") for n in names)
    if not all(values):
        raise WebhookRejectedError(400, "missing_headers", f"expected headers {', '.join(names)}")
    return values  # type: ignore[return-value]


async def read_body(request: Request) -> bytes:
    """Read the raw body; refuse it (413) past the configured size limit."""
    try:
        return await request.body()
    except BodyTooLargeError as exc:
        raise WebhookRejectedError(413, "body_too_large", str(exc)) from exc


def parse_json(raw: bytes, max_depth: int) -> Any:
    """Parse a delivery body with the bounded reader (depth, numbers, duplicate keys).

    Raises:
        WebhookRejectedError: 400 malformed; 422 too deep, a key given twice, or a
            value the reader refuses.
    """
    try:
        return loads_limited(raw, max_depth)
    except InputError as exc:
        raise WebhookRejectedError(exc.status, exc.code, str(exc)) from exc


def webhook_doc(model: type[BaseModel], prefix: str, *, mlflow: bool = False) -> dict[str, Any]:
    """Route keyword arguments describing a signed webhook operation in OpenAPI."""
    sig = "v1,<base64 HMAC-SHA256>" if mlflow else "sha256=<hex HMAC-SHA256>"
    headers = {
        f"{prefix}-Delivery-Id": "unique per delivery; retries resend it",
        f"{prefix}-Timestamp": "unix seconds, within the configured window",
        f"{prefix}-Signature": f'{sig} over "{{delivery id}}.{{timestamp}}.{{raw body}}"',
    }
    errors = (400, 401, 409, 413, 422, 503) + ((502,) if mlflow else ())
    return {
        "response_model": DeliveryResultV1,
        "responses": responses(*errors),
        "openapi_extra": json_body(model, headers=headers),
    }


def check_timestamp(value: str | None, max_age_s: int, *, now: float | None = None) -> int:
    """Parse a unix-seconds timestamp and refuse it outside +-``max_age_s``.

    Raises:
        WebhookRejectedError: missing, malformed, stale or from the future.
    """
    if not value or not value.strip().isdigit():
        raise WebhookRejectedError(400, "bad_timestamp", "timestamp header: expected unix seconds")
    stamp = int(value.strip())
    current = time.time() if now is None else now
    if stamp < current - max_age_s:
        raise WebhookRejectedError(
            400,
            "stale_timestamp",
            f"timestamp is {int(current - stamp)} s old; limit is {max_age_s} s",
        )
    if stamp > current + max_age_s:
        raise WebhookRejectedError(
            400, "future_timestamp", "timestamp is in the future beyond the allowed skew"
        )
    return stamp


def reject(
    svc: Service, source: str, exc: WebhookRejectedError, delivery_id: str | None = None
) -> JSONResponse:
    """Count, log (bounded) and answer a refused delivery."""
    svc.metrics.record_webhook(source, exc.reason)
    _log.warning(
        "webhook_rejected", source=source, reason=exc.reason, delivery_id=safe_id(delivery_id)
    )
    now = time.time()
    try:
        if svc.deliveries.first_rejection(source, exc.reason, now=now):
            minute = datetime.fromtimestamp(now - now % 60, UTC).strftime("%Y-%m-%dT%H:%MZ")
            payload = {
                "source": source,
                "reason": exc.reason,
                "status": exc.status,
                "minute": minute,
                "delivery_id": safe_id(delivery_id),
                "note": "first rejection for this source and reason in this minute; "
                "later ones are counted in metrics only",
            }
            svc.append(
                "webhook_rejected", {"name": f"webhook/{source}"}, f"webhook:{source}", payload
            )
    except Exception as exc2:  # the refusal stands even when the log is down
        _log.error("webhook_rejected_not_logged", source=source, error=type(exc2).__name__)
    return error_response(exc.status, "webhook_rejected", f"{exc.reason}: {exc}")


def _traced(fn: Callable[..., Awaitable[JSONResponse]]) -> Callable[..., Awaitable[JSONResponse]]:
    """Run a delivery inside its ``policyengine.webhook.delivery`` span."""

    async def run(request: Request, *args: Any) -> JSONResponse:
        with request.app.state.svc.metrics.tracing.span("policyengine.webhook.delivery"):
            return await fn(request, *args)

    return run


@_traced
async def deliver(
    request: Request,
    source: str,
    id_header: str,
    verify: Callable[[Service, Request, bytes], tuple[str, Any]],
    handle: Callable[[Service, Any, str], dict[str, Any]],
) -> JSONResponse:
    """Run one delivery: read, verify (claiming its id), handle, answer.

    ``verify`` raises :class:`WebhookRejectedError` or returns (delivery id,
    parsed event) with the id claimed; ``handle`` records the event. When
    handling fails the claim is released, so the sender's retry (same id) is
    processed rather than refused as a replay.
    """
    svc: Service = request.app.state.svc
    delivery_id = request.headers.get(id_header)
    try:
        raw = await read_body(request)
        delivery_id, event = await run_in_threadpool(verify, svc, request, raw)
    except WebhookRejectedError as exc:
        return await run_in_threadpool(reject, svc, source, exc, delivery_id)
    try:
        result = await run_in_threadpool(serialised(handle), svc, event, delivery_id)
    except Exception:
        await run_in_threadpool(svc.deliveries.release, f"{source}:{delivery_id}")
        svc.metrics.record_webhook(source, "failed")
        raise
    svc.metrics.record_webhook(source, result.get("result", "recorded"))
    answer = DeliveryResultV1.model_validate({"delivery_id": delivery_id, **result})
    return JSONResponse(answer.model_dump(mode="json", exclude_none=True))
