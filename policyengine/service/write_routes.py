"""Write endpoints: decisions, approvals, waivers, promotions, lifecycle events.

Owns the role each needs: ``evaluator`` for decisions, promotions and events, ``approver`` for
approvals and waivers (``admin`` for all). The authenticated token's id is the
actor recorded in the log; for approvals and waivers it is also the approver
named in the signed statement. Each handler parses, calls the library through
``operations`` (the same functions as the CLI commands) and serializes. The
request and response shapes are the ``wire`` models, which the published
OpenAPI names; a body with a duplicate object key is refused (RFC 8259 s4:
names SHOULD be unique, and a signed statement must mean one thing).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from policyengine.service import operations
from policyengine.service.auth import Principal, require
from policyengine.service.limits import parse_body, parse_bytes
from policyengine.service.runtime import Service
from policyengine.service.wire import (
    ApprovalRequestV1,
    DecisionRequestV1,
    DecisionResponseV1,
    EventRequestV1,
    PromotionRequestV1,
    RecordedV1,
    StatementRecordedV1,
    WaiverRequestV1,
    json_body,
    responses,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["write"])
Evaluator = Annotated[Principal, Depends(require("evaluator"))]
Approver = Annotated[Principal, Depends(require("approver"))]


def _svc(request: Request) -> Service:
    return request.app.state.svc  # type: ignore[no-any-return]


M = TypeVar("M", bound=BaseModel)
_ERRORS = (400, 401, 403, 413, 422, 503)


def _answer(model: BaseModel, status: int = 200) -> Response:
    # Encoded once by pydantic-core: the decision and receipt are plain JSON
    # already; a dump to Python objects and json.dumps would walk them twice.
    return Response(model.model_dump_json(), status_code=status, media_type="application/json")


@router.post(
    "/decisions",
    summary="Decide a card and event; log it; return Decision + receipt",
    response_model=DecisionResponseV1,
    responses=responses(*_ERRORS),
    openapi_extra=json_body(DecisionRequestV1),
)
async def post_decision(request: Request, who: Evaluator) -> Response:
    """Same semantics as ``policyengine gate CARD --to STAGE --event TYPE``."""
    raw = await request.body()
    depth = request.app.state.limits.max_json_depth
    # Parsing, the decision and the encoding all run in a worker thread: the
    # event loop only moves bytes, so it keeps accepting while decisions run.
    return await run_in_threadpool(_decide, _svc(request), raw, depth, who.id)


def _decide(svc: Service, raw: bytes, depth: int, actor: str) -> Response:
    body = parse_bytes(raw, depth, DecisionRequestV1)
    outcome = operations.serialised(operations.decide)(
        svc, body.card, body.event.model_dump(), actor
    )
    return _answer(
        DecisionResponseV1(
            allow=outcome.allow,
            decision=outcome.decision,
            seq=outcome.seq,
            checkpoint_size=outcome.checkpoint_size,
            receipt=outcome.receipt,  # type: ignore[arg-type]
        )
    )


async def _record(
    request: Request, model: type[BaseModel], fn: Any, actor: str, answer: type[BaseModel]
) -> Response:
    body = await parse_body(request, model)
    result = await run_in_threadpool(
        operations.serialised(fn), _svc(request), body.model_dump(), actor
    )
    return _answer(answer.model_validate(result), 201)


@router.post(
    "/approvals",
    status_code=201,
    summary="Record an approval by the caller (refused unless it counts)",
    response_model=StatementRecordedV1,
    responses=responses(*_ERRORS),
    openapi_extra=json_body(ApprovalRequestV1),
)
async def post_approval(request: Request, who: Approver) -> Response:
    """Same semantics as ``policyengine approve``; the caller is the approver.

    A statement that would not count at the gate (bad signature, untrusted
    key, role not held, unreadable or past times) is refused with 422.
    """
    return await _record(
        request, ApprovalRequestV1, operations.approve, who.id, StatementRecordedV1
    )


@router.post(
    "/waivers",
    status_code=201,
    summary="Record a waiver granted by the caller (refused unless it counts)",
    response_model=StatementRecordedV1,
    responses=responses(*_ERRORS),
    openapi_extra=json_body(WaiverRequestV1),
)
async def post_waiver(request: Request, who: Approver) -> Response:
    """Same semantics as ``policyengine waive``; the caller is the approver."""
    return await _record(request, WaiverRequestV1, operations.waive, who.id, StatementRecordedV1)


@router.post(
    "/promotions",
    status_code=201,
    summary="Record a promotion justified by an allow",
    response_model=RecordedV1,
    responses=responses(*_ERRORS, 409),
    openapi_extra=json_body(PromotionRequestV1),
)
async def post_promotion(request: Request, who: Evaluator) -> Response:
    """Same semantics as ``policyengine promote``: 409 when the log holds no matching allow."""
    return await _record(request, PromotionRequestV1, operations.promotion, who.id, RecordedV1)


@router.post(
    "/events",
    status_code=201,
    summary="Record a lifecycle event",
    response_model=RecordedV1,
    responses=responses(*_ERRORS),
    openapi_extra=json_body(EventRequestV1),
)
async def post_event(request: Request, who: Evaluator) -> Response:
    """Same semantics as ``policyengine event TYPE``."""
    return await _record(request, EventRequestV1, operations.lifecycle_event, who.id, RecordedV1)
