"""Two service processes on one PostgreSQL log keep one verified chain under concurrent load."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.service.conftest import auth, example_card, verify_chain
from tests.service.servers import start_service

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
REQUESTS = 80


def _request(i: int, urls: list[str]) -> int:
    url = urls[i % len(urls)]
    with httpx.Client(timeout=60) as http:
        if i % 4 == 3:
            body = {"type": "incident", "model": "m", "version": str(i), "data": {"n": i}}
            return http.post(f"{url}/v1/events", json=body, headers=auth("evaluator")).status_code
        card = example_card(auc=0.9 if i % 2 else 0.5, version=str(i), digest_seed=str(i))
        body = {"card": card, "event": {"type": "promote", "stage": "production"}}
        return http.post(f"{url}/v1/decisions", json=body, headers=auth("evaluator")).status_code


def test_two_processes_one_chain(pg_url, tmp_path):
    """Concurrent writes through two processes land as one gap-free chain that verifies."""
    first = start_service(tmp_path, pg_url, name="first")
    try:
        second = start_service(tmp_path, pg_url, name="second")
    except Exception:
        first.stop()
        raise
    try:
        urls = [first.url, second.url]
        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(lambda i: _request(i, urls), range(REQUESTS)))
        assert statuses.count(200) + statuses.count(201) == REQUESTS, statuses
        r = httpx.get(
            f"{first.url}/v1/audit/entries", params={"limit": 1000}, headers=auth("auditor")
        )
        seqs = [e["seq"] for e in r.json()["entries"]]
        assert seqs == list(range(len(seqs))) and len(seqs) == REQUESTS
        assert (
            httpx.get(f"{second.url}/v1/audit/checkpoint", headers=auth("auditor")).status_code
            == 200
        )
    finally:
        first.stop()
        second.stop()
    report = verify_chain(pg_url, tmp_path / "signing.key")
    assert report.ok, report.message
