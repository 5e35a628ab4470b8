"""The service's CEL engine: fast by default, the reference on request, one setting order."""

from __future__ import annotations

import io
from pathlib import Path
from typing import get_args

import pytest
from fastapi.testclient import TestClient

from policyengine.cli import main
from policyengine.errors import ConfigError
from policyengine.policy import cel_native
from policyengine.policy.compile import ENGINES
from policyengine.service import settings as settings_module
from policyengine.service.settings import load_service_settings
from tests.service.conftest import auth, build_env, example_card
from tests.service.servers import service_files

pytestmark = pytest.mark.usefixtures("clean_serve_environment")


def test_settings_name_exactly_the_compilers_engines() -> None:
    """The settings and ``serve --engine`` accept the very engines the compiler knows."""
    from policyengine.cli import serve

    assert get_args(settings_module._Engine) == ENGINES == serve._ENGINES


def test_service_compiles_for_the_fast_path_by_default(tmp_path: Path) -> None:
    """With nothing configured the service's policies compile for the fast path."""
    env = build_env(tmp_path)
    compiled = env.app.state.svc.engine.compiled("production")
    assert env.settings.engine == "fast" and compiled.engine == "fast"
    assert (compiled.native_env is not None) == cel_native.AVAILABLE


def test_engine_setting_chooses_the_reference(tmp_path: Path) -> None:
    """``engine: reference`` in the service settings compiles for cel-python alone."""
    env = build_env(tmp_path, service={"engine": "reference"})
    compiled = env.app.state.svc.engine.compiled("production")
    assert compiled.engine == "reference" and compiled.native_env is None


def test_engine_variable_wins_over_the_setting() -> None:
    """POLICYENGINE_ENGINE wins over the file's ``engine:`` (environment over file)."""
    settings = load_service_settings(data={"engine": "shadow"},
                                     env={"POLICYENGINE_ENGINE": "reference"})
    assert settings.engine == "reference"


@pytest.mark.parametrize("data, env", [({}, {"POLICYENGINE_ENGINE": "quick"}),
                                       ({"engine": "native"}, {})])
def test_unknown_engine_is_a_config_error(data: dict[str, str], env: dict[str, str]) -> None:
    """An engine name nobody knows stops the start; it is never read as the default."""
    with pytest.raises(ConfigError, match=r"(?i)engine"):
        load_service_settings(data=data, env=env)  # the message names the source


def test_fast_and_reference_services_decide_alike(tmp_path: Path) -> None:
    """The same cards through a fast, a shadow and a reference service get the same results."""
    answers = {}
    for engine in ENGINES:
        env = build_env(tmp_path, log_url=f"sqlite:///{tmp_path / engine}.db",
                        service={"engine": engine})
        with TestClient(env.app) as client:
            got = []
            for auc in (0.9, 0.5):
                body = {"card": example_card(auc=auc), "event": {"type": "promote",
                                                                 "stage": "production"}}
                r = client.post("/v1/decisions", json=body, headers=auth("evaluator"))
                assert r.status_code == 200, r.text
                decision = r.json()["decision"]
                got.append((decision["decision"], decision["results"], decision["bundle_digest"]))
        answers[engine] = got
    assert answers["fast"] == answers["reference"] == answers["shadow"]
    assert [verdict for verdict, _, _ in answers["fast"]] == ["allow", "deny"]


def _serve_check(tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    (tmp_path / "root").mkdir(exist_ok=True)
    flags = service_files(tmp_path / "root")
    out, err = io.StringIO(), io.StringIO()
    code = main(["serve", "--check", "--log", f"sqlite:///{tmp_path / 'a.db'}", *flags, *extra],
                out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_serve_check_names_the_engine_and_the_flag_wins(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve --check`` says which engine decides; ``--engine`` wins over the variable."""
    code, out, err = _serve_check(tmp_path)
    assert code == 0, err
    assert "engine fast" in out
    monkeypatch.setenv("POLICYENGINE_ENGINE", "shadow")
    code, out, err = _serve_check(tmp_path, "--engine", "reference")
    assert code == 0 and "engine reference" in out, err


def test_serve_check_compiles_the_policies(tmp_path: Path) -> None:
    """A policy that does not load stops ``serve --check`` with exit 2, before any worker."""
    root = tmp_path / "root"
    root.mkdir()
    flags = service_files(root)
    (root / "policies" / "broken.yaml").write_text(
        "apiVersion: policyengine/v1\nkind: Policy\nmetadata: {name: broken, version: 1.0.0}\n"
        "spec:\n  rules:\n    - {id: r, severity: deny, expr: 'card.(', message: '\"m\"'}\n"
    )
    out, err = io.StringIO(), io.StringIO()
    code = main(["serve", "--check", "--log", f"sqlite:///{tmp_path / 'a.db'}", *flags],
                out=out, err=err)
    assert code == 2, err.getvalue()
    assert "broken" in err.getvalue()
    assert "Traceback" not in err.getvalue()


def test_prepare_builds_what_a_first_decision_would(tmp_path: Path) -> None:
    """Before its first request a worker has every rule's code compiled and the validators."""
    from policyengine.resources import fast_validator

    env = build_env(tmp_path)
    svc = env.app.state.svc
    fast_validator.cache_clear()
    svc.prepare()
    rules = svc.engine.compiled("production").rules()
    assert rules and all("code" in vars(r.expr) and "code" in vars(r.message) for r in rules)
    before = fast_validator.cache_info()
    fast_validator("model-card"), fast_validator("lifecycle-event")
    after = fast_validator.cache_info()  # both were built already: two hits, no miss
    assert (after.hits - before.hits, after.misses - before.misses) == (2, 0)
