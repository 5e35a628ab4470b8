"""The container image and the compose file agree with what the service reads."""

from __future__ import annotations

import json
import re
import shlex

import yaml

from tests.conftest import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
COMPOSE = REPO_ROOT / "deploy" / "compose.yaml"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per Dockerfile instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _exec_form(args: str) -> list[str]:
    return json.loads(args) if args.startswith("[") else shlex.split(args)


def test_dockerfile_runs_the_service_as_a_non_root_user():
    """python:3.11-slim base, installs the service extras, runs as non-root, checks /healthz."""
    steps = _instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    runs = " ".join(a for k, a in steps if k == "RUN")
    assert re.search(r"pip install \"?\.\[[^\]]*service[^\]]*postgres", runs)
    users = [a for k, a in steps if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    last_user = max(i for i, (k, _) in enumerate(steps) if k == "USER")
    (health,) = [a for k, a in steps if k == "HEALTHCHECK"]
    assert "/healthz" in health
    (entry,) = [a for k, a in steps if k == "ENTRYPOINT"]
    assert _exec_form(entry)[:2] == ["policyengine", "serve"]
    assert "0.0.0.0" in _exec_form(entry)  # reachable from outside the container
    assert last_user < next(i for i, (k, _) in enumerate(steps) if k == "ENTRYPOINT")


def test_dockerignore_keeps_secrets_and_state_out_of_the_context():
    """Keys, databases, the venv and git history never enter the build context."""
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    for pattern in (".git", ".venv", "*.key", "*.db", ".policyengine"):
        assert pattern in ignored


def _service_variables() -> set[str]:
    """Environment variables the gate configuration and service settings read."""
    names = set()
    for path in ("policyengine/config.py", "policyengine/service/settings.py",
                 "policyengine/service/auth.py"):
        names |= set(re.findall(r"\b((?:POLICYENGINE|MLFLOW|OTEL)_[A-Z_]+)\b",
                                (REPO_ROOT / path).read_text()))
    return names


def test_compose_runs_the_service_on_postgres_with_the_variables_it_reads():
    """compose.yaml parses, pairs the service with postgres, and sets only variables it reads."""
    doc = yaml.safe_load(COMPOSE.read_text())
    services = doc["services"]
    assert {"policyengine", "postgres"} <= set(services)
    app = services["policyengine"]
    assert app["build"]["dockerfile"] == "Dockerfile"
    assert "postgres" in app["depends_on"]
    env = app["environment"]
    assert env["POLICYENGINE_LOG_URL"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in env["POLICYENGINE_LOG_URL"]
    read = _service_variables()
    assert set(env) - read == set()
    for needed in ("POLICYENGINE_LOG_URL", "POLICYENGINE_SIGNING_KEY", "POLICYENGINE_TOKENS_FILE"):
        assert needed in env
