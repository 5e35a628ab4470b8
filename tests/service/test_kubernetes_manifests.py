"""deploy/kubernetes: the shipped manifests are valid Kubernetes objects and fail closed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT

MANIFESTS = REPO_ROOT / "deploy" / "kubernetes"
# The schemas kubernetes-validate bundles (no network); a version the
# admissionregistration.k8s.io/v1 and apps/v1 shapes used here are stable in.
K8S_VERSION = "1.30.0"


def _objects() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        out += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return out


def _by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in _objects() if doc["kind"] == kind]


@pytest.mark.parametrize(
    ("name", "doc"), _objects(), ids=[f"{n}:{d['kind']}" for n, d in _objects()]
)
def test_each_manifest_validates_against_the_kubernetes_schema(name, doc):
    """Every shipped object validates, strictly (no unknown fields), against Kubernetes' schema."""
    import kubernetes_validate

    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_kustomization_lists_every_manifest():
    """``kubectl apply -k deploy/kubernetes`` applies every shipped file."""
    listed = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"]
    shipped = {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(listed) == shipped


def test_the_webhook_fails_closed_and_records_nothing_on_dry_run():
    """Each webhook is failurePolicy Fail, NoneOnDryRun, admission v1, on the admission path."""
    [config] = _by_kind("ValidatingWebhookConfiguration")
    hooks = config["webhooks"]
    assert {h["name"].split(".")[0] for h in hooks} == {"inferenceservices", "deployments"}
    for hook in hooks:
        assert hook["failurePolicy"] == "Fail"
        assert hook["sideEffects"] == "NoneOnDryRun"
        assert hook["admissionReviewVersions"] == ["v1"]
        assert hook["clientConfig"]["service"]["path"] == "/v1/admission/kubernetes"
        # The service's own namespace is never checked, so it can always be repaired.
        excluded = hook["namespaceSelector"]["matchExpressions"][0]["values"]
        assert "policyengine" in excluded and "kube-system" in excluded


def test_the_shipped_settings_are_accepted_by_the_service():
    """The ConfigMap's service: section loads with the service's strict settings model."""
    from policyengine.service.settings import load_service_settings

    [config_map] = _by_kind("ConfigMap")
    doc = yaml.safe_load(config_map["data"]["policyengine.yaml"])
    settings = load_service_settings(data=doc["service"], env={})
    assert settings.admission.stages == {"ml-staging": "staging", "ml-prod": "production"}
    assert settings.admission.kinds == {"InferenceService", "Deployment"}


def test_the_deployment_serves_tls_from_the_app_factory():
    """The container runs the service's app factory over TLS with the config mounted."""
    [deployment] = _by_kind("Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert "policyengine.service.app:create_app_from_env" in container["command"]
    assert any(arg.startswith("--ssl-certfile=") for arg in container["command"])
    env = {e["name"]: e for e in container["env"]}
    assert Path(env["POLICYENGINE_CONFIG"]["value"]).name == "policyengine.yaml"
