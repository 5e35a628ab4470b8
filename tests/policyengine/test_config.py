"""Configuration: file, environment variables and flags, in that order of precedence."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest

from policyengine.config import builtin_policies_dir, load_config, parse_duration
from policyengine.errors import ConfigError, KeyUnavailableError


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_without_configuration(tmp_path):
    """Nothing configured: SQLite log under .policyengine/, built-in policies, 24h freshness."""
    config = load_config(env={}, cwd=tmp_path)
    assert config.log_url == f"sqlite:///{tmp_path.resolve()}/.policyengine/audit.db"
    assert config.policies == (builtin_policies_dir(),)
    assert config.freshness == timedelta(hours=24)
    assert config.config_file is None and not config.ci


def test_file_values_resolve_relative_to_file(tmp_path):
    """Paths in policyengine.yaml are relative to the file, not the working directory."""
    _write(
        tmp_path / "policyengine.yaml",
        "log: logs/a.db\npolicies: [mypolicies]\ntrust_file: approvers.yaml\n"
        "promotion: {max_decision_age: 2h}\n",
    )
    config = load_config(env={}, cwd=tmp_path)
    assert config.log_url == f"sqlite:///{tmp_path.resolve()}/logs/a.db"
    assert config.policies == ((tmp_path / "mypolicies").resolve(),)
    assert config.trust_file == (tmp_path / "approvers.yaml").resolve()
    assert config.freshness == timedelta(hours=2)


def test_env_beats_file_and_flag_beats_env(tmp_path):
    """POLICYENGINE_LOG_URL overrides the file; --log overrides the variable."""
    _write(tmp_path / "policyengine.yaml", "log: file.db\n")
    env = {"POLICYENGINE_LOG_URL": "postgresql+psycopg://u@h/db"}
    assert load_config(env=env, cwd=tmp_path).log_url == "postgresql+psycopg://u@h/db"
    flagged = load_config({"log": "flag.db"}, env=env, cwd=tmp_path)
    assert flagged.log_url == f"sqlite:///{tmp_path.resolve()}/flag.db"


def test_policies_from_env_path_list(tmp_path):
    """POLICYENGINE_POLICIES is a path list (os.pathsep separated)."""
    config = load_config(env={"POLICYENGINE_POLICIES": "a:b"}, cwd=tmp_path)
    assert config.policies == ((tmp_path / "a").resolve(), (tmp_path / "b").resolve())


def test_params_per_environment(tmp_path):
    """File-wide params are overridden by the selected environment's params."""
    _write(
        tmp_path / "policyengine.yaml",
        "params: {fairness: {min_dp_ratio: 0.8, max_diff: 0.1}}\n"
        "environments:\n  production: {params: {fairness: {min_dp_ratio: 0.9}}}\n"
        "  staging: {}\n",
    )
    config = load_config(env={"POLICYENGINE_ENV": "production"}, cwd=tmp_path)
    assert config.params_for() == {"fairness": {"min_dp_ratio": 0.9, "max_diff": 0.1}}
    staging = load_config({"env": "staging"}, env={"POLICYENGINE_ENV": "production"}, cwd=tmp_path)
    assert staging.params_for() == {"fairness": {"min_dp_ratio": 0.8, "max_diff": 0.1}}


def test_stage_selects_environment_when_none_set(tmp_path):
    """Without an explicit environment, the target stage's section applies."""
    _write(
        tmp_path / "policyengine.yaml",
        "environments:\n  production: {params: {slo: {p95_ms: 150}}}\n",
    )
    config = load_config(env={}, cwd=tmp_path)
    assert config.params_for("production") == {"slo": {"p95_ms": 150}}
    assert config.params_for("staging") == {}


def test_unknown_key_rejected(tmp_path):
    """A misspelt key is an error naming the key, not silently ignored."""
    _write(tmp_path / "policyengine.yaml", "logg: x.db\n")
    with pytest.raises(ConfigError, match=r"unknown key.*logg"):
        load_config(env={}, cwd=tmp_path)


@pytest.mark.parametrize("value", ['"false"', '"no"', "1", "[]"])
def test_allow_unsigned_must_be_a_boolean(tmp_path, value):
    """allow_unsigned_approvals: "false" (a non-empty string) is refused, never read as true."""
    _write(tmp_path / "policyengine.yaml", f"allow_unsigned_approvals: {value}\n")
    with pytest.raises(ConfigError, match="allow_unsigned_approvals: input should be a valid bool"):
        load_config(env={}, cwd=tmp_path)


@pytest.mark.parametrize(("value", "want"), [("true", True), ("false", False)])
def test_allow_unsigned_boolean_read(tmp_path, value, want):
    """A YAML boolean allow_unsigned_approvals is read as such."""
    _write(tmp_path / "policyengine.yaml", f"allow_unsigned_approvals: {value}\n")
    assert load_config(env={}, cwd=tmp_path).allow_unsigned_approvals is want


def test_invalid_yaml_rejected(tmp_path):
    """Broken YAML is a ConfigError naming the file."""
    _write(tmp_path / "policyengine.yaml", "log: [unclosed\n")
    with pytest.raises(ConfigError, match=r"policyengine\.yaml: invalid YAML"):
        load_config(env={}, cwd=tmp_path)


def test_missing_explicit_config_rejected(tmp_path):
    """--config naming a missing file is an error, not a fallback to defaults."""
    with pytest.raises(ConfigError, match="not found"):
        load_config({"config": "nope.yaml"}, env={}, cwd=tmp_path)


@pytest.mark.parametrize(
    ("text", "want"),
    [("90s", 90), ("30m", 1800), ("24h", 86400), ("7d", 604800), ("2w", 1209600), (15, 15)],
)
def test_parse_duration(text, want):
    """Durations accept s/m/h/d/w suffixes and plain seconds."""
    assert parse_duration(text) == timedelta(seconds=want)


@pytest.mark.parametrize("text", ["", "5y", "h", "-3d", None])
def test_parse_duration_rejects(text):
    """Anything else is a ConfigError."""
    with pytest.raises(ConfigError, match="expected a duration"):
        parse_duration(text)


def test_ci_without_key_is_unavailable(tmp_path):
    """CI=true and no key configured: KeyUnavailableError telling how to configure one."""
    config = load_config(env={"CI": "true"}, cwd=tmp_path)
    with pytest.raises(KeyUnavailableError, match="POLICYENGINE_SIGNING_KEY"):
        config.signer()
    assert not (tmp_path / ".policyengine" / "dev-signing.key").exists()


def test_dev_key_generated_mode_600_and_announced(tmp_path, capsys):
    """Locally a development key is generated once (mode 600) and announced on stderr."""
    import io

    config = load_config(env={}, cwd=tmp_path)
    err = io.StringIO()
    first = config.signer(err)
    key = tmp_path / ".policyengine" / "dev-signing.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "DEVELOPMENT signing key" in err.getvalue() and "generated" in err.getvalue()
    again = config.signer(io.StringIO())
    assert again.vkey == first.vkey
    assert (tmp_path / ".policyengine" / "dev-signing.pub").read_text().strip() == first.vkey


def test_configured_key_used_in_ci(tmp_path):
    """With POLICYENGINE_SIGNING_KEY set to a key file, CI signs with it."""
    import os

    from audit.keys import generate_key

    skey, vkey = generate_key("ci-log")
    path = tmp_path / "ci.key"
    path.write_text(skey + "\n")
    os.chmod(path, 0o600)
    config = load_config(env={"CI": "true", "POLICYENGINE_SIGNING_KEY": str(path)}, cwd=tmp_path)
    assert config.signer().vkey == vkey


def test_unreadable_configured_key_is_unavailable(tmp_path):
    """A configured key that cannot be loaded is KeyUnavailableError, never the dev key."""
    config = load_config({"signing_key": "missing.key"}, env={}, cwd=tmp_path)
    with pytest.raises(KeyUnavailableError):
        config.signer()


def test_signing_key_text_in_env(tmp_path):
    """POLICYENGINE_SIGNING_KEY may hold the key itself (a CI secret), not only a path."""
    from audit.keys import generate_key

    skey, vkey = generate_key("ci-secret")
    config = load_config(env={"CI": "true", "POLICYENGINE_SIGNING_KEY": skey}, cwd=tmp_path)
    assert config.signer().vkey == vkey


def test_malformed_signing_key_text_is_unavailable(tmp_path):
    """A malformed key in the variable is KeyUnavailableError (exit 3), not a crash."""
    config = load_config(env={"POLICYENGINE_SIGNING_KEY": "PRIVATE+KEY+x+00+AA"}, cwd=tmp_path)
    with pytest.raises(KeyUnavailableError, match="signing key unavailable"):
        config.signer()


def test_empty_log_flag_is_refused_not_defaulted(tmp_path):
    """`--log ''` (an unset variable in a script) is a config error, not the default log."""
    with pytest.raises(ConfigError, match="--log is empty"):
        load_config(flags={"log": ""}, env={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="--log is empty"):
        load_config(flags={"log": "  "}, env={"POLICYENGINE_LOG_URL": "x.db"}, cwd=tmp_path)


def test_defaults_without_a_file_equal_a_validated_empty_file():
    """The no-file defaults (plain data, no pydantic) equal an empty file validated."""
    from dataclasses import asdict, fields

    from policyengine.config import _NoFile
    from policyengine.config_file import ConfigFile

    validated = ConfigFile.model_validate({}).model_dump()
    assert [f.name for f in fields(_NoFile)] == list(ConfigFile.model_fields)
    assert asdict(_NoFile()) == validated


def test_a_misspelled_key_is_refused_although_validators_are_built_late(tmp_path):
    """Deferring the validator's build does not loosen it: an unknown key is still an error."""
    from policyengine.config import load_config
    from policyengine.errors import ConfigError

    (tmp_path / "policyengine.yaml").write_text("orign: x\n")
    with pytest.raises(ConfigError, match="unknown key 'orign'; did you mean 'origin'"):
        load_config(cwd=tmp_path, env={})
