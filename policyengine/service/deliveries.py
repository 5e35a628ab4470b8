"""Webhook delivery bookkeeping shared by every service process.

Owns one small table in the log's own database (SQLite file or PostgreSQL),
so that what it records holds across worker processes and restarts:

- delivery claims: a delivery id is claimed once; a second claim (a replay,
  or a retry of a delivery already processed) fails. A claim is released when
  processing fails, so the sender's retry is processed, not refused.
- rejection buckets: at most one ``webhook_rejected`` log entry per (source,
  reason, minute), so a flood of bad deliveries cannot fill the log.

Keys are stored as the SHA-256 of the whole key (delivery ids are
sender-chosen and unbounded; a truncated key would let two distinct ids that
share a prefix collide). Claims only need to outlive the signature timestamp window (300 s); rows
older than an hour are pruned. This table is bookkeeping, not evidence: the
evidence is in the log.
"""

from __future__ import annotations

import hashlib
import time

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

__all__ = ["DeliveryStore"]

_metadata = sa.MetaData()
_deliveries = sa.Table(
    "pe_service_deliveries",
    _metadata,
    sa.Column("key", sa.String(300), primary_key=True),  # "sha256:" + 64 hex
    sa.Column("created_at", sa.BigInteger, nullable=False, index=True),
)
_PRUNE_AFTER_S = 3600
_PRUNE_EVERY = 256


def _stored(key: str) -> str:
    """The row key of ``key``: a digest of all of it, never a prefix."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _engine_url(log_url: str) -> str:
    if "://" not in log_url:
        return f"sqlite:///{log_url}"
    return log_url


class DeliveryStore:
    """Claims and rejection buckets in the table ``pe_service_deliveries``."""

    def __init__(self, log_url: str) -> None:
        url = _engine_url(log_url)
        kwargs: dict[str, object] = {"pool_pre_ping": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        self._engine = sa.create_engine(url, **kwargs)
        try:
            _metadata.create_all(self._engine, checkfirst=True)
        except sa.exc.DBAPIError:
            # Another process created the table between the check and the create.
            _metadata.create_all(self._engine, checkfirst=True)
        self._claims = 0

    def dispose(self) -> None:
        """Close pooled connections."""
        self._engine.dispose()

    def claim(self, key: str, *, now: float | None = None) -> bool:
        """Record ``key``; False when it was already recorded (a replay)."""
        stamp = int(now if now is not None else time.time())
        try:
            with self._engine.begin() as conn:
                conn.execute(_deliveries.insert().values(key=_stored(key), created_at=stamp))
        except IntegrityError:
            return False
        self._claims += 1
        if self._claims % _PRUNE_EVERY == 0:
            self.prune(now=stamp)
        return True

    def release(self, key: str) -> None:
        """Forget ``key`` so a retry of a failed delivery is processed."""
        with self._engine.begin() as conn:
            conn.execute(_deliveries.delete().where(_deliveries.c.key == _stored(key)))

    def consume(self, key: str) -> bool:
        """Delete ``key``; True when it was there (a marker left by this service)."""
        with self._engine.begin() as conn:
            result = conn.execute(_deliveries.delete().where(_deliveries.c.key == _stored(key)))
        return bool(result.rowcount)

    def first_rejection(self, source: str, reason: str, *, now: float | None = None) -> bool:
        """True for the first rejection of (source, reason) in this minute."""
        stamp = now if now is not None else time.time()
        minute = int(stamp // 60)
        return self.claim(f"rejected:{source}:{reason}:{minute}", now=stamp)

    def prune(self, *, now: float | None = None) -> None:
        """Delete rows older than an hour (claims outlive the 300 s window)."""
        cutoff = int(now if now is not None else time.time()) - _PRUNE_AFTER_S
        with self._engine.begin() as conn:
            conn.execute(_deliveries.delete().where(_deliveries.c.created_at < cutoff))
