"""Signed notifications to operators: violations, denials, failed verification.

Owns sending one JSON document per event to each configured endpoint that
wants that event, off the request path: :meth:`Notifier.notify` only puts
the notification on a bounded queue and returns; one background thread
delivers, retrying with exponential backoff (``backoff_seconds`` doubling up
to ``max_backoff_seconds``, at most ``max_attempts`` tries). A full queue
drops the notification. Nothing here can fail or delay a decision; every
outcome is counted (``sent``, ``failed`` after the last attempt, ``dropped``).

Each request is signed exactly as the service's generic webhook is verified
(``webhooks_generic``): headers ``X-PolicyEngine-Delivery-Id``,
``X-PolicyEngine-Timestamp`` (unix seconds) and ``X-PolicyEngine-Signature:
sha256=<hex HMAC-SHA256(secret, "{delivery id}.{timestamp}.{raw body}")>``, so
a receiver checks the bytes, the time window and replays the same way. The
body is ``NotificationV1`` (``format: json``) or ``{"text": ...}`` for
Slack-compatible incoming webhooks (``format: slack``).

Not handled here: deciding when to notify (``metrics`` observes decisions,
appends and failures and calls :meth:`Notifier.notify`).
"""

from __future__ import annotations

import contextlib
import heapq
import json
import queue
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from policyengine.service.settings import NotificationSettings, NotifyEndpoint
from policyengine.service.signing import generic_signature

__all__ = ["Notification", "Notifier", "signed_request"]

_log = structlog.get_logger("policyengine.service")
_STOP = object()

Count = Callable[[str, str], None]
"""Called with (event, result) for each delivery outcome: sent, failed, dropped."""


@dataclass(frozen=True)
class Notification:
    """One event to tell operators about."""

    event: str
    """violation | decision_denied | verification_failed."""
    summary: str
    """One line a person reads (the Slack text)."""
    subject: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    time: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds").replace(
            "+00:00", "Z"
        )
    )

    def body(self, fmt: str) -> bytes:
        """The request body in ``fmt`` (json | slack)."""
        if fmt == "slack":
            doc: dict[str, Any] = {"text": f"policyengine {self.event}: {self.summary}"}
        else:
            doc = {
                "apiVersion": "policyengine/v1",
                "kind": "Notification",
                "id": self.id,
                "event": self.event,
                "time": self.time,
                "summary": self.summary,
                "subject": dict(self.subject),
                "details": dict(self.details),
            }
        return json.dumps(doc, sort_keys=True, default=str).encode()


def signed_request(
    secret: str, delivery_id: str, body: bytes, *, now: float | None = None
) -> dict[str, str]:
    """Headers of one signed delivery of ``body``."""
    stamp = str(int(time.time() if now is None else now))
    return {
        "Content-Type": "application/json",
        "X-PolicyEngine-Delivery-Id": delivery_id,
        "X-PolicyEngine-Timestamp": stamp,
        "X-PolicyEngine-Signature": generic_signature(secret, delivery_id, stamp, body),
    }


@dataclass(order=True)
class _Attempt:
    due: float
    seq: int
    endpoint: NotifyEndpoint = field(compare=False)
    note: Notification = field(compare=False)
    tries: int = field(default=0, compare=False)


class Notifier:
    """A bounded queue and one delivery thread (started on first use)."""

    def __init__(
        self,
        settings: NotificationSettings,
        count: Count,
        *,
        send: Callable[[str, bytes, dict[str, str], float], int] | None = None,
    ) -> None:
        """Args: settings: endpoints, secret, retries; count: the metrics
        callback; send: (url, body, headers, timeout) -> HTTP status (tests)."""
        self._settings = settings
        self._count = count
        self._send = send or _post
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=settings.queue_size)
        self._retries: list[_Attempt] = []
        self._seq = 0
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self._closed = False

    @property
    def enabled(self) -> bool:
        """True when at least one endpoint is configured."""
        return bool(self._settings.endpoints)

    def depth(self) -> int:
        """Notifications waiting (queued or due for a retry)."""
        return self._queue.qsize() + len(self._retries)

    def notify(self, note: Notification) -> None:
        """Queue ``note`` for every endpoint that wants its event; never blocks or raises."""
        if not self.enabled:
            return
        if self._closed:
            self._count(note.event, "dropped")
            return
        self._ensure_thread()
        try:
            self._queue.put_nowait(note)
        except queue.Full:
            self._count(note.event, "dropped")
            _log.warning("notification_dropped", notification_event=note.event, reason="queue_full")

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread; what is still waiting is counted as dropped."""
        self._closed = True
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout)
        self._thread.join(timeout)

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="policyengine-notify", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            wait = None if not self._retries else max(0.0, self._retries[0].due - time.monotonic())
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                item = None
            if item is _STOP:
                self._drop_waiting()
                return
            if isinstance(item, Notification):
                for endpoint in self._settings.endpoints:
                    if item.event in endpoint.events:
                        self._attempt(_Attempt(0.0, self._next(), endpoint, item))
            while self._retries and self._retries[0].due <= time.monotonic():
                self._attempt(heapq.heappop(self._retries))

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _attempt(self, attempt: _Attempt) -> None:
        attempt.tries += 1
        note, endpoint = attempt.note, attempt.endpoint
        body = note.body(endpoint.format)
        headers = signed_request(str(self._settings.secret), note.id, body)
        try:
            status = self._send(endpoint.url, body, headers, self._settings.timeout_s)
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except Exception as exc:  # any failure to deliver is retried, then counted
            error = type(exc).__name__
        if error is None:
            self._count(note.event, "sent")
            return
        if attempt.tries >= self._settings.max_attempts:
            self._count(note.event, "failed")
            _log.warning(
                "notification_failed", notification_event=note.event, error=error,
                attempts=attempt.tries,
            )
            return
        backoff = self._settings.backoff_s * 2 ** (attempt.tries - 1)
        delay = min(self._settings.max_backoff_s, backoff)
        attempt.due, attempt.seq = time.monotonic() + delay, self._next()
        heapq.heappush(self._retries, attempt)

    def _drop_waiting(self) -> None:
        for attempt in self._retries:
            self._count(attempt.note.event, "dropped")
        self._retries.clear()
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, Notification):
                self._count(item.event, "dropped")


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    import httpx

    return httpx.post(url, content=body, headers=headers, timeout=timeout).status_code
