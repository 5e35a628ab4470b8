"""The verification badge: the whole log run through :class:`audit.verify.Verifier`.

Verifying reads every entry, so the result is cached by the log's size (and
its latest checkpoint): a page view re-verifies only when the log has grown.
Tampering that leaves the size unchanged shows at the next append, or at the
next start of the service.

Keys: the service's signing key and the configured log keys (``log_keys``),
the same ones ``policyengine audit verify`` trusts by default.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["Badge", "BadgeCache"]


@dataclass(frozen=True)
class Badge:
    """What the last verification found, in an auditor's words."""

    ok: bool
    size: int
    """Entries in the log when verified."""
    checkpoint_size: int | None
    """The largest checkpoint that verified (ok), or the one at fault."""
    checkpoint_time: str | None
    """Time of the last entry that checkpoint covers."""
    checked_at: str
    """When the verification ran (UTC)."""
    first_bad_seq: int | None = None
    fault: str | None = None
    message: str = ""

    @property
    def text(self) -> str:
        """One line for the page header."""
        if self.ok:
            if not self.checkpoint_size:
                return f"log of {self.size} entries: no signed checkpoint yet"
            return (f"verified up to checkpoint {self.checkpoint_size} "
                    f"at {self.checkpoint_time}")
        return f"VERIFICATION FAILED: {self.fault} at seq {self.first_bad_seq}"


class BadgeCache:
    """One verification per log size; concurrent page views wait for the running one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[int, int] | None = None
        self._badge: Badge | None = None

    def get(self, svc: Any) -> Badge:
        """The badge for the log's current size (verifying now if it grew)."""
        log = svc.log
        with self._lock:
            latest = log.latest_checkpoint()
            key = (log.size(), 0 if latest is None else latest.size)
            if self._badge is None or self._key != key:
                self._badge = _verify(svc, key[0])
                self._key = key
            return self._badge


def _keys(svc: Any) -> list[Any]:
    from audit.keys import load_verifiers

    texts = [str(k) for k in svc.config.log_keys]
    if svc.signer is not None:
        texts.append(svc.signer.vkey)
    return load_verifiers(sorted(set(texts)))


def _verify(svc: Any, size: int) -> Badge:
    from audit.verify import Verifier

    log = svc.log
    checked = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    report = Verifier(_keys(svc), log.origin).verify(
        log.store.iter_entries(), log.store.iter_checkpoints())
    if not report.ok:
        return Badge(False, size, report.checkpoint_size, None, checked,
                     report.first_bad_seq, getattr(report.fault, "value", str(report.fault)),
                     report.message)
    covered = report.entries_checked - report.unsigned_entries
    when = log.get(covered - 1).envelope.get("time") if covered else None
    return Badge(True, size, covered or None, when, checked, message=report.message)
