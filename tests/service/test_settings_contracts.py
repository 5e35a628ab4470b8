"""Service settings and tokens files: unknown keys, repeated hashes and a service with
no token are refused at start-up (exit 2), naming the file and the key."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from policyengine.cli import main
from policyengine.errors import ConfigError
from policyengine.service.auth import hash_token
from policyengine.service.settings import load_service_settings
from tests.service.conftest import write_key

pytestmark = pytest.mark.usefixtures("clean_serve_environment")


TOKENS_OK = f"tokens:\n  - {{id: ci, sha256: '{hash_token('t-1')}', roles: [evaluator]}}\n"


def _check(tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    """Run `serve --check` over a fresh log in ``tmp_path``."""
    out, err = io.StringIO(), io.StringIO()
    argv = ["serve", "--check", "--log", str(tmp_path / "a.db"),
            "--signing-key", str(write_key(tmp_path)), *extra]
    code = main(argv, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _files(tmp_path: Path, settings: str, tokens: str = TOKENS_OK) -> Path:
    (tmp_path / "tokens.yaml").write_text(tokens)
    path = tmp_path / "service.yaml"
    path.write_text(settings)
    return path


def test_readme_shaped_settings_file_starts_with_its_tokens(tmp_path):
    """A --service-config file written under `service:` (as in the README) is read, not ignored."""
    path = _files(tmp_path, "service:\n  tokens_file: tokens.yaml\n")
    settings = load_service_settings(path, env={})
    assert settings.tokens_file == (tmp_path / "tokens.yaml").resolve()
    code, out, err = _check(tmp_path, "--service-config", str(path))
    assert code == 0, err
    assert "configuration ok" in out


MISSPELLED = [
    ("token_file: tokens.yaml\n", "token_file", "tokens_file"),
    ("service:\n  token_file: tokens.yaml\n", "service.token_file", "tokens_file"),
    ("tokens_file: tokens.yaml\nmlflow: {on_violaton: record}\n", "mlflow.on_violaton",
     "on_violation"),
    ("tokens_file: tokens.yaml\nlimits: {max_body_byte: 10}\n", "limits.max_body_byte",
     "max_body_bytes"),
    ("tokens_file: tokens.yaml\nwebhook: {max_age_seconds: 60}\n", "webhook", "webhooks"),
]


@pytest.mark.parametrize(("text", "key", "hint"), MISSPELLED)
def test_misspelled_settings_key_refuses_to_start(tmp_path, text, key, hint):
    """serve exits 2 with one line naming the settings file, the key and the close valid key."""
    path = _files(tmp_path, text)
    code, _, err = _check(tmp_path, "--service-config", str(path))
    assert code == 2, err
    assert err.count("\n") == 1
    assert str(path) in err and repr(key) in err and f"did you mean {hint!r}" in err


@pytest.mark.parametrize(("text", "key", "hint"), MISSPELLED)
def test_settings_loader_refuses_misspelled_keys(tmp_path, text, key, hint):
    """load_service_settings raises ConfigError naming the key, for the file and for data."""
    path = _files(tmp_path, text)
    with pytest.raises(ConfigError, match=f"{key!r}; did you mean {hint!r}"):
        load_service_settings(path, env={})


def test_misspelled_key_in_policyengine_yaml_service_section(tmp_path):
    """In policyengine.yaml the service section's keys are checked too, with their full path."""
    cfg = tmp_path / "policyengine.yaml"
    cfg.write_text("service:\n  mlflow: {on_violaton: record}\n")
    with pytest.raises(ConfigError, match=r"'service\.mlflow\.on_violaton'; did you mean"):
        load_service_settings(env={}, config_file=cfg)


def test_tokens_file_with_a_misspelled_key_refuses_to_start(tmp_path):
    """`token:` instead of `tokens:` in the tokens file exits 2 naming the key and the file."""
    tokens = TOKENS_OK.replace("tokens:", "token:")
    path = _files(tmp_path, "tokens_file: tokens.yaml\n", tokens=tokens)
    code, _, err = _check(tmp_path, "--service-config", str(path))
    assert code == 2, err
    assert str(tmp_path / "tokens.yaml") in err and "'token'; did you mean 'tokens'?" in err


def test_repeated_token_hash_refuses_to_start(tmp_path):
    """Two records with one sha256 exit 2: which roles apply would otherwise be the last one's."""
    digest = hash_token("t-1")
    tokens = ("tokens:\n"
              f"  - {{id: ci, sha256: '{digest}', roles: [evaluator]}}\n"
              f"  - {{id: boss, sha256: '{digest}', roles: [admin]}}\n")
    path = _files(tmp_path, "tokens_file: tokens.yaml\n", tokens=tokens)
    code, _, err = _check(tmp_path, "--service-config", str(path))
    assert code == 2, err
    assert "tokens[1].sha256 repeats tokens[0].sha256" in err


def test_service_without_tokens_refuses_to_start(tmp_path, monkeypatch):
    """With no bearer token configured, serve exits 2 instead of starting and reporting ready."""
    monkeypatch.chdir(tmp_path)
    code, _, err = _check(tmp_path)
    assert code == 2, err
    assert "no bearer tokens configured" in err and "tokens_file" in err


def test_token_value_is_not_echoed_when_pasted_into_sha256(tmp_path):
    """A raw token in the sha256 field is refused without printing it."""
    from policyengine.service.auth import load_token_records

    path = tmp_path / "tokens.yaml"
    path.write_text("tokens: [{id: ci, sha256: 'sk-live-do-not-print', roles: [evaluator]}]\n")
    with pytest.raises(ConfigError) as info:
        load_token_records(path)
    assert "tokens.0.sha256" in str(info.value)
    assert "sk-live-do-not-print" not in str(info.value)
