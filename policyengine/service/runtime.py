"""The state one service process holds: its Engine, tokens, metrics, deliveries.

Owns opening everything the handlers share (one :class:`~policyengine.engine.Engine`
per process: log, signer, trust, compiled policies), timing appends and
decisions for the metrics, and the readiness check (the log answers and the
signing key signs). It does
not own any HTTP detail; handlers reach it as ``request.app.state.svc``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

import structlog

from policyengine.engine import Engine
from policyengine.service.auth import TokenStore, load_tokens
from policyengine.service.deliveries import DeliveryStore
from policyengine.service.metrics import ServiceMetrics
from policyengine.service.mlflow_client import MlflowRestClient
from policyengine.service.settings import ServiceSettings

if TYPE_CHECKING:
    from audit.keys import Signer
    from audit.log import AuditLog, NewEntry
    from policyengine.config import Config
    from policyengine.ledger import Recorded

__all__ = ["Service", "TimedLog", "open_service"]

_log = structlog.get_logger("policyengine.service")
# Writes (decide, promote, record) are mostly CPU under one GIL and each holds
# database connections; many at once only add latency and can exhaust the
# store's connection pool (SQLAlchemy's default: 5 + 10 overflow). Others wait
# their turn. Eight rather than four: a write waiting for its group's commit
# (audit._group) leaves the GIL to the others, and the more writes are in
# flight the more share one commit. Eight threads deciding on one process
# (bench_service.py's card and packs, 160 decisions): SQLite 108 commits at 4
# writers, 56 at 8, and 26 -> 39 decisions/s; PostgreSQL 100 -> 46 commits,
# 25 -> 37 decisions/s.
_MAX_WRITERS = 8


@dataclass
class Service:
    """Shared handles of one service process: its Engine and the HTTP side's state."""

    engine: Engine
    """The process's one Engine (log wrapped in :class:`TimedLog`, signer, trust,
    compiled policies); every operation runs on it."""
    settings: ServiceSettings
    tokens: TokenStore
    metrics: ServiceMetrics
    deliveries: DeliveryStore
    mlflow: MlflowRestClient | None = None
    writers: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(_MAX_WRITERS), repr=False
    )
    """Bounds concurrent writes in this process (see ``_MAX_WRITERS``)."""

    @property
    def config(self) -> Config:
        """The resolved configuration."""
        return self.engine.config

    @property
    def log(self) -> Any:
        """The AuditLog, wrapped in :class:`TimedLog`."""
        return self.engine.log

    @log.setter
    def log(self, value: Any) -> None:
        self.engine.log = value

    @property
    def signer(self) -> Signer | None:
        """The checkpoint signer (None once it has been taken away)."""
        return self.engine.signer if self.engine.has_signer else None

    @signer.setter
    def signer(self, value: Signer | None) -> None:
        self.engine.signer = value

    def append(
        self, type: str, subject: Mapping[str, str], actor: str, payload: Any
    ) -> Recorded:
        """Record one entry through the engine's ledger: entry, signed checkpoint, receipt.

        Raises:
            LogUnavailableError: nothing was written.
            RecordedIncompleteError: the entry is in the log, its receipt failed.
        """
        return self.engine.record(type, subject, actor, payload)

    def stages(self) -> list[str]:
        """The stages the settings name: MLflow alias targets, admission namespaces'
        stages and, when no environment is selected, the environments (which then
        name stages, see ``Config.params_for``)."""
        named = set(self.settings.mlflow.aliases.values())
        named |= set(self.settings.admission.stages.values())
        if self.config.environment is None:
            named |= set(self.config.environments)
        return sorted(named)

    def prepare(self) -> None:
        """Compile the policies for :meth:`stages` now, in this process.

        Each worker process runs this before it accepts requests: a compilation
        holds the process (and its GIL) for a second or more, which would
        otherwise land on a worker's first requests; and a policy that does not
        compile stops the start (exit 2) instead of failing requests. Stages no
        setting names still compile on their first request. Every rule's
        generated code and the card and event validators are built here too,
        which a worker's first decision would otherwise wait for.

        Raises:
            PolicyLoadError, ConfigError: the policies or their parameters are bad.
        """
        from policyengine.cards.validate import prepare_validators

        for stage in self.stages():
            for rule in self.engine.policies(stage).compiled.rules():
                for program in (rule.expr, rule.message):
                    # Programs read from the expression cache compile on first use; one
                    # that cannot compile fails its rule when evaluated, as it would have.
                    with suppress(Exception):
                        program.code  # noqa: B018 - compiles it now
        prepare_validators()

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
        self.engine.close()


class _MetricsObserver:
    """The engine's observer: every gate run timed and counted in the metrics."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self._metrics = metrics

    def evaluation(self) -> AbstractContextManager[Any]:
        """Time one whole decision (history, evaluation, append, checkpoint), in its span."""
        return self._metrics.time_decision()

    def decided(self, decision: Mapping[str, Any], kind: str) -> None:
        """Count the decision and each policy that applied."""
        self._metrics.record_decision(decision, kind)


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

    def append_signed_many(self, entries: Sequence[NewEntry]) -> Any:
        """AuditLog.append_signed_many (entries and one checkpoint over the last), timed.

        The checkpoint and the span describe the last entry, the one the result is for.
        """
        with self._metrics.time_append() as appended:
            signed = self._log.append_signed_many(entries)
            last = entries[-1]
            return appended(signed, last.type, last.subject, last.actor, last.payload)


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
    metrics.count_commits(lambda: real.signed_group.batches + real.plain_group.batches)
    log = TimedLog(real, metrics)
    engine = Engine(config, err=err, log=log, signer=signer, observer=_MetricsObserver(metrics),
                    cel_engine=settings.engine)
    mlflow = None
    if settings.mlflow.tracking_uri:
        mlflow = MlflowRestClient(settings.mlflow.tracking_uri, token=settings.mlflow.token)
    return Service(
        engine=engine,
        settings=settings,
        tokens=tokens,
        metrics=metrics,
        deliveries=DeliveryStore(config.log_url),
        mlflow=mlflow,
    )
