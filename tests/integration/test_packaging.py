"""The exact commands in action.yml, the GitLab template and .pre-commit-hooks.yaml work."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import xmlschema
import yaml

from tests.integration.gatecli import CARD, REPO, environ

BIN = str(Path(sys.executable).parent)
VECTORS = REPO / "tests" / "vectors"
_EXPR = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")


def _bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def ci_env(tmp_path):
    """A CI environment with policyengine on PATH and a configured log signing key."""
    key = tmp_path / "keys" / "ci-log.key"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "policyengine",
            "keys",
            "generate",
            "ci-log",
            "--out",
            str(key.parent),
        ],
        capture_output=True,
        text=True,
        env=environ(),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    env = environ(CI="true", PATH=f"{BIN}:{environ()['PATH']}")
    return env, key.read_text().strip()


# --- GitHub composite action -------------------------------------------------------------


def _render(text: str, values: dict[str, str]) -> str:
    return _EXPR.sub(lambda m: values.get(m.group(1), ""), str(text))


def _outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def _run_action(workdir: Path, env: dict[str, str], inputs: dict[str, str]) -> dict[str, object]:
    """Run every `run:` step of action.yml (not the pip install) as the runner would."""
    action = yaml.safe_load((REPO / "action.yml").read_text())
    values = {f"inputs.{k}": str(v.get("default", "")) for k, v in action["inputs"].items()}
    values.update({f"inputs.{k}": v for k, v in inputs.items()})
    values["github.action_path"] = str(REPO)
    out_file, summary = workdir / "github_output", workdir / "step_summary"
    out_file.touch()
    codes: dict[str, object] = {}
    for step in action["runs"]["steps"]:
        if "run" not in step or step.get("id") == "install":
            continue
        for key, val in _outputs(out_file).items():
            values[f"steps.gate.outputs.{key}"] = val
        step_env = dict(env, GITHUB_OUTPUT=str(out_file), GITHUB_STEP_SUMMARY=str(summary))
        step_env.update({k: _render(v, values) for k, v in (step.get("env") or {}).items()})
        assert step["shell"] == "bash"
        proc = _bash(_render(step["run"], values), workdir, step_env)
        codes[step["name"]] = proc.returncode
    codes["outputs"] = _outputs(out_file)
    return codes


def test_action_structure():
    """The action installs policyengine, gates, uploads SARIF to code scanning and the receipt."""
    action = yaml.safe_load((REPO / "action.yml").read_text())
    steps = {s["name"]: s for s in action["runs"]["steps"]}
    assert action["runs"]["using"] == "composite"
    assert "pip install" in steps["Install policyengine"]["run"]
    sarif = steps["Upload SARIF to code scanning"]
    assert sarif["uses"].startswith("github/codeql-action/upload-sarif@")
    assert sarif["with"]["sarif_file"] == "${{ inputs.sarif }}"
    receipt = steps["Upload the decision receipt"]
    assert receipt["uses"].startswith("actions/upload-artifact@")
    assert receipt["with"]["path"] == "${{ inputs.receipt }}"
    assert "--format sarif" in steps["Gate"]["run"] and "--receipt" in steps["Gate"]["run"]


@pytest.mark.parametrize(
    ("stage", "code", "decision"), [("staging", 0, "allow"), ("production", 1, "deny")]
)
def test_action_commands_run(tmp_path, ci_env, stage, code, decision):
    """The action's gate step writes SARIF and a receipt; the last step fails unless allowed."""
    env, skey = ci_env
    shutil.copy(CARD, tmp_path / "card.yaml")
    codes = _run_action(tmp_path, env, {"card": "card.yaml", "stage": stage, "signing-key": skey})
    assert codes["Gate"] == 0
    assert codes["outputs"] == {"exit-code": str(code), "decision": decision}
    assert codes["Fail unless allowed"] == code
    sarif = json.loads((tmp_path / "policyengine.sarif").read_text())
    schema = json.loads((VECTORS / "sarif" / "sarif-schema-2.1.0.json").read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(sarif)
    assert (tmp_path / "policyengine-receipt.json").is_file()
    assert f"policyengine gate: {decision}" in (tmp_path / "step_summary").read_text()


def test_action_without_key_fails_with_3(tmp_path, ci_env):
    """Without a signing key under CI the action's gate exits 3 and the job fails."""
    env, _ = ci_env
    shutil.copy(CARD, tmp_path / "card.yaml")
    codes = _run_action(tmp_path, env, {"card": "card.yaml", "stage": "staging"})
    assert codes["outputs"]["exit-code"] == "3" and codes["Fail unless allowed"] == 3


# --- GitLab CI template --------------------------------------------------------------------


def _gitlab_job() -> dict:
    template = yaml.safe_load(
        (REPO / "ci" / "gitlab" / "policyengine-gate.gitlab-ci.yml").read_text()
    )
    return template[".policyengine-gate"]


@pytest.mark.parametrize(("stage", "code"), [("staging", 0), ("production", 1)])
def test_gitlab_template_commands_run(tmp_path, ci_env, stage, code):
    """The template's script gates the card, writes valid JUnit and the receipt it keeps."""
    env, skey = ci_env
    job = _gitlab_job()
    assert any("pip install" in line for line in job["before_script"])
    shutil.copy(CARD, tmp_path / "card.yaml")
    variables = {k: str(v) for k, v in job["variables"].items()}
    variables.update(POLICYENGINE_CARD="card.yaml", POLICYENGINE_STAGE=stage)
    run_env = dict(env, GITLAB_CI="true", POLICYENGINE_SIGNING_KEY=skey, **variables)
    for line in job["script"]:
        assert _bash(line, tmp_path, run_env).returncode == code
    junit = tmp_path / variables["POLICYENGINE_JUNIT"]
    xmlschema.XMLSchema(VECTORS / "junit" / "JUnit.xsd").validate(junit.read_text())
    assert job["artifacts"]["reports"]["junit"] == "$POLICYENGINE_JUNIT"
    for path in job["artifacts"]["paths"]:
        assert (tmp_path / variables[path.lstrip("$")]).is_file()


# --- pre-commit hook --------------------------------------------------------------------------


def _hook() -> dict:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    return next(h for h in hooks if h["id"] == "policyengine-check")


def _selected(hook: dict, paths: list[str]) -> list[str]:
    """Files pre-commit passes to the hook (its `files` and `exclude` regexes)."""
    return [p for p in paths if re.search(hook["files"], p) and not re.search(hook["exclude"], p)]


def test_precommit_selects_policies_only():
    """The hook runs on policy files, not on pack tests or the approvers trust file."""
    hook = _hook()
    paths = [
        "policies/approvals/approvals.yaml",
        "policies/approvals/tests/cases.yaml",
        "policies/slo/slo_test.yaml",
        "policies/approvers.yaml",
        "examples/cards/x.yaml",
    ]
    assert _selected(hook, paths) == ["policies/approvals/approvals.yaml"]


def test_precommit_entry_runs(tmp_path, ci_env):
    """The hook's entry passes on the built-in packs and exits 2 on a policy with a CEL error."""
    env, _ = ci_env
    hook = _hook()
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    files = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "policies").rglob("*.y*ml"))
    chosen = _selected(hook, files)
    assert chosen
    good = subprocess.run(
        [*shlex.split(hook["entry"]), *chosen],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert good.returncode == 0, good.stdout + good.stderr
    broken = tmp_path / chosen[0]
    broken.write_text(broken.read_text().replace("expr: ", "expr: ((", 1))
    bad = subprocess.run(
        [*shlex.split(hook["entry"]), *chosen],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and chosen[0] in bad.stdout + bad.stderr
