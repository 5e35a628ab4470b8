"""Write endpoints: decisions, approvals, waivers, promotions, lifecycle events.

Owns their wire schemas (pydantic, JSON-path errors on 422) and the role each
needs: ``evaluator`` for decisions, promotions and events, ``approver`` for
approvals and waivers (``admin`` for all). The authenticated token's id is the
actor recorded in the log; for approvals and waivers it is also the approver
named in the signed statement. Each handler parses, calls the library through
``operations`` (the same functions as the CLI commands) and serializes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from policyengine.service import operations
from policyengine.service.auth import Principal, require
from policyengine.service.limits import parse_body
from policyengine.service.runtime import Service

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["write"])
Evaluator = Annotated[Principal, Depends(require("evaluator"))]
Approver = Annotated[Principal, Depends(require("approver"))]

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._/@:+-]{0,199}$"
_VERSION = r"^[A-Za-z0-9._+-]{1,100}$"
_DIGEST = r"^sha256:[0-9a-f]{64}$"
_STAGE = r"^[a-z][a-z0-9_-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventV1(_Strict):
    """The intent evaluated: an event type and the target stage."""

    type: str = Field(default="promote", pattern=r"^(promote|register|rollback|retire)$")
    stage: str = Field(pattern=_STAGE)


class DecisionRequestV1(_Strict):
    """``POST /v1/decisions``: a model card and the event to decide."""

    card: dict[str, Any]
    event: EventV1


class SignatureV1(_Strict):
    """An Ed25519 signature over the statement's RFC 8785 bytes (see approvals.py)."""

    key_id: str = Field(pattern=r"^[0-9a-f]{8}$")
    sig: str = Field(min_length=8, max_length=200)


class ApprovalRequestV1(_Strict):
    """``POST /v1/approvals``: approval of one artifact in one role by the caller."""

    model: str = Field(pattern=_NAME)
    version: str = Field(pattern=_VERSION)
    digest: str = Field(pattern=_DIGEST)
    role: str = Field(min_length=1, max_length=100)
    expires: str | None = Field(default=None, description="duration (30d) or RFC 3339 time")
    time: str | None = Field(default=None, description="statement time; required when signed")
    signature: SignatureV1 | None = None
    note: str | None = Field(default=None, max_length=2000)


class WaiverRequestV1(_Strict):
    """``POST /v1/waivers``: a waiver of rules for a model (version or range)."""

    rules: list[str] = Field(min_length=1, max_length=100)
    model: str = Field(pattern=_NAME)
    version: str | None = Field(default=None, pattern=_VERSION)
    versions: str | None = Field(default=None, max_length=100)
    reason: str = Field(min_length=1, max_length=2000)
    ticket: str = Field(min_length=1, max_length=200)
    expires: str = Field(description="duration (30d) or RFC 3339 date/time")
    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    time: str | None = None
    signature: SignatureV1 | None = None


class PromotionRequestV1(_Strict):
    """``POST /v1/promotions``: record a promotion the log justifies."""

    model: str = Field(pattern=_NAME)
    version: str = Field(pattern=_VERSION)
    digest: str = Field(pattern=_DIGEST)
    stage: str = Field(pattern=_STAGE)


class EventRequestV1(_Strict):
    """``POST /v1/events``: a lifecycle event (registered, rolled_back, ...)."""

    type: str = Field(pattern=r"^[a-z][a-z_]{0,63}$")
    model: str = Field(pattern=_NAME)
    version: str | None = Field(default=None, pattern=_VERSION)
    digest: str | None = Field(default=None, pattern=_DIGEST)
    stage: str | None = Field(default=None, pattern=_STAGE)
    data: dict[str, Any] = {}


def _svc(request: Request) -> Service:
    return request.app.state.svc  # type: ignore[no-any-return]


@router.post("/decisions", summary="Decide a card and event; log it; return Decision + receipt")
async def post_decision(request: Request, who: Evaluator) -> JSONResponse:
    """Same semantics as ``policyengine gate CARD --to STAGE --event TYPE``."""
    body = await parse_body(request, DecisionRequestV1)
    outcome = await run_in_threadpool(
        operations.serialised(operations.decide),
        _svc(request),
        body.card,
        body.event.model_dump(),
        who.id,
    )
    # JSONResponse directly: the Decision and receipt are plain JSON already, and
    # FastAPI's generic encoder would walk them again (a few ms per decision).
    return JSONResponse(
        {
            "allow": outcome.allow,
            "decision": outcome.decision,
            "seq": outcome.seq,
            "checkpoint_size": outcome.checkpoint_size,
            "receipt": outcome.receipt,
        }
    )


async def _record(request: Request, model: type[BaseModel], fn: Any, actor: str) -> JSONResponse:
    body = await parse_body(request, model)
    result = await run_in_threadpool(
        operations.serialised(fn), _svc(request), body.model_dump(), actor
    )
    return JSONResponse(result, status_code=201)


@router.post("/approvals", status_code=201, summary="Record an approval by the caller")
async def post_approval(request: Request, who: Approver) -> JSONResponse:
    """Same semantics as ``policyengine approve``; the caller is the approver."""
    return await _record(request, ApprovalRequestV1, operations.approve, who.id)


@router.post("/waivers", status_code=201, summary="Record a waiver granted by the caller")
async def post_waiver(request: Request, who: Approver) -> JSONResponse:
    """Same semantics as ``policyengine waive``; the caller is the approver."""
    return await _record(request, WaiverRequestV1, operations.waive, who.id)


@router.post("/promotions", status_code=201, summary="Record a promotion justified by an allow")
async def post_promotion(request: Request, who: Evaluator) -> JSONResponse:
    """Same semantics as ``policyengine promote``: 409 when the log holds no matching allow."""
    return await _record(request, PromotionRequestV1, operations.promotion, who.id)


@router.post("/events", status_code=201, summary="Record a lifecycle event")
async def post_event(request: Request, who: Evaluator) -> JSONResponse:
    """Same semantics as ``policyengine event TYPE``."""
    return await _record(request, EventRequestV1, operations.lifecycle_event, who.id)
