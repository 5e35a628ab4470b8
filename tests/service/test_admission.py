"""Kubernetes admission: model deployments admitted only with an allow in the log."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policyengine.service.wire import AdmissionReviewResponseV1
from tests.conftest import REPO_ROOT
from tests.service.conftest import auth, build_env, example_card

URL = "/v1/admission/kubernetes"
DATA = REPO_ROOT / "tests" / "data" / "kubernetes"
ADMISSION = {"stages": {"ml-prod": "production", "ml-staging": "staging"}}


def load(name: str) -> dict[str, Any]:
    """A Kubernetes object from tests/data/kubernetes."""
    return yaml.safe_load((DATA / name).read_text())


def review(
    obj: dict[str, Any] | None,
    *,
    operation: str = "CREATE",
    dry_run: bool = False,
    old: dict[str, Any] | None = None,
    namespace: str | None = None,
    kind: tuple[str, str, str] | None = None,
) -> dict[str, Any]:
    """An admission.k8s.io/v1 AdmissionReview as the API server sends it for ``obj``."""
    source = obj or old or {}
    group, _, version = source["apiVersion"].rpartition("/")
    group, version, name = kind or (group, version, source["kind"])
    meta = source.get("metadata", {})
    resource = {"InferenceService": "inferenceservices", "Deployment": "deployments"}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": group, "version": version, "kind": name},
            "resource": {"group": group, "version": version, "resource": resource.get(name, "x")},
            "name": meta.get("name"),
            "namespace": namespace or meta.get("namespace"),
            "operation": operation,
            "userInfo": {"username": "alice@example.com", "groups": ["system:authenticated"]},
            "object": obj,
            "oldObject": old,
            "dryRun": dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def send(client: Any, body: Any, role: str = "admission") -> dict[str, Any]:
    """POST a review; assert a 200 AdmissionReview answer; return its ``response``."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = client.post(URL, content=raw, headers={**auth(role), "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    AdmissionReviewResponseV1.model_validate(r.json())
    return r.json()["response"]  # type: ignore[no-any-return]


def allow(client: Any, obj: dict[str, Any], stage: str = "production") -> None:
    """Gate the card of ``obj``'s model (AUC 0.87) to ``stage``: an allow in the log."""
    annotations = obj["metadata"]["annotations"]
    card = example_card(version=annotations["policyengine.dev/version"])
    card["model"]["name"] = annotations["policyengine.dev/model"]
    card["model"]["artifact_digest"] = load("sklearn-iris.yaml")["metadata"]["annotations"][
        "policyengine.dev/digest"
    ]
    r = client.post(
        "/v1/decisions", json={"card": card, "event": {"stage": stage}}, headers=auth("evaluator")
    )
    assert r.status_code == 200 and r.json()["allow"], r.text


def types(env: Any) -> list[str]:
    """Entry types in the log, in order (the first decision follows its policy bundle)."""
    return [e.envelope["type"] for e in env.entries()]


ADMISSION_TOKEN = "tok-admission-0123456789"


@pytest.fixture
def env(tmp_path, monkeypatch):
    """An app with ml-prod -> production whose tokens include an ``admission`` one."""
    from policyengine.service import hash_token
    from tests.service import conftest

    monkeypatch.setitem(conftest.TOKENS, "admission", ADMISSION_TOKEN)
    tokens = [
        {"id": f"{role}-1", "sha256": hash_token(tok), "roles": [role]}
        for role, tok in conftest.TOKENS.items()
    ]
    return build_env(tmp_path, service={"admission": ADMISSION, "tokens": tokens})


@pytest.fixture
def k8s(env):
    """A TestClient of ``env``'s app; server errors come back as responses."""
    from fastapi.testclient import TestClient

    with TestClient(env.app, raise_server_exceptions=False) as c:
        yield c


def test_no_allow_is_denied_with_the_reason_and_a_violation(k8s, env):
    """An InferenceService whose version has no allow for production is denied and recorded."""
    body = review(load("sklearn-iris.yaml"))
    out = send(k8s, body)
    assert out["uid"] == body["request"]["uid"] and out["allowed"] is False
    message = out["status"]["message"]
    assert "no decision in the log for sklearn-iris 1.0" in message and "production" in message
    assert "violation recorded at seq 0" in message
    [entry] = env.entries()
    assert entry.envelope["type"] == "violation"
    assert entry.envelope["subject"]["name"] == "sklearn-iris"
    payload = entry.payload
    assert payload["kind"] == "admission_without_allow" and payload["stage"] == "production"
    assert payload["uid"] == body["request"]["uid"] and payload["namespace"] == "ml-prod"
    assert payload["reported_user"] == "alice@example.com"
    assert payload["storage_uri"] == "gs://kfserving-examples/models/sklearn/1.0/model"


def test_with_an_allow_it_is_admitted_and_promoted(k8s, env):
    """After the gate allows the version for production, the InferenceService is admitted."""
    obj = load("sklearn-iris.yaml")
    allow(k8s, obj)
    out = send(k8s, review(obj))
    assert out["allowed"] is True and "status" not in out
    assert types(env) == ["policy_bundle", "decision", "promoted"]
    promoted = env.entries()[-1]
    assert promoted.envelope["subject"]["digest"] == obj["metadata"]["annotations"][
        "policyengine.dev/digest"
    ]
    assert promoted.payload["stage"] == "production"


def test_an_allow_for_another_stage_does_not_admit(k8s, env):
    """An allow for staging does not admit the version in the production namespace."""
    obj = load("sklearn-iris.yaml")
    allow(k8s, obj, stage="staging")
    out = send(k8s, review(obj))
    assert out["allowed"] is False and "for stage staging" in out["status"]["message"]
    assert types(env) == ["policy_bundle", "decision", "violation"]


def test_a_digest_pinned_in_storage_uri_identifies_the_artifact(k8s, env):
    """An OCI storageUri pinned by digest stands in for the digest annotation."""
    allow(k8s, load("sklearn-iris.yaml"))
    assert send(k8s, review(load("sklearn-iris-oci.yaml")))["allowed"] is True
    assert types(env) == ["policy_bundle", "decision", "promoted"]


def test_a_digest_that_disagrees_with_storage_uri_is_denied(k8s, env):
    """A digest annotation naming another artifact than storageUri pins is denied, unrecorded."""
    obj = load("sklearn-iris-oci.yaml")
    obj["metadata"]["annotations"]["policyengine.dev/digest"] = "sha256:" + "b" * 64
    out = send(k8s, review(obj))
    assert out["allowed"] is False and "storageUri pins" in out["status"]["message"]
    assert env.entries() == []


def test_a_labelled_deployment_is_checked_like_an_inference_service(k8s, env):
    """A Deployment labelled as a model is denied without an allow and admitted with one."""
    obj = load("model-deployment.yaml")
    assert send(k8s, review(obj))["allowed"] is False
    allow(k8s, obj)
    assert send(k8s, review(obj))["allowed"] is True
    assert types(env) == ["violation", "policy_bundle", "decision", "promoted"]


def test_dry_run_gives_the_verdict_and_records_nothing(k8s, env):
    """A dryRun review is denied or admitted as a real one would be, and writes nothing."""
    obj = load("sklearn-iris.yaml")
    out = send(k8s, review(obj, dry_run=True))
    assert out["allowed"] is False and "no decision in the log" in out["status"]["message"]
    assert "violation recorded" not in out["status"]["message"]
    assert env.entries() == []
    allow(k8s, obj)
    assert send(k8s, review(obj, dry_run=True))["allowed"] is True
    assert types(env) == ["policy_bundle", "decision"]


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        ("policyengine.dev/model", "annotation policyengine.dev/model is missing"),
        ("policyengine.dev/version", "annotation policyengine.dev/version is missing"),
        ("policyengine.dev/digest", "annotation policyengine.dev/digest is missing"),
    ],
)
def test_a_missing_annotation_is_denied_unrecorded(k8s, env, annotation, expected):
    """An InferenceService lacking an identity annotation is denied, naming it, with no entry."""
    obj = load("sklearn-iris.yaml")
    del obj["metadata"]["annotations"][annotation]
    out = send(k8s, review(obj))
    assert out["allowed"] is False and expected in out["status"]["message"]
    assert env.entries() == []


def test_kserve_example_as_documented_is_denied(k8s, env):
    """KServe's sklearn-iris example with no annotations is denied in a mapped namespace."""
    out = send(k8s, review(load("sklearn-iris-unannotated.yaml")))
    assert out["allowed"] is False and "policyengine.dev/" in out["status"]["message"]


def test_an_unmapped_namespace_is_denied_unrecorded(k8s, env):
    """An InferenceService in a namespace mapped to no stage is denied, naming the setting."""
    out = send(k8s, review(load("sklearn-iris.yaml"), namespace="scratch"))
    assert out["allowed"] is False
    assert "namespace 'scratch' maps to no stage" in out["status"]["message"]
    assert "service.admission.stages" in out["status"]["message"]
    assert env.entries() == []


def test_deletes_and_objects_that_are_not_models_pass_unrecorded(k8s, env):
    """DELETE, an unlabelled Deployment and a ConfigMap are admitted with no entry."""
    isvc = load("sklearn-iris.yaml")
    assert send(k8s, review(None, operation="DELETE", old=isvc))["allowed"] is True
    assert send(k8s, review(load("plain-deployment.yaml")))["allowed"] is True
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "x"}}
    assert send(k8s, review(cm, kind=("", "v1", "ConfigMap")))["allowed"] is True
    assert env.entries() == []


def test_an_update_that_moves_nothing_passes_unrecorded(k8s, env):
    """A controller adding a finalizer (same model, stage, spec) is admitted with no entry."""
    old = load("sklearn-iris.yaml")
    new = copy.deepcopy(old)
    new["metadata"]["finalizers"] = ["inferenceservice.finalizers"]
    assert send(k8s, review(new, operation="UPDATE", old=old))["allowed"] is True
    assert env.entries() == []


def test_an_update_to_another_version_is_checked(k8s, env):
    """Changing the version annotation on UPDATE needs that version's allow."""
    old = load("sklearn-iris.yaml")
    new = copy.deepcopy(old)
    new["metadata"]["annotations"]["policyengine.dev/version"] = "2.0"
    out = send(k8s, review(new, operation="UPDATE", old=old))
    assert out["allowed"] is False and "sklearn-iris 2.0" in out["status"]["message"]
    assert types(env) == ["violation"]


def test_an_unreachable_log_is_a_denial_not_a_5xx(k8s, env):
    """When the log cannot be read the review is denied (fail closed) without server details."""
    from audit._sqlite import SqliteDatabase

    store = env.app.state.svc.log.store
    store.db = SqliteDatabase(f"{env.root}/gone/dir/audit.db")
    out = send(k8s, review(load("sklearn-iris.yaml")))
    assert out["allowed"] is False
    assert "audit log is unavailable" in out["status"]["message"]
    assert str(env.root) not in out["status"]["message"]


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"{}",
        b'{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}}',
        b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}',
        b'{"a": 1, "a": 2}',
        b"[" * 100 + b"]" * 100,
    ],
)
def test_malformed_reviews_are_denied_with_a_message(k8s, env, raw):
    """A body that is not a valid AdmissionReview gets a 200 denial saying what is wrong."""
    out = send(k8s, raw)
    assert out["allowed"] is False and "malformed AdmissionReview" in out["status"]["message"]
    assert env.entries() == []


def test_a_malformed_review_echoes_a_readable_uid(k8s):
    """When the review is invalid but names a uid, the denial carries that uid."""
    body = review(load("sklearn-iris.yaml"))
    body["request"]["operation"] = "PATCH"
    out = send(k8s, body)
    assert out["uid"] == body["request"]["uid"] and out["allowed"] is False


def test_an_oversize_review_is_a_denial(make_env):
    """A review past the body limit is denied as malformed, not refused with a 413."""
    from fastapi.testclient import TestClient

    built = make_env(service={"admission": ADMISSION, "limits": {"max_body_bytes": 512}})
    with TestClient(built.app, raise_server_exceptions=False) as c:
        out = send(c, review(load("sklearn-iris.yaml")), role="evaluator")
    assert out["allowed"] is False and "exceeds 512 bytes" in out["status"]["message"]


def test_callers_need_the_admission_or_evaluator_role(k8s, env):
    """No token is 401 and an auditor token is 403; neither writes."""
    body = json.dumps(review(load("sklearn-iris.yaml")))
    assert k8s.post(URL, content=body).status_code == 401
    assert k8s.post(URL, content=body, headers=auth("auditor")).status_code == 403
    assert send(k8s, json.loads(body), role="evaluator")["allowed"] is False
    assert types(env) == ["violation"]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a JSON document."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(doc: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_reviews_always_get_an_admission_review(k8s, env, data):
    """Any mutation of a real review is answered 200 with a valid AdmissionReview, never a 5xx."""
    base = review(load(data.draw(st.sampled_from(["sklearn-iris.yaml", "model-deployment.yaml"]))))
    paths = _paths(base)
    path = data.draw(st.sampled_from(paths))
    body = _mutate(copy.deepcopy(base), path, data.draw(_JSON), data.draw(st.booleans()))
    before = len(env.entries())
    out = send(k8s, body)
    req = body.get("request") if isinstance(body, dict) else None
    uid = req.get("uid") if isinstance(req, dict) else None
    assert out["uid"] == (uid[:128] if isinstance(uid, str) else "")
    written = [e.envelope["type"] for e in env.entries()[before:]]
    assert written in ([], ["violation"])  # no allow exists, so nothing is promoted
    if written:
        assert out["allowed"] is False


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"stage": {"ml-prod": "production"}}, "unknown key 'admission.stage'"),
        ({"kinds": ["Pod"]}, "admission.kinds.0"),
        ({"stages": {"ml-prod": "Production!"}}, "admission.stages.ml-prod"),
    ],
)
def test_the_admission_settings_are_strict(section, expected):
    """A misspelled key or a bad value in service.admission is a ConfigError naming it."""
    from policyengine.errors import ConfigError
    from policyengine.service.settings import load_service_settings

    with pytest.raises(ConfigError, match=expected):
        load_service_settings(data={"admission": section}, env={})
