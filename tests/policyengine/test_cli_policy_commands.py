"""The check, eval and test commands: output formats and exit codes (0/1/2), no tracebacks."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import jsonschema
import pytest

from policyengine import resources
from policyengine.cli import main

REPO = Path(__file__).resolve().parents[2]

POLICY = textwrap.dedent("""\
    apiVersion: policyengine/v1
    kind: Policy
    metadata: {name: fair, version: 1.0.0, description: d, references: [r]}
    spec:
      appliesTo: {events: [promote]}
      mode: enforce
      params: {min_ratio: 0.8}
      rules:
        - id: parity
          description: parity ratio at least min_ratio
          severity: deny
          expr: card.fairness.all(f, f.value >= params.min_ratio)
          message: '"parity ratio below " + string(params.min_ratio)'
          remediation: re-weight the data
        - id: tiered
          severity: warn
          expr: card.risk_tier != "minimal"
          message: '"minimal tier"'
    """)

CARD = {
    "schema_version": "1.0",
    "model": {"name": "scorer", "version": "2.0.0", "artifact_digest": "sha256:" + "ab" * 32},
    "risk_tier": "high",
    "fairness": [{"metric": "demographic_parity_ratio", "value": 0.93,
                  "protected_attribute": "sex", "groups": ["f", "m"], "dataset": "holdout"}],
}


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    """A policy pack directory with one policy."""
    (tmp_path / "pack").mkdir()
    (tmp_path / "pack" / "fair.yaml").write_text(POLICY)
    return tmp_path / "pack"


def card_file(tmp_path: Path, card: dict, name: str = "card.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(card))
    return str(path)


def test_check_builtin_packs_is_clean():
    """`policyengine check` with no path checks the built-in packs and exits 0."""
    code, out, _ = run("check")
    assert code == 0 and out.startswith("ok: ")


def test_check_reports_every_error_with_location(tmp_path: Path):
    """A syntax error and an unknown variable are both reported, file:line:col, exit 2."""
    bad = POLICY.replace("f.value >= params.min_ratio", "f.value >= ) params.min_ratio").replace(
        'card.risk_tier != "minimal"', 'model.tier != "minimal"')
    path = tmp_path / "bad.yaml"
    path.write_text(bad)
    code, out, err = run("check", str(path))
    lines = out.strip().splitlines()
    assert code == 2 and len(lines) == 2
    assert lines[0].startswith(f"{path}:12:") and "fair/parity: expr: syntax error" in lines[0]
    col = int(lines[0].split(":")[2])
    assert bad.splitlines()[11][col - 1] == ")"
    assert lines[1].startswith(f"{path}:17:")
    assert "fair/tiered: expr: unknown variable 'model'" in lines[1]
    assert "Traceback" not in err


def test_check_json_format(tmp_path: Path):
    """--format json lists errors as objects with file, line, col, policy, rule, message."""
    path = tmp_path / "bad.yaml"
    path.write_text(POLICY.replace("severity: warn", "severity: loud"))
    code, out, _ = run("check", str(path), "--format", "json")
    body = json.loads(out)
    assert code == 2 and body["ok"] is False
    (error,) = body["errors"]
    assert error["rule"] == "tiered" and error["policy"] == "fair" and error["line"] == 16


def test_params_override_changes_bundle_digest(pack: Path, tmp_path: Path):
    """--set and --params change the bundle digest; unknown params exit 2."""
    digests = []
    for extra in ([], ["--set", "fair.min_ratio=0.9"]):
        code, out, _ = run("check", str(pack), "--format", "json", *extra)
        assert code == 0
        digests.append(json.loads(out)["bundle_digest"])
    params = tmp_path / "prod.yaml"
    params.write_text("fair: {min_ratio: 0.9}\n")
    code, out, _ = run("check", str(pack), "--format", "json", "--params", str(params))
    assert json.loads(out)["bundle_digest"] == digests[1] != digests[0]
    code, _, err = run("check", str(pack), "--set", "fair.nope=1")
    assert code == 2 and "fair: unknown param 'nope' (declared: min_ratio)" in err


def test_eval_allow_exit_0(pack: Path, tmp_path: Path):
    """A passing card exits 0 and prints ALLOW first."""
    code, out, _ = run("eval", card_file(tmp_path, CARD), "--event", "promote", "--to", "prod",
                       "--policies", str(pack), "--now", "2026-11-26T12:00:00Z")
    assert code == 0 and out.startswith("ALLOW scorer 2.0.0 (promote to prod)")


def test_eval_deny_exit_1_with_values_and_remediation(pack: Path, tmp_path: Path):
    """A failing rule exits 1; the text names policy@version, rule, message, values, remediation."""
    card = json.loads(json.dumps(CARD))
    card["fairness"][0]["value"] = 0.7
    code, out, _ = run("eval", card_file(tmp_path, card), "--event", "promote", "--to", "prod",
                       "--policies", str(pack), "--now", "2026-11-26T12:00:00Z")
    assert code == 1 and out.startswith("DENY")
    assert ("  FAIL   fair@1.0.0 parity: parity ratio below 0.8 (card.fairness[0].value=0.7, "
            "params.min_ratio=0.8)") in out
    assert "remediation: re-weight the data" in out


def test_eval_missing_field_fails_closed_naming_it(pack: Path, tmp_path: Path):
    """Removing the fairness section gives exit 1 and a message naming card.fairness."""
    card = {k: v for k, v in CARD.items() if k != "fairness"}
    code, out, _ = run("eval", card_file(tmp_path, card), "--event", "promote", "--to", "prod",
                       "--policies", str(pack), "--format", "json",
                       "--now", "2026-11-26T12:00:00Z")
    body = json.loads(out)
    assert code == 1 and body["decision"] == "deny"
    parity = next(r for r in body["results"] if r["rule"] == "parity")
    assert parity["outcome"] == "error" and parity["message"] == "card.fairness is missing"
    jsonschema.validate(body, resources.schema("decision"))


def test_eval_schema_invalid_card_exit_2_with_json_path(pack: Path, tmp_path: Path):
    """A card that breaks the model-card schema exits 2 naming the JSON path."""
    code, _, err = run("eval", card_file(tmp_path, dict(CARD, risk_tier="extreme")),
                       "--event", "promote", "--to", "prod", "--policies", str(pack))
    assert code == 2 and "$.risk_tier" in err and "Traceback" not in err


def test_eval_same_decision_for_number_spellings(pack: Path, tmp_path: Path):
    """0.93 and 93e-2 in the card file give the same decision and input digest."""
    bodies = []
    for spelling in ("0.93", "93e-2"):
        path = tmp_path / f"c{spelling}.json"
        path.write_text(json.dumps(CARD).replace("0.93", spelling))
        _, out, _ = run("eval", str(path), "--event", "promote", "--to", "prod", "--policies",
                        str(pack), "--format", "json", "--now", "2026-11-26T12:00:00Z")
        bodies.append(json.loads(out))
    assert bodies[0]["decision"] == bodies[1]["decision"] == "allow"
    assert bodies[0]["input_digest"] == bodies[1]["input_digest"]


@pytest.mark.parametrize(("expires", "code", "text"), [
    ("2027-01-01T00:00:00Z", 0, "waived by w1"),
    ("2026-01-01T00:00:00Z", 1, "waiver w1 ignored: expired"),
])
def test_eval_waiver_expiry(pack: Path, tmp_path: Path, expires: str, code: int, text: str):
    """A future waiver turns fail into waived (exit 0); a past one does not (exit 1, expired)."""
    card = json.loads(json.dumps(CARD))
    card["fairness"][0]["value"] = 0.5
    history = tmp_path / "history.yaml"
    history.write_text(
        "waivers:\n  - {id: w1, rules: [parity], model: scorer, versions: '>=2,<3', "
        f"reason: pending, ticket: T-1, approver: carol, expires: '{expires}'}}\n")
    got, out, _ = run("eval", card_file(tmp_path, card), "--event", "promote", "--to", "prod",
                      "--policies", str(pack), "--history", str(history),
                      "--now", "2026-11-26T12:00:00Z")
    assert got == code and text in out


def test_eval_bad_now_exit_2(pack: Path, tmp_path: Path):
    """--now that is not RFC 3339 exits 2 with a one-line message."""
    code, _, err = run("eval", card_file(tmp_path, CARD), "--event", "promote", "--to", "prod",
                       "--policies", str(pack), "--now", "yesterday")
    assert code == 2 and "bad --now 'yesterday'" in err


def test_eval_unreadable_card_exit_2(pack: Path, tmp_path: Path):
    """A missing card file exits 2 without a traceback."""
    code, _, err = run("eval", str(tmp_path / "none.json"), "--event", "promote", "--to", "prod",
                       "--policies", str(pack))
    assert code == 2 and "cannot read card" in err


def test_usage_error_exit_2():
    """A missing required option exits 2 with a usage message on err."""
    code, _, err = run("eval", "card.json")
    assert code == 2 and "required" in err


@pytest.mark.parametrize(("name", "code"), [("credit-risk-scorer", 0), ("resume-screener", 1)])
def test_eval_examples(name: str, code: int):
    """The example cards give their documented outcomes with the built-in packs."""
    got, out, _ = run("eval", str(REPO / "examples" / "cards" / f"{name}.yaml"),
                      "--event", "promote", "--to", "production",
                      "--history", str(REPO / "examples/history/credit-risk-scorer-approvals.yaml"),
                      "--now", "2026-11-26T12:00:00Z")
    assert got == code, out


def _write_tests(pack: Path, cases: str) -> None:
    (pack / "tests").mkdir(exist_ok=True)
    (pack / "tests" / "fair_test.yaml").write_text(textwrap.dedent(f"""\
        apiVersion: policyengine/v1
        kind: PolicyTest
        defaults:
          card: {json.dumps(CARD)}
          event: {{type: promote, stage: prod}}
          now: "2026-11-26T12:00:00Z"
        cases:
        """) + textwrap.indent(textwrap.dedent(cases), "  "))


FULL_CASES = """\
- name: passes
  expect: {decision: allow, rules: {parity: pass, tiered: pass}}
- name: low-parity-fails
  cardPatch: {fairness: [{metric: dp, value: 0.5}], risk_tier: minimal}
  expect:
    decision: deny
    rules: {fair/parity: fail, tiered: fail}
    messages: {parity: below 0.8}
"""


def test_test_command_passes_with_full_coverage(pack: Path):
    """All cases passing and every rule covered: exit 0 with threshold 100."""
    _write_tests(pack, FULL_CASES)
    code, out, _ = run("test", str(pack), "--coverage", "--threshold", "100")
    assert code == 0, out
    assert "2 cases, 0 failed; coverage 100.00% (2/2 rules)" in out


def test_test_command_prints_expected_vs_actual(pack: Path):
    """A failing case prints expected vs actual with the rule's message; exit 1."""
    _write_tests(pack, """\
        - name: wrong-expectation
          cardPatch: {fairness: [{metric: dp, value: 0.5}]}
          expect: {decision: allow, rules: {parity: pass}}
        """)
    code, out, _ = run("test", str(pack))
    assert code == 1
    assert "FAIL " in out and "wrong-expectation" in out
    assert "decision: expected allow, got deny" in out
    assert "fair/parity: expected pass, got fail (message: parity ratio below 0.8)" in out


def test_threshold_is_exact(pack: Path):
    """1 of 2 rules covered is 50%: threshold 50 passes, 50.01 fails; 99.99 < 100 is a fail."""
    _write_tests(pack, """\
        - name: passes
          expect: {rules: {parity: pass, tiered: pass}}
        - name: parity-fails
          cardPatch: {fairness: [{metric: dp, value: 0.5}]}
          expect: {rules: {parity: fail}}
        """)
    assert run("test", str(pack), "--threshold", "50")[0] == 0
    code, _, err = run("test", str(pack), "--threshold", "50.01")
    assert code == 1 and "below the threshold" in err
    assert run("test", str(pack), "--threshold", "99.99")[0] == 1


def test_test_command_invalid_test_file_exit_2(pack: Path):
    """A test file that breaks the test schema exits 2 with its location."""
    (pack / "tests").mkdir()
    (pack / "tests" / "bad.yaml").write_text(
        "apiVersion: policyengine/v1\nkind: PolicyTest\ncases:\n"
        "  - name: x\n    expect: {decision: maybe}\n")
    code, _, err = run("test", str(pack))
    assert code == 2 and "bad.yaml:5:" in err and "maybe" in err


def test_test_command_builtin_packs_full_coverage():
    """The built-in packs' tests pass with coverage 100."""
    code, out, _ = run("test", "--coverage", "--threshold", "100")
    assert code == 0, out
