"""The story the page tests read: written through the service's own API.

A registration of 2.3.0, a deny of 2.2.0 (AUC 0.7), two approvals and an
allow of 2.3.0 (AUC 0.87), all for production, and 2.3.0's promotion there.
Any httpx client works: a real server's or a FastAPI TestClient.
"""

from __future__ import annotations

import httpx

from tests.service.conftest import auth, example_card

MODEL = "credit-risk-scorer"


def write_story(http: httpx.Client) -> dict[str, int]:
    """Write the story; return the seqs of the deny and the allow."""
    card_old = example_card(auc=0.7, version="2.2.0", digest_seed="old")
    card_new = example_card(auc=0.87, version="2.3.0", digest_seed="new")
    reg = http.post("/v1/events", headers=auth("evaluator"), json={
        "type": "registered", "model": MODEL, "version": "2.3.0",
        "digest": card_new["model"]["artifact_digest"]})
    assert reg.status_code == 201, reg.text
    deny = http.post("/v1/decisions", headers=auth("evaluator"),
                     json={"card": card_old, "event": {"stage": "production"}})
    assert deny.status_code == 200 and not deny.json()["allow"], deny.text
    for role in ("model-risk", "domain-owner"):
        ok = http.post("/v1/approvals", headers=auth("approver"), json={
            "model": MODEL, "version": "2.3.0", "digest": card_new["model"]["artifact_digest"],
            "role": role, "expires": "30d"})
        assert ok.status_code == 201, ok.text
    allow = http.post("/v1/decisions", headers=auth("evaluator"),
                      json={"card": card_new, "event": {"stage": "production"}})
    assert allow.status_code == 200 and allow.json()["allow"], allow.text
    promoted = http.post("/v1/promotions", headers=auth("evaluator"), json={
        "model": MODEL, "version": "2.3.0", "digest": card_new["model"]["artifact_digest"],
        "stage": "production"})
    assert promoted.status_code == 201, promoted.text
    return {"deny": deny.json()["seq"], "allow": allow.json()["seq"]}
