"""Fixtures for the audit log tests: a fresh SQLite log, a signer, fixed times."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from audit.keys import Signer, generate_key
from audit.log import AuditLog

FIXED_TIME = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
"""A fixed entry time well before the tests' "now"."""

KEY_NAME = "test.example/audit"


@pytest.fixture(scope="session")
def key_pair() -> tuple[str, str]:
    """One Ed25519 signed-note key pair (skey, vkey) for the session."""
    return generate_key(KEY_NAME)


@pytest.fixture
def signer(key_pair: tuple[str, str]) -> Signer:
    """The session's signer."""
    return Signer.from_skey(key_pair[0])


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a new SQLite log file in a fresh directory (not yet created)."""
    return f"sqlite:///{tmp_path / 'logs' / 'audit.db'}"


@pytest.fixture
def log(sqlite_url: str, signer: Signer) -> Iterator[AuditLog]:
    """An empty SQLite audit log with a signer."""
    opened = AuditLog.open(sqlite_url, signer=signer)
    yield opened
    opened.close()


def fill(log: AuditLog, n: int, *, name: str = "model", start: int = 0) -> None:
    """Append ``n`` decision entries with fixed times in one batch."""
    from audit.log import NewEntry

    log.append_many([
        NewEntry("decision", {"name": name, "version": str(i % 3)}, "ci",
                 {"i": i, "allow": i % 2 == 0}, FIXED_TIME)
        for i in range(start, start + n)
    ])
