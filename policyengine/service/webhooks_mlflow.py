"""``POST /v1/webhooks/mlflow``: MLflow 3 model registry webhooks.

Owns the delivery checks, in this order, each refusing with a 4xx and a
bounded ``webhook_rejected`` entry (see ``webhooks_common``):

1. body size limit;
2. headers ``X-MLflow-Delivery-Id``, ``X-MLflow-Timestamp`` (unix seconds) and
   ``X-MLflow-Signature: v1,<base64 HMAC-SHA256(secret,
   "{delivery_id}.{timestamp}.{raw body}")>``, computed over the raw bytes as
   MLflow sends them and compared in constant time (hmac.compare_digest);
3. timestamp within 300 s (configurable);
4. JSON within the depth limit, envelope ``{entity, action, timestamp, data}``;
5. the delivery id claimed once across every service process (a replay, or
   a retry of an already processed delivery, is refused with 409).

What each event means for the log is in ``mlflow_events``. MLflow treats
webhooks as notifications and ignores the response body; a 5xx makes it retry
(same delivery id), so a delivery whose processing failed is un-claimed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from policyengine.service.limits import InputError, loads_limited
from policyengine.service.runtime import Service
from policyengine.service.webhooks_common import (
    WebhookRejectedError,
    check_timestamp,
    deliver,
    signed_headers,
)

__all__ = ["mlflow_signature", "router", "verify_mlflow_signature"]

router = APIRouter(tags=["webhooks"])
_log = structlog.get_logger("policyengine.service")
_SOURCE = "mlflow"
_SIGNATURE_VERSION = "v1"
# Fields each handled event needs in ``data`` (mlflow.webhooks.types payloads).
_REQUIRED: dict[str, tuple[str, ...]] = {
    "model_version.created": ("name", "version"),
    "model_version_tag.set": ("name", "version", "key"),
    "model_version_alias.created": ("name", "alias", "version"),
    "model_version_alias.deleted": ("name", "alias"),
}


def mlflow_signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """Return the ``X-MLflow-Signature`` value MLflow computes for a delivery."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).digest()
    return f"{_SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def verify_mlflow_signature(
    secret: str, delivery_id: str, timestamp: str, body: bytes, header: str
) -> None:
    """Check ``X-MLflow-Signature`` against the raw body in constant time.

    Raises:
        WebhookRejectedError: 401 when the signature is absent or wrong.
    """
    expected = mlflow_signature(secret, delivery_id, timestamp, body)
    # The header may list several comma-separated "v1,<sig>" pairs during rotation.
    parts = [p.strip() for p in header.split(",")]
    candidates = [f"{parts[i]},{parts[i + 1]}" for i in range(0, len(parts) - 1, 2)]
    ok = False
    for candidate in candidates:
        ok |= hmac.compare_digest(candidate.encode(), expected.encode())
    if not ok:
        raise WebhookRejectedError(
            401, "bad_signature", "X-MLflow-Signature does not match the body"
        )


def _envelope(raw: bytes, max_depth: int) -> dict[str, Any]:
    try:
        doc = loads_limited(raw, max_depth)
    except InputError as exc:
        raise WebhookRejectedError(exc.status, exc.code, str(exc)) from exc
    ok = (
        isinstance(doc, dict)
        and isinstance(doc.get("entity"), str)
        and isinstance(doc.get("action"), str)
        and isinstance(doc.get("data"), dict)
    )
    if not ok:
        raise WebhookRejectedError(
            422, "invalid_envelope", "expected {entity: str, action: str, timestamp, data: object}"
        )
    event = f"{doc['entity']}.{doc['action']}"
    missing = [k for k in _REQUIRED.get(event, ()) if not isinstance(doc["data"].get(k), str | int)]
    if missing:
        raise WebhookRejectedError(
            422, "invalid_envelope", f"{event}: data is missing {', '.join(missing)}"
        )
    return doc


def _verified(svc: Service, request: Request, raw: bytes) -> tuple[str, dict[str, Any]]:
    secret = svc.settings.mlflow.secret
    delivery_id, timestamp, signature = signed_headers(request, "X-MLflow", secret)
    verify_mlflow_signature(str(secret), delivery_id, timestamp, raw, signature)
    check_timestamp(timestamp, svc.settings.webhook_max_age_s)
    envelope = _envelope(raw, svc.settings.limits.max_json_depth)
    if not svc.deliveries.claim(f"{_SOURCE}:{delivery_id}"):
        raise WebhookRejectedError(409, "replayed_delivery", "delivery id already processed")
    return delivery_id, envelope


@router.post("/v1/webhooks/mlflow", summary="MLflow 3 registry webhook")
async def mlflow_webhook(request: Request) -> JSONResponse:
    """Verify, de-duplicate and record one MLflow registry webhook delivery."""
    from policyengine.service.mlflow_events import handle_event

    return await deliver(request, _SOURCE, "x-mlflow-delivery-id", _verified, handle_event)
