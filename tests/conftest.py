"""Fixtures shared by every test package.

Tests that need a real service (PostgreSQL, MLflow) skip with the reason when
it is absent on a developer machine. CI sets ``POLICYENGINE_REQUIRE_SERVICES=1``
and then a missing service is a failure, never a silent skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# Third-party model cards the importer tests read, with their sources and
# licences in model-cards/SOURCES.md; the suite never reads outside the repository.
CARD_DATA = REPO_ROOT / "tests" / "data"
assert (CARD_DATA / "model-cards").is_dir(), CARD_DATA


def services_required() -> bool:
    """True when a missing service must fail the run instead of skipping."""
    return os.environ.get("POLICYENGINE_REQUIRE_SERVICES") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip locally, fail in CI, when a service the test needs is missing."""
    if services_required():
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


def _pg_server_url() -> str | None:
    return os.environ.get("POLICYENGINE_TEST_PG_URL")


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """URL of a reachable PostgreSQL server (set POLICYENGINE_TEST_PG_URL)."""
    url = _pg_server_url()
    if not url:
        skip_or_fail("POLICYENGINE_TEST_PG_URL is not set; run .ci/start-postgres and export it")
    try:
        import sqlalchemy

        engine = sqlalchemy.create_engine(url)
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("select 1"))
        engine.dispose()
    except Exception as exc:  # any failure to connect means "absent"
        skip_or_fail(f"PostgreSQL at POLICYENGINE_TEST_PG_URL is unreachable: {exc}")
    return url  # type: ignore[return-value]


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import sqlalchemy

    name = f"pe_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    base = pg_server_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(
                sqlalchemy.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                ),
                {"n": name},
            )
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(scope="session")
def card_data() -> Path:
    """The folder holding ``model-cards/`` (third-party cards, read-only test data)."""
    return CARD_DATA


@pytest.fixture(autouse=True)
def _outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts outside CI, whatever the runner sets.

    ``CI=true`` changes behaviour on purpose (the development key is refused),
    so a test that means to exercise it sets it itself; the rest must behave
    the same on a laptop and on a CI runner.
    """
    monkeypatch.delenv("CI", raising=False)
