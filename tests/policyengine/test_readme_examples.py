"""The README's configuration examples load as written, through the strict loaders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from policyengine.config import load_config
from policyengine.service.auth import hash_token, load_token_records
from policyengine.service.settings import load_service_settings
from policyengine.trust import load_trust

README = Path(__file__).resolve().parents[2] / "README.md"
_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks(first_line: str) -> list[str]:
    """YAML blocks of the README whose first line is ``first_line``."""
    found = [b for b in _BLOCK.findall(README.read_text()) if b.split("\n", 1)[0] == first_line]
    assert found, f"README.md has no yaml block starting with {first_line!r}"
    return found


def _filled(text: str) -> str:
    """The placeholders a reader replaces (<64 hex>, <vkey>) filled with real values."""
    from audit.keys import generate_key

    count = iter(range(1000))
    text = re.sub(r"<64 hex>", lambda _: hash_token(f"token-{next(count)}"), text)
    return text.replace("<vkey>", generate_key("bob@bank.example")[1])


def test_readme_policyengine_yaml_loads(tmp_path):
    """The policyengine.yaml example loads, and its service section loads too."""
    (text,) = _blocks("# policyengine.yaml")
    path = tmp_path / "policyengine.yaml"
    path.write_text(text)
    config = load_config(env={}, cwd=tmp_path)
    assert config.environment == "production"
    assert config.params_for()["fairness-thresholds"] == {"min_dp_ratio": 0.9}
    settings = load_service_settings(env={}, config_file=path)
    assert settings.tokens_file == (tmp_path / "tokens.yaml").resolve()


def test_readme_trust_file_loads(tmp_path):
    """The trust-file example loads with its approver, roles and waiver roles."""
    (text,) = _blocks("# approvers.yaml")
    path = tmp_path / "approvers.yaml"
    path.write_text(_filled(text))
    store = load_trust(path)
    assert store.approvers["bob@bank.example"].roles == {"model-risk"}
    assert store.waiver_roles == {"model-risk"}


def test_readme_tokens_file_loads(tmp_path):
    """The tokens.yaml example loads both records."""
    (text,) = _blocks("# tokens.yaml; the hash of a token: printf %s \"$TOKEN\" | sha256sum")
    path = tmp_path / "tokens.yaml"
    path.write_text(_filled(text))
    assert [r["id"] for r in load_token_records(path)] == ["ci-pipeline", "compliance"]


@pytest.mark.parametrize("where", ["section", "file"])
def test_readme_service_settings_load(tmp_path, where):
    """The service settings example loads as a policyengine.yaml section and as its own file."""
    (text,) = _blocks("service:")
    path = tmp_path / ("policyengine.yaml" if where == "section" else "service.yaml")
    path.write_text(text)
    env = {"POLICYENGINE_WEBHOOK_SECRET": "s1", "POLICYENGINE_MLFLOW_WEBHOOK_SECRET": "s2"}
    if where == "section":
        settings = load_service_settings(env=env, config_file=path)
    else:
        settings = load_service_settings(path, env=env)
    assert settings.generic_secret == "s1" and settings.mlflow.secret == "s2"
    assert settings.mlflow.tracking_uri == "http://127.0.0.1:5000"
    assert settings.tokens_file == (tmp_path / "tokens.yaml").resolve()
