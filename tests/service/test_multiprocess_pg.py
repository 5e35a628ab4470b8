"""Two service processes on one PostgreSQL log keep one verified chain under concurrent load."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from policyengine.service.webhooks_generic import generic_signature
from tests.service.conftest import GENERIC_SECRET, auth, example_card, verify_chain
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


def _same_delivery_to_both(urls: list[str]) -> None:
    """One delivery id sent to both processes at once is processed once: 200 and 409."""
    for n in range(5):
        body = json.dumps({"type": "comment_added", "model": "m", "data": {"n": n}}).encode()
        delivery, ts = str(uuid.uuid4()), str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-PolicyEngine-Delivery-Id": delivery,
            "X-PolicyEngine-Timestamp": ts,
            "X-PolicyEngine-Signature": generic_signature(GENERIC_SECRET, delivery, ts, body),
        }
        with ThreadPoolExecutor(max_workers=2) as pool:
            posts = [
                pool.submit(httpx.post, f"{u}/v1/webhooks/generic", content=body, headers=headers)
                for u in urls
            ]
            codes = sorted(p.result().status_code for p in posts)
        assert codes == [200, 409]


def test_two_processes_one_chain(pg_url, tmp_path):
    """Concurrent writes via two processes form one verified chain; replays caught across them."""
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
        entries = r.json()["entries"]
        seqs = [e["seq"] for e in entries]
        # A first decision records the policy bundle unless the log holds it; first
        # decisions racing (across processes or threads) may each record alike copies.
        bundles = [e for e in entries if e["envelope"]["type"] == "policy_bundle"]
        assert len({e["envelope"]["subject"]["digest"] for e in bundles}) == 1
        assert seqs == list(range(len(seqs))) and len(seqs) == REQUESTS + len(bundles)
        assert (
            httpx.get(f"{second.url}/v1/audit/checkpoint", headers=auth("auditor")).status_code
            == 200
        )
    finally:
        first.stop()
        second.stop()
    report = verify_chain(pg_url, tmp_path / "signing.key")
    assert report.ok, report.message
