"""``POST /v1/webhooks/generic``: a signed JSON event for registries other than MLflow.

Owns the documented format and its checks. Headers:

- ``X-PolicyEngine-Delivery-Id``: unique per delivery (retries resend it);
- ``X-PolicyEngine-Timestamp``: unix seconds, within 300 s of the server clock;
- ``X-PolicyEngine-Signature``: ``sha256=<hex HMAC-SHA256(secret,
  "{delivery_id}.{timestamp}.{raw body}")>``, over the raw bytes.

Body (``GenericEventV1``)::

    {"type": "registered" | "stage_changed" | <any other lifecycle word>,
     "model": "fraud-detector", "version": "7", "digest": "sha256:<64 hex>",
     "stage": "production",          # stage_changed: the stage it moved to
     "card": {...},                  # registered: evaluated by register policies
     "actor": "alice@example.com",   # who acted in the registry (recorded as reported)
     "data": {...}}                  # anything else; recorded only by its digest

``registered`` with a card is evaluated like ``policyengine gate --event
register``. ``stage_changed`` is checked like ``policyengine promote``: with an
allow it is recorded as ``promoted``; without one a ``violation`` is recorded
and the response says ``"action": "revert"`` so the registry can undo it
(this endpoint cannot reach the registry). Both go through the registry flow
(``policyengine.registry``) the MLflow webhook uses. Anything else is recorded as
``webhook_received``. Refusals behave as for MLflow (``webhooks_common``).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from audit.canonical import dumps
from policyengine import registry
from policyengine.cards.validate import validate_card
from policyengine.service.runtime import Service
from policyengine.service.signing import generic_signature
from policyengine.service.webhooks_common import (
    WebhookRejectedError,
    check_timestamp,
    deliver,
    parse_json,
    signed_headers,
    webhook_doc,
)
from policyengine.service.wire import GenericEventV1

__all__ = ["GenericEventV1", "generic_signature", "router"]

router = APIRouter(tags=["webhooks"])
_SOURCE = "generic"


def _parse(raw: bytes, max_depth: int) -> GenericEventV1:
    doc = parse_json(raw, max_depth)
    try:
        return GenericEventV1.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        raise WebhookRejectedError(422, "invalid_event", f"{path}: {first['msg']}") from exc


def _verified(svc: Service, request: Request, raw: bytes) -> tuple[str, GenericEventV1]:
    secret = svc.settings.generic_secret
    delivery_id, timestamp, signature = signed_headers(request, "X-PolicyEngine", secret)
    expected = generic_signature(str(secret), delivery_id, timestamp, raw)
    if not hmac.compare_digest(signature.strip().encode(), expected.encode()):
        raise WebhookRejectedError(
            401, "bad_signature", "X-PolicyEngine-Signature does not match the body"
        )
    check_timestamp(timestamp, svc.settings.webhook_max_age_s)
    event = _parse(raw, svc.settings.limits.max_json_depth)
    if not svc.deliveries.claim(f"{_SOURCE}:{delivery_id}"):
        raise WebhookRejectedError(409, "replayed_delivery", "delivery id already processed")
    return delivery_id, event


def _subject(ev: GenericEventV1) -> dict[str, str]:
    subject = {"name": ev.model}
    if ev.version:
        subject["version"] = ev.version
    if ev.digest:
        subject["digest"] = ev.digest
    return subject


def _base_payload(ev: GenericEventV1, delivery_id: str) -> dict[str, Any]:
    return {
        "source": _SOURCE,
        "delivery_id": delivery_id,
        "event": ev.type,
        "stage": ev.stage,
        "reported_actor": ev.actor,
        "data_digest": "sha256:" + hashlib.sha256(dumps(ev.data)).hexdigest(),
    }


def handle_generic(svc: Service, ev: GenericEventV1, delivery_id: str) -> dict[str, Any]:
    """Record, and where the type calls for it evaluate or check, one event."""
    actor = f"webhook:{_SOURCE}"
    payload = _base_payload(ev, delivery_id)
    if ev.type == "registered" and ev.card is not None and ev.version:
        # Refuse an invalid card (422 with JSON paths) before anything is written.
        validate_card(ev.card, source="$.card")
        target = registry.Version(ev.model, ev.version, registry.card_digest(ev.card), actor)
        outcome = registry.registered(svc.engine, target, ev.card, data=payload, details=payload)
        if outcome.decision is None:
            return {"result": "violation", "seqs": outcome.seqs}
        return {"result": "evaluated", "decision": outcome.decision, "seqs": outcome.seqs}
    if ev.type == "stage_changed" and ev.stage and ev.version and ev.digest:
        target = registry.Version(ev.model, ev.version, ev.digest, actor)
        check = registry.moved(
            svc.engine, target, ev.stage, kind="stage_without_allow", details=payload
        )
        if check.allowed:
            return {"result": "kept", "allowed": True, "seqs": check.seqs}
        # This endpoint cannot reach the registry: the response says what to undo.
        return {"result": "violation", "allowed": False, "action": "revert", "seqs": check.seqs}
    seq = svc.append("webhook_received", _subject(ev), actor, payload | {"evaluated": False}).seq
    return {"result": "recorded", "seqs": [seq]}


@router.post(
    "/v1/webhooks/generic",
    summary="Generic HMAC-signed registry webhook",
    **webhook_doc(GenericEventV1, "X-PolicyEngine"),
)
async def generic_webhook(request: Request) -> JSONResponse:
    """Verify, de-duplicate and record one generic webhook delivery."""
    return await deliver(request, _SOURCE, "x-policyengine-delivery-id", _verified, handle_generic)
