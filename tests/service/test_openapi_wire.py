"""The published OpenAPI document describes what the service does: bodies, security, errors."""

from __future__ import annotations

import pytest

from policyengine.service.deliveries import DeliveryStore
from tests.service.conftest import auth

POSTS = {
    "/v1/decisions": "DecisionRequestV1",
    "/v1/approvals": "ApprovalRequestV1",
    "/v1/waivers": "WaiverRequestV1",
    "/v1/promotions": "PromotionRequestV1",
    "/v1/events": "EventRequestV1",
    "/v1/webhooks/generic": "GenericEventV1",
    "/v1/webhooks/mlflow": "MlflowEnvelopeV1",
}
PUBLIC = {"/healthz", "/readyz", "/metrics", "/v1/webhooks/generic", "/v1/webhooks/mlflow"}


@pytest.fixture
def doc(client):
    """The served /openapi.json."""
    r = client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def _resolve(doc, ref: str):
    return doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def test_every_post_names_its_request_body(doc):
    """Each POST operation has a required JSON body whose schema is the handler's wire model."""
    for path, name in POSTS.items():
        body = doc["paths"][path]["post"]["requestBody"]
        ref = body["content"]["application/json"]["schema"]["$ref"]
        assert body["required"] and ref.endswith(f"/{name}"), path
        schema = _resolve(doc, ref)
        assert schema["type"] == "object" and schema["properties"], path
    assert _resolve(doc, "WaiverRequestV1")["additionalProperties"] is False


def test_every_ref_in_the_document_resolves(doc):
    """No $ref points at a schema the document lacks."""
    refs = {m for m in _refs(doc)}
    assert refs and all(r.rsplit("/", 1)[-1] in doc["components"]["schemas"] for r in refs)


def _refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def test_protected_operations_declare_bearer_and_errors(doc):
    """Each token-protected operation names the bearer scheme and its errors as ErrorV1."""
    assert doc["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A token from the service's token file",
    }
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if path in PUBLIC:
                assert "security" not in op, path
                continue
            assert op["security"] == [{"HTTPBearer": []}], (method, path)
            # The admission webhook answers everything past authentication with a
            # 200 AdmissionReview (a denial for bad input or an unusable log).
            admission = path == "/v1/admission/kubernetes"
            for status in ("401", "403") if admission else ("401", "403", "422", "503"):
                schema = op["responses"][status]["content"]["application/json"]["schema"]
                assert schema["$ref"].endswith("/ErrorV1"), (method, path, status)


def test_responses_are_wire_models_not_plain_objects(doc):
    """Each JSON success response references a named wire model."""
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            ok = op["responses"].get("200") or op["responses"].get("201")
            schema = ok["content"].get("application/json", {}).get("schema")
            if schema is not None:
                assert "$ref" in schema, (method, path, schema)


def test_checkpoint_documents_text_note_and_refuses_unknown_format(client, doc):
    """format=note is documented as text/plain; format=xml is 422, never a JSON 200."""
    content = doc["paths"]["/v1/audit/checkpoint"]["get"]["responses"]["200"]["content"]
    assert set(content) == {"application/json", "text/plain"}
    client.post("/v1/events", json={"type": "registered", "model": "m"}, headers=auth("evaluator"))
    r = client.get("/v1/audit/checkpoint", params={"format": "xml"}, headers=auth("auditor"))
    assert r.status_code == 422 and r.json()["code"] == "invalid_request", r.text
    note = client.get("/v1/audit/checkpoint", params={"format": "note"}, headers=auth("auditor"))
    assert note.status_code == 200 and note.headers["content-type"].startswith("text/plain")


def test_delivery_store_keys_on_the_whole_id(tmp_path):
    """Claims of distinct keys longer than the column are distinct; the same key is a replay."""
    store = DeliveryStore(f"sqlite:///{tmp_path / 'd.db'}")
    try:
        base = "x" * 1000
        assert store.claim(base + "a") and store.claim(base + "b")
        assert not store.claim(base + "a")
        store.release(base + "a")
        assert store.claim(base + "a")
    finally:
        store.dispose()


def test_event_types_are_the_recordable_ones():
    """The documented event types are exactly those ``policyengine event`` records."""
    from typing import get_args

    from policyengine.promote import RECORDABLE_EVENTS
    from policyengine.service.wire import EventRequestV1

    assert get_args(EventRequestV1.model_fields["type"].annotation) == RECORDABLE_EVENTS


def test_inclusion_proof_for_a_size_without_the_entry_is_422(client):
    """An inclusion proof in a tree too small to hold the entry is refused, not a 500."""
    client.post("/v1/events", json={"type": "registered", "model": "m"}, headers=auth("evaluator"))
    for size in (0, 5):
        r = client.get(
            "/v1/audit/proof/inclusion", params={"seq": 0, "size": size}, headers=auth("auditor")
        )
        assert r.status_code == 422 and r.json()["code"] == "bad_sizes", r.text


def test_numeric_since_is_refused_as_the_document_says(client):
    """``since`` is an RFC 3339 date-time: a bare number (unix seconds) is 422, not accepted."""
    r = client.get("/v1/audit/entries", params={"since": "0.5"}, headers=auth("auditor"))
    assert r.status_code == 422, r.text
