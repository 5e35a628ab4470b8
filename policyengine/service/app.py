"""The FastAPI application factory of ``policyengine serve``.

Owns wiring only: routers, the request-id and access-log middleware, the
size-limit middleware, the error handlers, health and metrics endpoints,
and the app's tracing (``tracing``) and notifier (``notify``), handed to the
metrics that observe decisions and appends.
Handlers live in ``audit_routes`` (reads), ``write_routes`` (decisions,
approvals, waivers, promotions, events), ``webhooks_mlflow`` and
``webhooks_generic``; what they call lives in the library (``gate``,
``approvals``, ``promote``, ``history``), reached through ``operations``.

OpenAPI is published at ``/openapi.json`` (docs at ``/docs``): every request
and response body is a ``wire`` model the handlers themselves use, every
protected operation names the bearer scheme, and every error status an
operation can answer is listed with the ``ErrorV1`` body.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TextIO

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from policyengine import __version__
from policyengine.service.limits import SizeLimitMiddleware, install_error_handlers
from policyengine.service.metrics import CONTENT_TYPE_LATEST
from policyengine.service.notify import Notifier
from policyengine.service.runtime import Service, open_service
from policyengine.service.settings import ServiceSettings, load_service_settings
from policyengine.service.tracing import Tracing, TracingMiddleware, open_tracing
from policyengine.service.wire import HealthV1, ReadyV1, request_models

if TYPE_CHECKING:
    from policyengine.config import Config

__all__ = ["configure_logging", "create_app", "create_app_from_env"]

_log = structlog.get_logger("policyengine.service")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def configure_logging(level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """JSON log lines (structlog) on ``stream`` (default stderr), one per event."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )


class RequestContextMiddleware:
    """Gives each request an id (``X-Request-Id``) and logs one access line.

    The access line has method, path, status, duration and the authenticated
    actor; never headers, query values or bodies (they may hold secrets or
    sensitive card data).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            state = scope.get("state") or {}
            _log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - start) * 1000, 2),
                actor=state.get("actor"),
            )
            structlog.contextvars.unbind_contextvars("request_id")


_METRICS: dict[int | str, dict[str, Any]] = {
    200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}
}


def _add_health(app: FastAPI) -> None:
    @app.get("/healthz", tags=["health"], summary="Liveness", response_model=HealthV1)
    def healthz() -> HealthV1:
        """The process is up."""
        return HealthV1(status="ok")

    @app.get(
        "/readyz",
        tags=["health"],
        summary="Readiness: log and keys usable",
        response_model=ReadyV1,
        responses={503: {"model": ReadyV1, "description": "The log or the key is unusable"}},
    )
    def readyz(request: Request) -> JSONResponse:
        """200 only when the log answers and the signing key signs."""
        ok, reason = request.app.state.svc.ready()
        view = ReadyV1(status="ready" if ok else "not_ready", reason=reason)
        return JSONResponse(view.model_dump(mode="json"), 200 if ok else 503)

    @app.get(
        "/metrics",
        tags=["health"],
        summary="Prometheus metrics",
        response_class=Response,
        responses=_METRICS,
    )
    def metrics(request: Request) -> Response:
        """Counters and histograms in the Prometheus text format."""
        return Response(request.app.state.svc.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def _publish_request_bodies(app: FastAPI) -> None:
    """Add the request models (``wire.json_body``) to the document's components.

    Handlers read their bodies themselves (size, depth and duplicate-key limits
    come first), so FastAPI does not see them as body parameters; the schemas
    are generated here from the same models the handlers validate with.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = build()
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for model in request_models():
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    config: Config,
    settings: ServiceSettings | None = None,
    *,
    service: Service | None = None,
    tracing: Tracing | None = None,
) -> FastAPI:
    """Build the service application.

    Args:
        config: the gate configuration (log URL, signing key, policies, trust).
        settings: service settings (tokens, webhook secrets, MLflow); read
            from ``POLICYENGINE_SERVICE_CONFIG`` when omitted.
        service: prebuilt shared state (tests); opened from ``config`` when omitted.
        tracing: span export (tests); from ``settings.tracing`` when omitted.

    Raises:
        PolicyEngineError, AuditError: the log or the signing key is unusable.
        ConfigError: tracing is configured but OpenTelemetry is not installed.
    """
    from policyengine.service import (
        admin_routes,
        audit_routes,
        pages,
        webhooks_generic,
        webhooks_mlflow,
        write_routes,
    )
    from policyengine.service.admission import router as admission_router

    settings = settings or load_service_settings(config_file=config.config_file)
    tracing = tracing or open_tracing(settings.tracing)
    svc = service or open_service(config, settings)
    notifier = Notifier(settings.notifications, svc.metrics.count_notification)
    svc.metrics.attach(tracing, notifier)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Once per worker process, when it starts taking requests (serve's workers
        # each say so; bench_service.py waits for all of them).
        _log.info("worker_ready", pid=os.getpid(), engine=settings.engine)
        yield
        notifier.close()
        svc.close()
        tracing.shutdown()

    app = FastAPI(title="policyengine", version=__version__, lifespan=lifespan)
    app.state.svc = svc
    app.state.tokens = svc.tokens
    app.state.limits = settings.limits
    install_error_handlers(app)
    for module in (write_routes, audit_routes, admin_routes, webhooks_mlflow, webhooks_generic):
        app.include_router(module.router)
    app.include_router(admission_router)  # POST /v1/admission/kubernetes
    pages.install(app, svc)
    _add_health(app)
    _publish_request_bodies(app)
    app.add_middleware(SizeLimitMiddleware, max_bytes=settings.limits.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(TracingMiddleware, tracing=tracing)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for uvicorn workers: configuration from environment variables.

    ``policyengine serve`` exports its configuration flags as JSON in
    ``POLICYENGINE_SERVE_FLAGS`` (and ``POLICYENGINE_SERVICE_CONFIG``,
    ``POLICYENGINE_ENGINE``, ``POLICYENGINE_LOG_LEVEL``) before starting
    workers, so every worker resolves the same configuration; the usual
    variables (``POLICYENGINE_LOG_URL`` ...) apply beneath the flags. Each
    worker opens its own log handle and key and compiles the policies of the
    stages its settings name before it serves (:meth:`Service.prepare`).
    """
    from policyengine.config import load_config

    level = os.environ.get("POLICYENGINE_LOG_LEVEL", "info").upper()
    configure_logging(logging.getLevelNamesMapping().get(level, logging.INFO))
    flags: dict[str, Any] = json.loads(os.environ.get("POLICYENGINE_SERVE_FLAGS") or "{}")
    config = load_config(flags, env=dict(os.environ))
    settings = load_service_settings(config_file=config.config_file)
    svc = open_service(config, settings)
    try:
        svc.prepare()  # this worker's own compilation, before it accepts a request
    except BaseException:
        svc.close()
        raise
    return create_app(config, settings, service=svc)
