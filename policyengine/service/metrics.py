"""Prometheus metrics of the HTTP service, served at ``GET /metrics``.

Owns the metric names and labels. Each app gets its own registry, so tests
can build many apps in one process. Label values come from closed sets
(decision outcomes, rule results, configured stages, webhook results) or from
policy names in the loaded bundle, never from request data, so cardinality is
bounded. With several worker processes each reports its own counters; the
log size gauge reads the shared log, so it agrees across workers.

Also the service's one point of observation: what it records here it hands
to the app's tracing (``tracing``: decision and append spans) and notifier
(``notify``: denials, ``violation`` entries, failed verification), attached
by the app with :meth:`ServiceMetrics.attach`. Until then both are off.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from policyengine.service.settings import NOTIFY_EVENTS
from policyengine.service.tracing import Tracing

__all__ = ["CONTENT_TYPE_LATEST", "ServiceMetrics"]

# Buckets (seconds) sized for sub-millisecond CEL rules up to slow database commits.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServiceMetrics:
    """The service's counters, histograms and gauges over one registry."""

    def __init__(self, log_size: Callable[[], int] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.decisions = Counter(
            "policyengine_decisions",
            "Decisions made, by outcome (allow|deny) and lifecycle event.",
            ["outcome", "event"],
            registry=self.registry,
        )
        self.policy_results = Counter(
            "policyengine_policy_decisions",
            "Decisions by policy: allow when none of the policy's enforced rules failed.",
            ["policy", "outcome"],
            registry=self.registry,
        )
        self.evaluation_seconds = Histogram(
            "policyengine_evaluation_seconds",
            "Wall time of one full decision (history, evaluation, append, checkpoint).",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.append_seconds = Histogram(
            "policyengine_log_append_seconds",
            "Wall time of appending entries to the audit log.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.webhook_deliveries = Counter(
            "policyengine_webhook_deliveries",
            "Webhook deliveries by source (mlflow|generic) and result.",
            ["source", "result"],
            registry=self.registry,
        )
        self.log_size = Gauge(
            "policyengine_log_size",
            "Number of entries in the audit log.",
            registry=self.registry,
        )
        if log_size is not None:
            self.log_size.set_function(lambda: float(_safe(log_size)))
        self.log_commits = Gauge(
            "policyengine_log_commits",
            "Append transactions this process committed since it started; each carries a "
            "group of concurrent appends (audit._group), so appends / commits is the group size.",
            registry=self.registry,
        )
        self.denials = Counter(
            "policyengine_denial_reasons",
            "Blocking rule results in denied decisions, by policy and rule id.",
            ["policy", "rule"],
            registry=self.registry,
        )
        self.checkpoint_size = Gauge(
            "policyengine_checkpoint_size",
            "Tree size of the last checkpoint this process verified the log against and signed.",
            registry=self.registry,
        )
        self.checkpoint_time = Gauge(
            "policyengine_checkpoint_timestamp_seconds",
            "Unix time of the last checkpoint this process verified and signed.",
            registry=self.registry,
        )
        self.verification_failures = Counter(
            "policyengine_verification_failures",
            "Appends refused because the stored tree disagrees with its last signed checkpoint.",
            registry=self.registry,
        )
        self.notifications = Counter(
            "policyengine_notifications",
            "Notification deliveries by event and result (sent|failed|dropped).",
            ["event", "result"],
            registry=self.registry,
        )
        for event in NOTIFY_EVENTS:  # closed sets: every series exists from the start
            for result in ("sent", "failed", "dropped"):
                self.notifications.labels(event=event, result=result)
        self.notification_queue = Gauge(
            "policyengine_notification_queue",
            "Notifications waiting to be delivered (queued or due for a retry).",
            registry=self.registry,
        )
        self.tracing = Tracing(None)
        self.notifier: Any = None

    def count_commits(self, commits: Callable[[], int]) -> None:
        """Read ``policyengine_log_commits`` from ``commits`` at each scrape."""
        self.log_commits.set_function(lambda: float(commits()))

    def attach(self, tracing: Tracing, notifier: Any) -> None:
        """Hand observations to ``tracing`` and ``notifier`` (``notify.Notifier``) too."""
        self.tracing = tracing
        self.notifier = notifier
        self.notification_queue.set_function(lambda: float(notifier.depth()))

    def count_notification(self, event: str, result: str) -> None:
        """Count one notification delivery outcome (the notifier's callback)."""
        self.notifications.labels(event=event, result=result).inc()

    def _notify(self, event: str, summary: str, subject: Any, details: Mapping[str, Any]) -> None:
        if self.notifier is None or not self.notifier.enabled:
            return
        from policyengine.service.notify import Notification

        clean = {str(k): str(v) for k, v in (subject or {}).items()}
        self.notifier.notify(Notification(event, summary, clean, details))

    @contextmanager
    def time_decision(self) -> Iterator[None]:
        """Time one whole decision, in its ``policyengine.decision`` span."""
        with self.tracing.decision(), self.evaluation_seconds.time():
            yield

    def record_decision(self, decision: Mapping[str, Any], event: str) -> None:
        """Count one decision (Decision.to_dict()) and each policy that applied.

        A policy counts ``deny`` when one of its results blocks (enforced
        error, or enforced deny-severity fail), else ``allow``; policies that
        ``appliesTo`` excluded are not counted.
        """
        outcome = "allow" if decision.get("decision") == "allow" else "deny"
        self.decisions.labels(outcome=outcome, event=event).inc()
        applied = {
            str(p.get("name")) for p in decision.get("policies", []) if p.get("applied", True)
        }
        blocked = {str(r.get("policy")) for r in decision.get("results", []) if _blocks(r)}
        for policy in sorted(applied):
            self.policy_results.labels(
                policy=policy, outcome="deny" if policy in blocked else "allow"
            ).inc()
        blocking = [r for r in decision.get("results", []) if _blocks(r)]
        for result in blocking:
            policy, rule = str(result.get("policy")), str(result.get("rule"))
            self.denials.labels(policy=policy, rule=rule).inc()
        self.tracing.decided(
            {
                "policyengine.decision.outcome": outcome,
                "policyengine.decision.event": event,
                "policyengine.bundle.digest": str(decision.get("bundle_digest", "")),
                "policyengine.decision.rules_evaluated": len(decision.get("results", [])),
                "policyengine.decision.id": str(decision.get("id", "")),
            }
        )
        if outcome == "deny":
            self._notify_denied(decision, event, blocking)

    def _notify_denied(
        self, decision: Mapping[str, Any], event: str, blocking: list[Mapping[str, Any]]
    ) -> None:
        subject = decision.get("subject") or {}
        reasons = [str(r) for r in decision.get("reasons", [])][:20]
        rules = sorted({f"{r.get('policy')}/{r.get('rule')}" for r in blocking})
        who = f"{subject.get('model', '?')} {subject.get('version', '')}".strip()
        stage = (decision.get("event") or {}).get("stage")
        summary = f"{event} of {who}" + (f" to {stage}" if stage else "") + " denied: " + (
            "; ".join(reasons) or ", ".join(rules) or "no reason given"
        )
        details = {
            "decision_id": decision.get("id"),
            "event": dict(decision.get("event") or {}),
            "bundle_digest": decision.get("bundle_digest"),
            "rules": rules,
            "reasons": reasons,
        }
        self._notify("decision_denied", summary[:500], subject, details)

    @contextmanager
    def time_append(self) -> Iterator[Callable[..., Any]]:
        """Observe the duration of the enclosed log append, in its span.

        Yields ``appended(result, type, subject, actor, payload)``, which the
        caller may pass a signed append's result and arguments through: the
        checkpoint gauges move, and a ``violation`` entry is notified. A
        failed consistency check against the last signed checkpoint (RFC
        9162 s2.1.4, ``audit.errors.IntegrityError``) is counted and notified.
        """
        start = time.perf_counter()
        with self.tracing.span("policyengine.log.append") as span:
            try:
                yield lambda result, *args, **kwargs: self._appended(span, result, args, kwargs)
            except Exception as exc:
                self._append_failed(exc)
                raise
            finally:
                self.append_seconds.observe(time.perf_counter() - start)

    def _appended(self, span: Any, result: Any, args: tuple[Any, ...], kwargs: Any) -> Any:
        """Record a signed append (``audit.log.SignedAppend``) made with ``args``; return it."""
        names = ("type", "subject", "actor", "payload")
        given = dict(zip(names, args, strict=False)) | {k: kwargs[k] for k in names if k in kwargs}
        checkpoint = getattr(result, "checkpoint", None)
        seq = getattr(getattr(result, "appended", None), "seq", None)
        if checkpoint is not None:
            self.checkpoint_size.set(checkpoint.size)
            self.checkpoint_time.set(time.time())
            span.set_attributes(
                {"policyengine.log.seq": seq, "policyengine.log.size": checkpoint.size}
            )
        span.set_attribute("policyengine.log.entry_type", str(given.get("type")))
        if given.get("type") == "violation":
            self._notify_violation(given.get("subject") or {}, given.get("payload"), seq)
        return result

    def _notify_violation(self, subject: Mapping[str, Any], payload: Any, seq: Any) -> None:
        """Tell operators about a ``violation`` entry (mlflow_events, webhooks_generic)."""
        payload = payload if isinstance(payload, Mapping) else {}
        kind = str(payload.get("kind", "violation"))
        summary = f"{kind} for {subject.get('name', '?')} {subject.get('version', '')}".strip()
        reason = payload.get("reason")
        details = {k: payload.get(k) for k in ("kind", "source", "alias", "stage", "version")}
        details = {k: v for k, v in details.items() if v is not None} | {"seq": seq}
        if reason:
            details["reason"] = str(reason)[:2000]
            summary += f": {reason}"
        self._notify("violation", summary[:500], subject, details)

    def _append_failed(self, exc: Exception) -> None:
        from audit.errors import IntegrityError

        if isinstance(exc, IntegrityError):
            self.verification_failures.inc()
            self._notify(
                "verification_failed",
                f"the audit log failed verification on append: {exc}"[:500],
                {},
                {"error": getattr(exc, "code", type(exc).__name__), "message": str(exc)[:2000]},
            )

    def record_webhook(self, source: str, result: str) -> None:
        """Count one webhook delivery by result, and name it on the current span."""
        self.webhook_deliveries.labels(source=source, result=result).inc()
        self.tracing.current().set_attributes(
            {"policyengine.webhook.source": source, "policyengine.webhook.result": result}
        )

    def render(self) -> bytes:
        """Return the registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)


def _blocks(result: Mapping[str, Any]) -> bool:
    """Mirror of RuleResult.blocks() over the result's JSON form."""
    if result.get("mode") != "enforce":
        return False
    return result.get("outcome") == "error" or (
        result.get("outcome") == "fail" and result.get("severity") == "deny"
    )


def _safe(fn: Callable[[], int]) -> int:
    try:
        return fn()
    except Exception:  # a scrape must not fail because the log is briefly down
        return -1
