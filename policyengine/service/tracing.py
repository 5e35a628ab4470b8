"""OpenTelemetry traces of the service: the one seam everything else calls.

Owns the spans the service emits and how they reach a collector:

- one SERVER span per HTTP request (``TracingMiddleware``), continuing the
  caller's trace from its W3C ``traceparent``/``tracestate`` headers
  (W3C Trace Context, Level 1, s3);
- ``policyengine.decision`` around one gate run, with the bundle digest,
  the number of rules evaluated, the outcome and the duration as attributes;
- ``policyengine.log.append`` around each append (entry and checkpoint);
- ``policyengine.webhook.delivery`` around each registry webhook delivery.

Tracing is off unless an OTLP endpoint is configured (``tracing.endpoint``
in the service settings, or the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``); off, nothing here imports
OpenTelemetry and every call is a no-op, so neither the CLI nor an untraced
service pays for it. Each app has its own TracerProvider (never the global
one), so tests can build many apps in one process.

Not handled here: what is measured (``metrics`` calls this module) or HTTP
wiring beyond the middleware (``app``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from policyengine._version import __version__
from policyengine.errors import ConfigError
from policyengine.service.settings import TracingSettings

__all__ = ["Tracing", "TracingMiddleware", "open_tracing"]

_SCOPE = "policyengine.service"
_PROPAGATED = (b"traceparent", b"tracestate")
# A decision span stays open after its gate run until record_decision names
# its outcome (both run in the same thread and context, one after the other).
_PENDING: ContextVar[tuple[Any, int] | None] = ContextVar("policyengine_decision", default=None)


class _NoSpan:
    """What a span is when tracing is off: attributes go nowhere."""

    def set_attribute(self, key: str, value: Any) -> None:
        """Discard ``value``."""

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        """Discard ``attributes``."""


_NO_SPAN = _NoSpan()


class Tracing:
    """The spans of one app; every method is a no-op when ``provider`` is None."""

    def __init__(self, provider: Any = None) -> None:
        """Args: provider: an OpenTelemetry SDK TracerProvider, or None (off)."""
        self._provider = provider
        self._tracer = provider.get_tracer(_SCOPE, __version__) if provider else None

    @property
    def enabled(self) -> bool:
        """True when spans are recorded."""
        return self._tracer is not None

    @contextmanager
    def span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Any]:
        """A child of the current span; an exception is recorded on it and re-raised."""
        if self._tracer is None:
            yield _NO_SPAN
            return
        with self._tracer.start_as_current_span(name, attributes=dict(attributes or {})) as span:
            yield span

    def current(self) -> Any:
        """The current span (to add attributes to), or a no-op span."""
        if self._tracer is None:
            return _NO_SPAN
        from opentelemetry import trace

        return trace.get_current_span()

    @contextmanager
    def server_span(self, method: str, path: str, headers: Mapping[str, str]) -> Iterator[Any]:
        """The SERVER span of one request, in the trace its ``traceparent`` names."""
        if self._tracer is None:
            yield _NO_SPAN
            return
        from opentelemetry.trace import SpanKind
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        parent = TraceContextTextMapPropagator().extract(headers)
        attributes = {"http.request.method": method, "url.path": path}
        with self._tracer.start_as_current_span(
            method, context=parent, kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            yield span

    @contextmanager
    def decision(self) -> Iterator[None]:
        """Open ``policyengine.decision`` around a gate run; :meth:`decided` closes it."""
        if self._tracer is None:
            yield
            return
        from opentelemetry import context, trace
        from opentelemetry.trace import Status, StatusCode

        self.decided({})  # a decision never named (should not happen) is closed first
        span = self._tracer.start_span("policyengine.decision")
        token = context.attach(trace.set_span_in_context(span))
        try:
            yield
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.end()
            raise
        finally:
            context.detach(token)
        _PENDING.set((span, time.time_ns()))

    def decided(self, attributes: Mapping[str, Any]) -> None:
        """Name the outcome of the decision span just timed, and end it."""
        pending = _PENDING.get()
        if pending is None:
            return
        _PENDING.set(None)
        span, end_ns = pending
        start_ns = getattr(span, "start_time", None) or end_ns
        span.set_attributes(
            {**attributes, "policyengine.decision.duration_ms": (end_ns - start_ns) / 1e6}
        )
        span.end(end_time=end_ns)

    def shutdown(self) -> None:
        """Export what is buffered and stop the exporter."""
        if self._provider is not None:
            self._provider.shutdown()


def open_tracing(settings: TracingSettings, *, exporter: Any = None) -> Tracing:
    """Build the app's Tracing: off without an endpoint (and no ``exporter``).

    Args:
        settings: the service's tracing settings.
        exporter: a span exporter to use instead of OTLP (tests: the SDK's
            in-memory exporter), exported synchronously.

    Raises:
        ConfigError: an endpoint is configured but the ``otel`` extra is missing.
    """
    if exporter is None and settings.endpoint is None:
        return Tracing(None)
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as exc:
        raise ConfigError(
            f"tracing: an OTLP endpoint is configured but OpenTelemetry is not installed "
            f"({exc.name}); install it with pip install 'policyengine[otel]' or unset "
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        ) from exc
    # Resource.create merges OTEL_RESOURCE_ATTRIBUTES; the sampler follows
    # OTEL_TRACES_SAMPLER (default: parent-based, always on).
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # Headers, timeout, compression and certificates: OTEL_EXPORTER_OTLP_* (exporter spec).
        otlp = OTLPSpanExporter(endpoint=settings.endpoint)
        provider.add_span_processor(BatchSpanProcessor(otlp))
    return Tracing(provider)


class TracingMiddleware:
    """One SERVER span per HTTP request, named ``METHOD /route/{template}``."""

    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.tracing.enabled:
            await self.app(scope, receive, send)
            return
        headers = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in scope.get("headers") or []
            if k in _PROPAGATED
        }
        method = scope["method"]
        with self.tracing.server_span(method, scope["path"], headers) as span:
            status = 500
            # The access log line names the trace, so a log search leads to it.
            trace_id = format(span.get_span_context().trace_id, "032x")
            structlog.contextvars.bind_contextvars(trace_id=trace_id)

            async def send_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await self.app(scope, receive, send_status)
            finally:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:  # semconv: 4xx is the client's error, not the server span's
                    from opentelemetry.trace import Status, StatusCode

                    span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
                route = getattr(scope.get("route"), "path", None)
                if route:  # the template, never the raw path (bounded span names)
                    span.set_attribute("http.route", route)
                    span.update_name(f"{method} {route}")
                structlog.contextvars.unbind_contextvars("trace_id")
