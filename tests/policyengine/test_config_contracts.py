"""Configuration contracts: a misspelled or misplaced key in policyengine.yaml or the
trust file is refused (exit 2) naming the file and the key, never ignored."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from policyengine.cli import main
from policyengine.config import load_config
from policyengine.errors import ConfigError
from policyengine.trust import load_trust

REPO = Path(__file__).resolve().parents[2]
CARD = REPO / "examples" / "cards" / "credit-risk-scorer.yaml"
VKEY = "bob@bank.example+1a2b3c4d+AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefGHI="


def _gate(tmp_path: Path, *extra: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    argv = ["gate", str(CARD), "--to", "production", "--log", str(tmp_path / "a.db"), *extra]
    code = main(argv, out=out, err=err)
    return code, err.getvalue()


@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        ("promotion: {max_decison_age: 1h}\n", "promotion.max_decison_age", "max_decision_age"),
        (
            "environments:\n  staging: {parmas: {fairness: {min_dp_ratio: 0.9}}}\n",
            "environments.staging.parmas",
            "params",
        ),
        ("polices: [p]\n", "polices", "policies"),
        ("trust_flie: approvers.yaml\n", "trust_flie", "trust_file"),
    ],
)
def test_misspelled_config_key_exits_2_naming_key_and_file(tmp_path, text, key, hint):
    """A misspelled key, top level or nested, stops the gate with exit 2 and a close valid key."""
    cfg = tmp_path / "policyengine.yaml"
    cfg.write_text(text)
    code, err = _gate(tmp_path, "--config", str(cfg))
    assert code == 2, err
    assert err.count("\n") == 1
    assert str(cfg) in err and repr(key) in err and f"did you mean {hint!r}" in err
    assert not (tmp_path / "a.db").exists()


def test_unknown_environment_name_exits_2_with_suggestion(tmp_path):
    """`environment: prodution` names an environment the file does not define: exit 2."""
    cfg = tmp_path / "policyengine.yaml"
    cfg.write_text(
        "environment: prodution\n"
        "environments:\n  production: {params: {}}\n  staging: {params: {}}\n"
    )
    code, err = _gate(tmp_path, "--config", str(cfg))
    assert code == 2, err
    assert "'prodution'" in err and "did you mean 'production'" in err and str(cfg) in err


def test_environment_from_variable_must_be_defined(tmp_path):
    """POLICYENGINE_ENV naming no defined environment is refused, saying where it came from."""
    with pytest.raises(ConfigError, match="POLICYENGINE_ENV: unknown environment 'qa'"):
        load_config(env={"POLICYENGINE_ENV": "qa"}, cwd=tmp_path)


def test_wrong_value_type_names_the_key(tmp_path):
    """A value of the wrong type names its dotted key (a string is not a boolean)."""
    (tmp_path / "policyengine.yaml").write_text("allow_unsigned_approvals: 'false'\n")
    with pytest.raises(ConfigError, match=r"allow_unsigned_approvals: input should be a valid"):
        load_config(env={}, cwd=tmp_path)


def _trust(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "approvers.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            f"approvers: [{{id: bob, roles: [r], keys: ['{VKEY}']}}]\nwaiver_role: [r]\n",
            "unknown key 'waiver_role'; did you mean 'waiver_roles'?",
        ),
        (
            f"approvers: [{{id: bob, role: [r], keys: ['{VKEY}']}}]\n",
            "unknown key 'approvers.0.role'; did you mean 'roles'?",
        ),
        (
            f"apiVersion: policyengine/v9\napprovers: [{{id: bob, keys: ['{VKEY}']}}]\n",
            "apiVersion: input should be 'policyengine/v1', got 'policyengine/v9'",
        ),
        ("apiversion: policyengine/v1\napprovers: []\n", "did you mean 'apiVersion'?"),
    ],
)
def test_trust_file_mistakes_exit_2(tmp_path, text, needle):
    """A misspelled trust-file key or a foreign apiVersion stops the gate with exit 2."""
    trust = _trust(tmp_path, text)
    code, err = _gate(tmp_path, "--trust-file", str(trust))
    assert code == 2, err
    assert str(trust) in err and needle in err, err
    assert not (tmp_path / "a.db").exists()


def test_trust_file_as_documented_loads(tmp_path):
    """The documented trust file (header, approvers, waiver_roles) loads with its roles."""
    from audit.keys import generate_key

    _, vkey = generate_key("bob@bank.example")
    path = _trust(
        tmp_path,
        "apiVersion: policyengine/v1\nkind: Approvers\n"
        f"approvers:\n  - {{id: bob@bank.example, roles: [model-risk], keys: ['{vkey}']}}\n"
        "waiver_roles: [model-risk]\n",
    )
    store = load_trust(path)
    assert store.waiver_roles == {"model-risk"}
    assert store.approvers["bob@bank.example"].roles == {"model-risk"}


def test_approvals_module_still_exports_trust_loading():
    """approvals.load_trust and approvals.TrustStore are the trust module's own."""
    from policyengine import approvals, trust

    assert approvals.load_trust is trust.load_trust and approvals.TrustStore is trust.TrustStore
