"""Fixtures for the service tests: a configured app over a SQLite log in tmp_path.

The policy set is small and deterministic: promotion needs ``auc >= 0.8``,
registration needs an owner team. Tokens are fixed strings per role, stored
hashed as the service expects.
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT

TOKENS = {
    "evaluator": "tok-evaluator-0123456789",
    "approver": "tok-approver-0123456789",
    "auditor": "tok-auditor-0123456789",
    "admin": "tok-admin-0123456789",
}
MLFLOW_SECRET = "mlflow-webhook-secret"
GENERIC_SECRET = "generic-webhook-secret"

POLICY = """\
apiVersion: policyengine/v1
kind: Policy
metadata:
  name: svc-test
  version: 1.0.0
  description: Promotion needs an AUC of at least 0.8.
spec:
  appliesTo:
    events: [promote]
  mode: enforce
  rules:
    - id: auc-floor
      description: AUC at least 0.8
      severity: deny
      expr: card.metrics.exists(m, m.name == "auc" && m.value >= 0.8)
      message: '"auc below 0.8"'
---
apiVersion: policyengine/v1
kind: Policy
metadata:
  name: svc-register
  version: 1.0.0
  description: Registration needs an owner team.
spec:
  appliesTo:
    events: [register]
  mode: enforce
  rules:
    - id: owner-team
      description: The card names an owning team
      severity: deny
      expr: has(card.owner) && has(card.owner.team) && card.owner.team != ""
      message: '"card.owner.team is missing"'
"""


def auth(role: str) -> dict[str, str]:
    """Authorization header for the fixed token of ``role``."""
    return {"Authorization": f"Bearer {TOKENS[role]}"}


def example_card(
    *, auc: float = 0.87, version: str = "2.3.0", digest_seed: str = "a"
) -> dict[str, Any]:
    """The credit-risk example card with a chosen AUC, version and digest."""
    path = REPO_ROOT / "examples" / "cards" / "credit-risk-scorer.yaml"
    card = copy.deepcopy(yaml.safe_load(path.read_text()))
    card["model"]["version"] = version
    card["model"]["artifact_digest"] = "sha256:" + hashlib.sha256(digest_seed.encode()).hexdigest()
    card["metrics"] = [{"name": "auc", "value": auc, "dataset": "holdout"}]
    return card


@dataclass
class ServiceEnv:
    """A built app, its config and paths, for one test."""

    app: Any
    config: Any
    settings: Any
    root: Path
    log_url: str

    def entries(self) -> list[Any]:
        """Every entry in the log, in order (through a fresh handle)."""
        from audit.log import AuditLog

        log = AuditLog.open(self.log_url)
        try:
            return list(log.query())
        finally:
            log.close()


def write_key(root: Path, name: str = "pe-service-test") -> Path:
    """Write a signing key (mode 600) once per directory and return its path."""
    from audit.keys import generate_key

    path = root / "signing.key"
    if path.exists():
        return path
    skey, _ = generate_key(name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(skey + "\n")
    return path


def build_env(
    root: Path,
    *,
    log_url: str | None = None,
    service: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    allow_unsigned: bool = True,
    trust_file: Path | None = None,
    tracing: Any = None,
) -> ServiceEnv:
    """Configure and build an app over a log in ``root``."""
    from policyengine.config import load_config
    from policyengine.service import create_app, hash_token, load_service_settings

    policies = root / "policies"
    policies.mkdir(exist_ok=True)
    (policies / "svc.yaml").write_text(POLICY)
    log_url = log_url or f"sqlite:///{root / 'audit.db'}"
    flags = {
        "log": log_url,
        "signing_key": str(write_key(root)),
        "policies": [str(policies)],
        "allow_unsigned": allow_unsigned,
        "trust_file": str(trust_file) if trust_file else None,
    }
    config = load_config(flags, env={}, cwd=root)
    data = {
        "tokens": [
            {"id": f"{role}-1", "sha256": hash_token(tok), "roles": [role]}
            for role, tok in TOKENS.items()
        ],
        "limits": {"max_body_bytes": 262144, "max_json_depth": 32},
    }
    data.update(service or {})
    secrets = {
        "POLICYENGINE_MLFLOW_WEBHOOK_SECRET": MLFLOW_SECRET,
        "POLICYENGINE_WEBHOOK_SECRET": GENERIC_SECRET,
    }
    settings = load_service_settings(data=data, env={**secrets, **(env or {})})
    app = create_app(config, settings, tracing=tracing)
    return ServiceEnv(app, config, settings, root, log_url)


def verify_chain(log_url: str, key_path: Path) -> Any:
    """Verify the whole log at ``log_url`` with the signer's public key; return the report."""
    from audit.keys import NoteVerifier, load_signer
    from audit.store import open_store
    from audit.verify import Verifier

    vkey = load_signer(key_path).vkey
    store = open_store(log_url)
    try:
        return Verifier([NoteVerifier.from_vkey(vkey)]).verify(
            store.iter_entries(), store.iter_checkpoints()
        )
    finally:
        store.close()


@pytest.fixture
def service_env(tmp_path: Path) -> ServiceEnv:
    """An app over a fresh SQLite log, with every role's token."""
    return build_env(tmp_path)


@pytest.fixture
def client(service_env: ServiceEnv) -> Iterator[Any]:
    """A TestClient of the app; server errors come back as responses."""
    from fastapi.testclient import TestClient

    with TestClient(service_env.app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def fixed_minute(monkeypatch: pytest.MonkeyPatch) -> float:
    """Pin the webhook clock to the start of a minute, so rejection buckets cannot straddle one."""
    import time
    import types

    from policyengine.service import webhooks_common

    now = time.time()
    pinned = now - now % 60 + 1
    monkeypatch.setattr(webhooks_common, "time", types.SimpleNamespace(time=lambda: pinned))
    return pinned


@pytest.fixture
def clean_serve_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """serve exports its settings to os.environ for its workers: undo that after each test."""
    for name in ("POLICYENGINE_SERVICE_CONFIG", "POLICYENGINE_SERVE_FLAGS",
                 "POLICYENGINE_TOKENS_FILE", "POLICYENGINE_ENGINE", "POLICYENGINE_LOG_LEVEL"):
        monkeypatch.setenv(name, "")  # registers the original value for restoration
        monkeypatch.delenv(name)


@pytest.fixture
def make_env(tmp_path: Path) -> Callable[..., ServiceEnv]:
    """Build an app with custom service settings."""
    return lambda **kw: build_env(tmp_path, **kw)
