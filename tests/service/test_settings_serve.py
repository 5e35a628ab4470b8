"""Service settings (file, policyengine.yaml section, environment) and serve's checks."""

from __future__ import annotations

import io
import json

import pytest

from policyengine.cli import main
from policyengine.errors import ConfigError
from policyengine.service.settings import load_service_settings


def test_service_section_of_policyengine_yaml(tmp_path):
    """Without a settings file policyengine.yaml's service: section applies, relative to it."""
    cfg = tmp_path / "policyengine.yaml"
    cfg.write_text(
        "service:\n  tokens_file: tokens.yaml\n  mlflow:\n    aliases: {prod: production}\n"
        "    on_violation: delete\n"
    )
    settings = load_service_settings(
        env={"POLICYENGINE_MLFLOW_WEBHOOK_SECRET": "s"}, config_file=cfg
    )
    assert settings.tokens_file == (tmp_path / "tokens.yaml").resolve()
    assert dict(settings.mlflow.aliases) == {"prod": "production"}
    assert settings.mlflow.on_violation == "delete" and settings.mlflow.secret == "s"


def test_settings_file_wins_and_secrets_come_from_named_variables(tmp_path):
    """A named settings file wins over policyengine.yaml; secrets come from the named variables."""
    own = tmp_path / "service.yaml"
    own.write_text("webhooks: {generic_secret_env: MY_SECRET, max_age_seconds: 60}\n")
    settings = load_service_settings(own, env={"MY_SECRET": "zq-secret-9"})
    assert settings.generic_secret == "zq-secret-9" and settings.webhook_max_age_s == 60
    assert "zq-secret-9" not in repr(settings)


@pytest.mark.parametrize(
    "text", ["mlflow: {on_violation: explode}\n", "limits: {max_body_bytes: -1}\n"]
)
def test_invalid_settings_are_config_errors(tmp_path, text):
    """A bad value names its key."""
    own = tmp_path / "service.yaml"
    own.write_text(text)
    with pytest.raises(ConfigError, match="service config"):
        load_service_settings(own, env={})


def _serve(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["serve", *argv], out=out, err=err)
    return code, err.getvalue()


def test_serve_refuses_a_log_it_cannot_open(tmp_path):
    """An unreachable log exits 3 before any worker starts."""
    from policyengine.service.auth import hash_token
    from tests.service.conftest import write_key

    (tmp_path / "service.yaml").write_text(
        f"tokens: [{{id: ci, sha256: '{hash_token('t')}', roles: [evaluator]}}]\n"
    )
    code, err = _serve(
        [
            "--log",
            f"sqlite:///{tmp_path}/missing/dir/a.db",
            "--signing-key",
            str(write_key(tmp_path)),
            "--service-config",
            str(tmp_path / "service.yaml"),
        ]
    )
    assert code == 3, err
    assert "unavailable" in err


def test_serve_refuses_a_bad_token_file(tmp_path):
    """A token file with an unknown role exits 2 naming the problem."""
    from tests.service.conftest import write_key

    (tmp_path / "tokens.yaml").write_text(
        "tokens: [{id: x, sha256: '" + "0" * 64 + "', roles: [root]}]\n"
    )
    (tmp_path / "service.yaml").write_text("tokens_file: tokens.yaml\n")
    code, err = _serve(
        [
            "--log",
            f"sqlite:///{tmp_path}/a.db",
            "--signing-key",
            str(write_key(tmp_path)),
            "--service-config",
            str(tmp_path / "service.yaml"),
        ]
    )
    assert code == 2 and "roles" in err


def test_serve_hands_absolute_flags_to_workers(tmp_path, monkeypatch):
    """Workers get the same configuration as JSON flags with absolute paths."""
    import argparse

    from policyengine.cli.serve import serve_environment

    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(
        config=None,
        log="a.db",
        signing_key="k.key",
        trust_file=None,
        env=None,
        allow_unsigned=True,
        policies=["pol"],
        service_config="s.yaml",
    )
    env = serve_environment(args)
    flags = json.loads(env["POLICYENGINE_SERVE_FLAGS"])
    assert flags["log"] == str(tmp_path / "a.db") and flags["policies"] == [str(tmp_path / "pol")]
    assert env["POLICYENGINE_SERVICE_CONFIG"] == str(tmp_path / "s.yaml")
