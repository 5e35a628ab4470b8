"""Admin endpoints: redaction and legal holds (``admin`` role only).

Each handler parses its ``wire`` body and calls :mod:`policyengine.retention`,
the same functions as ``policyengine audit redact|hold|release``. The log's
retention rules decide: a payload inside the retention floor or under a legal
hold is refused with 409 ``retention_refused`` and the reason; an unknown
entry or an entry the log wrote itself with 422 ``bad_input``. Nothing is
written when a request is refused; what is written shows in every timeline.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from policyengine import retention
from policyengine.service.auth import Principal, require
from policyengine.service.limits import parse_body
from policyengine.service.runtime import Service
from policyengine.service.wire import (
    HoldRequestV1,
    RedactionRequestV1,
    ReleaseRequestV1,
    RetentionRecordedV1,
    json_body,
    responses,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1/admin", tags=["admin"])
Admin = Annotated[Principal, Depends(require("admin"))]
_ERRORS = (400, 401, 403, 409, 413, 422, 503)


def _run(request: Request, fn: Any, **kwargs: Any) -> Any:
    svc: Service = request.app.state.svc

    def call() -> Any:
        with svc.writers:
            return fn(svc.engine, **kwargs)

    return run_in_threadpool(call)


def _answer(result: retention.RetentionResult) -> JSONResponse:
    view = RetentionRecordedV1.model_validate(result.to_dict())
    return JSONResponse(view.model_dump(mode="json"), status_code=201)


@router.post("/redactions", status_code=201, summary="Redact one entry's payload",
             response_model=RetentionRecordedV1, responses=responses(*_ERRORS),
             openapi_extra=json_body(RedactionRequestV1))
async def post_redaction(request: Request, who: Admin) -> JSONResponse:
    """``policyengine audit redact SEQ --reason``; 409 inside the floor or under hold."""
    body = await parse_body(request, RedactionRequestV1)
    return _answer(await _run(request, retention.redact, seq=body.seq, reason=body.reason,
                              actor=who.id))


@router.post("/holds", status_code=201, summary="Place a legal hold",
             response_model=RetentionRecordedV1, responses=responses(*_ERRORS),
             openapi_extra=json_body(HoldRequestV1))
async def post_hold(request: Request, who: Admin) -> JSONResponse:
    """``policyengine audit hold MODEL|SEQ --reason``; the response's seq is the hold id."""
    body = await parse_body(request, HoldRequestV1)
    return _answer(await _run(request, retention.hold, model=body.model, version=body.version,
                              seq=body.seq, reason=body.reason, actor=who.id))


@router.post("/releases", status_code=201, summary="Release a legal hold",
             response_model=RetentionRecordedV1, responses=responses(*_ERRORS),
             openapi_extra=json_body(ReleaseRequestV1))
async def post_release(request: Request, who: Admin) -> JSONResponse:
    """``policyengine audit release HOLD_ID``; 409 when the hold is no longer active."""
    body = await parse_body(request, ReleaseRequestV1)
    return _answer(await _run(request, retention.release, hold_id=body.hold_id,
                              reason=body.reason, actor=who.id))
