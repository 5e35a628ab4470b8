"""The state one service process holds: log, keys, policies, tokens, metrics.

Owns opening everything the handlers share, timing appends for the metrics,
and the readiness check (the log answers and the signing key signs). It does
not own any HTTP detail; handlers reach it as ``request.app.state.svc``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

import structlog

from policyengine.service.auth import TokenStore, load_tokens
from policyengine.service.deliveries import DeliveryStore
from policyengine.service.metrics import ServiceMetrics
from policyengine.service.mlflow_client import MlflowRestClient
from policyengine.service.settings import ServiceSettings

if TYPE_CHECKING:
    from audit.keys import Signer
    from audit.log import AuditLog
    from policyengine.config import Config
    from policyengine.ledger import Recorded

__all__ = ["Service", "TimedLog", "open_service"]

_log = structlog.get_logger("policyengine.service")
_MAX_STAGES = 32
# Writes (decide, promote, record) are CPU-bound under one GIL and each holds
# database connections; more than a few at once only adds latency, and many
# at once can exhaust the store's connection pool. Others wait their turn.
_MAX_WRITERS = 4


@dataclass
class Service:
    """Shared handles of one service process."""

    config: Config
    settings: ServiceSettings
    log: Any
    """The AuditLog, wrapped in :class:`TimedLog`."""
    signer: Signer | None
    tokens: TokenStore
    metrics: ServiceMetrics
    deliveries: DeliveryStore
    mlflow: MlflowRestClient | None = None
    _compiled: OrderedDict[str, Any] = field(default_factory=OrderedDict, repr=False)
    _trust: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    writers: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(_MAX_WRITERS), repr=False
    )
    """Bounds concurrent writes in this process (see ``_MAX_WRITERS``)."""

    def compiled(self, stage: str) -> Any:
        """The configured policies compiled with ``stage``'s parameters, once per stage.

        Policies are read at first use; change them by restarting the service
        (every decision records the bundle digest it was made under).
        """
        from policyengine.gate import compile_configured

        # One compilation at a time: concurrent first requests wait for it
        # instead of each compiling the same policies (they share one GIL).
        with self._lock:
            if stage in self._compiled:
                self._compiled.move_to_end(stage)
                return self._compiled[stage]
            compiled = compile_configured(self.config, stage)[0]
            self._compiled[stage] = compiled
            while len(self._compiled) > _MAX_STAGES:  # stages come from requests: bound the cache
                self._compiled.popitem(last=False)
            return compiled

    def trust(self) -> Any:
        """The approvers' trust store, read once."""
        from policyengine.approvals import load_trust

        if self._trust is None:
            self._trust = load_trust(self.config.trust_file)
        return self._trust

    def append(
        self, type: str, subject: Mapping[str, str], actor: str, payload: Any
    ) -> Recorded:
        """Record one entry through the ledger: entry, signed checkpoint, receipt.

        Raises:
            LogUnavailableError: nothing was written.
            RecordedIncompleteError: the entry is in the log, its receipt failed.
        """
        from policyengine.ledger import record

        clean = {k: str(v) for k, v in subject.items() if v not in (None, "")}
        return record(self.log, self.config, type, clean, actor, payload)

    def ready(self) -> tuple[bool, str]:
        """Return (ready, reason): the log answers and the signing key signs."""
        try:
            self.log.size()
        except Exception as exc:  # any failure means "not ready", with its class
            return False, f"log unavailable: {type(exc).__name__}"
        if self.signer is None:
            return False, "no signing key loaded"
        try:
            self.signer.sign(b"policyengine readiness probe\n")
        except Exception as exc:  # a key that cannot sign makes receipts impossible
            return False, f"signing key unusable: {type(exc).__name__}"
        return True, "ok"

    def close(self) -> None:
        """Release connections."""
        self.deliveries.dispose()
        if self.mlflow is not None:
            self.mlflow.close()
        self.log.close()


class TimedLog:
    """The service's AuditLog, with every append timed into the metrics.

    Everything else is the log's own; library functions (gate, promote, ...)
    receive this object as their ``log``, so their appends are measured too.
    """

    def __init__(self, log: AuditLog, metrics: ServiceMetrics) -> None:
        self._log = log
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)

    def append(self, *args: Any, **kwargs: Any) -> Any:
        """AuditLog.append, timed."""
        with self._metrics.time_append():
            return self._log.append(*args, **kwargs)

    def append_many(self, *args: Any, **kwargs: Any) -> Any:
        """AuditLog.append_many, timed."""
        with self._metrics.time_append():
            return self._log.append_many(*args, **kwargs)

    def append_signed(self, *args: Any, **kwargs: Any) -> Any:
        """AuditLog.append_signed (entry and checkpoint in one transaction), timed."""
        with self._metrics.time_append() as appended:
            return appended(self._log.append_signed(*args, **kwargs), *args, **kwargs)


def _tokens(settings: ServiceSettings) -> TokenStore:
    return load_tokens(settings.tokens, settings.tokens_file, source=settings.source)


def open_service(
    config: Config, settings: ServiceSettings, *, err: TextIO | None = None
) -> Service:
    """Open the log, load the signing key and build the shared state.

    Raises:
        PolicyEngineError: the signing key cannot be loaded (key_unavailable).
        AuditError: the log cannot be opened.
    """
    from policyengine.ledger import open_log

    tokens = _tokens(settings)
    signer = config.signer(err)
    real = open_log(config, signer)
    metrics = ServiceMetrics(log_size=real.size)
    log = TimedLog(real, metrics)
    mlflow = None
    if settings.mlflow.tracking_uri:
        mlflow = MlflowRestClient(settings.mlflow.tracking_uri, token=settings.mlflow.token)
    return Service(
        config=config,
        settings=settings,
        log=log,
        signer=signer,
        tokens=tokens,
        metrics=metrics,
        deliveries=DeliveryStore(config.log_url),
        mlflow=mlflow,
    )
