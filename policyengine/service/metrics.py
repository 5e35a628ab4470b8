"""Prometheus metrics of the HTTP service, served at ``GET /metrics``.

Owns the metric names and labels. Each app gets its own registry, so tests
can build many apps in one process. Label values come from closed sets
(decision outcomes, rule results, configured stages, webhook results) or from
policy names in the loaded bundle, never from request data, so cardinality is
bounded. With several worker processes each reports its own counters; the
log size gauge reads the shared log, so it agrees across workers.
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

    @contextmanager
    def time_append(self) -> Iterator[None]:
        """Observe the duration of the enclosed log append."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.append_seconds.observe(time.perf_counter() - start)

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
