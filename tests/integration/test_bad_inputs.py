"""Hostile inputs exit 2 with one line through every command, and never touch the log.

Each class the fuzzer found (a 5,001-digit integer, a 10**400 metric, nan,
inf, 1.0e+400, deep YAML flow and block nesting, deep JSON, NUL bytes, a
duplicate key) goes through ``card validate``, ``eval``, ``gate`` and, inside
a policy file, ``check``; then Hypothesis mutates the example card and
checks that ``card validate`` and ``gate`` always reach the same verdict.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.gatecli import CARD, REPO, cli

CARD_DATA = yaml.safe_load(CARD.read_text())
HOSTILE_NUMBERS = {
    "int-5001-digits": "1" * 5001,
    "metric-10**400": "1" + "0" * 400,
    "nan": "NaN",
    "inf": "Infinity",
    "1e400": "1.0e+400",
}


def _json_card(metric: str) -> str:
    """The example card as JSON with its first metric's value written as ``metric``."""
    card = json.loads(json.dumps(CARD_DATA))
    card["metrics"][0]["value"] = "@@"
    return json.dumps(card, indent=1).replace('"@@"', metric)


def _yaml_card(extra: str) -> str:
    return CARD.read_text() + extra


def hostile_cards() -> dict[str, tuple[str, str]]:
    """name -> (file name, text) of a card holding one class of hostile input."""
    cards = {f"json-{k}": ("card.json", _json_card(v)) for k, v in HOSTILE_NUMBERS.items()}
    yaml_numbers = {"yaml-nan": ".nan", "yaml-inf": ".inf", "yaml-1e400": "1.0e+400",
                    "yaml-int-5001-digits": "1" * 5001}
    for name, value in yaml_numbers.items():
        cards[name] = ("card.yaml", _yaml_card(f"x_hostile:\n  x: {value}\n"))
    cards["yaml-flow-deep"] = ("card.yaml", _yaml_card(
        "x_hostile:\n  x: " + "[" * 100_000 + "]" * 100_000 + "\n"))
    cards["yaml-block-deep"] = ("card.yaml", _yaml_card("x_hostile:\n" + "".join(
        " " * (i + 2) + f"k{i}:\n" for i in range(3000))))
    cards["json-deep"] = ("card.json", '{"extensions": {"x": ' + "[" * 200_000 + "]" * 200_000
                          + "}}")
    cards["nul-byte"] = ("card.yaml", _yaml_card("x_hostile:\n  x: a\x00b\n"))
    cards["duplicate-key"] = ("card.yaml", _yaml_card("risk_tier: low\n"))
    return cards


CARDS = hostile_cards()
PROBLEM = {"number": "out of range", "nan": "not a number", "deep": "nesting",
           "nul": "NUL character", "duplicate": "duplicate key 'risk_tier'"}


def _problem(name: str) -> str:
    """The words the one error line must hold for the card ``name``."""
    if "nan" in name and name.startswith("yaml"):
        return PROBLEM["nan"]
    if name in ("json-nan", "json-inf"):
        return "is not a number JSON allows"
    for key in ("deep", "nul", "duplicate"):
        if key in name:
            return PROBLEM[key]
    return PROBLEM["number"]


def _one_line(text: str) -> bool:
    return text.strip() != "" and "\n" not in text.strip() and "Traceback" not in text


def _log_entries(workdir: Path) -> int:
    from tests.integration.gatecli import log_size

    db = workdir / ".policyengine" / "audit.db"
    return log_size(workdir) if db.exists() else 0


@pytest.mark.parametrize("name", sorted(CARDS))
def test_hostile_card_exits_2_with_one_line_everywhere(workdir, name):
    """card validate, eval and gate each refuse the card: exit 2, one line naming it, log
    unchanged."""
    file, text = CARDS[name]
    (workdir / file).write_text(text, encoding="utf-8")
    before = _log_entries(workdir)
    runs = {
        "card validate": cli("card", "validate", file),
        "eval": cli("eval", file, "--event", "promote", "--to", "production"),
        "gate": cli("gate", file, "--to", "production"),
    }
    for command, run in runs.items():
        assert run.code == 2, (command, run.err)
        assert _one_line(run.err) and file in run.err, (command, run.err)
        # libyaml stops 100,000 flow levels at its own limit: an invalid-YAML line.
        words = "invalid YAML" if name == "yaml-flow-deep" and "invalid" in run.err else \
            _problem(name)
        assert words in run.err, (command, run.err)
    assert _log_entries(workdir) == before


def test_duplicate_key_is_the_same_error_everywhere(workdir):
    """eval, gate and card validate give the same duplicate-key line (exit 2)."""
    (workdir / "card.yaml").write_text(_yaml_card("risk_tier: low\n"))
    lines = {
        cli("card", "validate", "card.yaml").err.strip(),
        cli("eval", "card.yaml", "--event", "promote", "--to", "production").err.strip(),
        cli("gate", "card.yaml", "--to", "production").err.strip().removeprefix(
            "policyengine gate: "),
    }
    assert len(lines) == 1 and "duplicate key 'risk_tier'" in lines.pop()


POLICY = (REPO / "policies").resolve()


@pytest.mark.parametrize(("name", "value"), [
    ("int-5001-digits", "1" * 5001), ("nan", ".nan"), ("inf", "-.inf"), ("1e400", "1.0e+400"),
    ("flow-deep", "[" * 100_000 + "]" * 100_000), ("nul-byte", "a\x00"),
])
def test_hostile_policy_file_exits_2_in_check(tmp_path, name, value):
    """check refuses a policy file holding a hostile value: exit 2, one diagnostic line."""
    path = tmp_path / "p.yaml"
    path.write_text(
        "apiVersion: policyengine/v1\nkind: Policy\nmetadata: {name: p, version: 1.0.0}\n"
        f"spec:\n  params:\n    limit: {value}\n  rules:\n    - id: r\n      severity: deny\n"
        "      expr: 'true'\n      message: '\"m\"'\n", encoding="utf-8")
    run = cli("check", str(path))
    assert run.code == 2, run
    assert _one_line(run.out) and "p.yaml" in run.out, run.out


def test_duplicate_key_in_policy_file_exits_2(tmp_path):
    """A key written twice in a policy is one located diagnostic in check."""
    path = tmp_path / "p.yaml"
    path.write_text("apiVersion: policyengine/v1\nkind: Policy\nkind: Policy\n")
    run = cli("check", str(path))
    assert run.code == 2 and "p.yaml:3:1: duplicate key 'kind'" in run.out


@pytest.mark.parametrize("name", ["int-5001-digits", "metric-10**400", "nan", "1e400"])
def test_hostile_params_and_history_exit_2(workdir, name):
    """eval --params and --history files go through the same reader."""
    value = HOSTILE_NUMBERS[name]
    (workdir / "params.json").write_text('{"fairness": {"min_dp_ratio": ' + value + "}}")
    (workdir / "history.json").write_text('{"approvals": [{"n": ' + value + "}]}")
    for flag, file in (("--params", "params.json"), ("--history", "history.json")):
        run = cli("eval", "card.yaml", "--event", "promote", "--to", "production", flag, file)
        assert run.code == 2 and _one_line(run.err) and file in run.err, run.err


@pytest.mark.parametrize("data", ['{"n": ' + "1" * 5001 + "}", '{"n": 1.0e+400}',
                                  '{"a": 1, "a": 2}', '{"n": NaN}'])
def test_hostile_event_data_exits_2(workdir, data):
    """event --data is read by the same reader: exit 2, one line, nothing logged."""
    run = cli("event", "incident", "--model", "m", "--version", "1", "--data", data)
    assert run.code == 2 and _one_line(run.err), run.err
    assert _log_entries(workdir) == 0


# --- properties over random mutations of the example card --------------------------------

_TOKENS = ["1" * 5001, "1e400", ".nan", "-.inf", "NaN", "\x00", "[" * 70, "{" * 70, "&a [*a]",
           "*x", "!!binary aGk=", "? [a]\n: 1", "\ud800", "\\ud800", '"\\u0000"', "risk_tier: x",
           "\t", "'", '"', ":", "- ", "<<: 1", "0x" + "f" * 500, "1:" * 300]


def _mutate(text: str, rnd: random.Random, steps: int) -> str:
    """Random edits: insert a hostile token, delete, duplicate a line, flip a character."""
    for _ in range(steps):
        i = rnd.randrange(len(text) + 1)
        op = rnd.randrange(4)
        if op == 0:
            text = text[:i] + rnd.choice(_TOKENS) + text[i:]
        elif op == 1:
            text = text[:i] + text[i + rnd.randrange(1, 40):]
        elif op == 2:
            lines = text.splitlines(keepends=True)
            k = rnd.randrange(len(lines)) if lines else 0
            text = "".join(lines[: k + 1] + lines[k:])
        else:
            text = text[:i] + chr(rnd.randrange(0x7F)) + text[i + 1:]
    return text


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), steps=st.integers(1, 4), as_json=st.booleans())
def test_card_validate_and_gate_agree_on_mutated_cards(workdir, seed, steps, as_json):
    """On any mutation of the example card, card validate and gate reach the same verdict
    (both accept or both exit 2), never crash, and a refusal writes nothing."""
    base = json.dumps(CARD_DATA, indent=1) if as_json else CARD.read_text()
    text = _mutate(base, random.Random(seed), steps)
    file = "m.json" if as_json else "m.yaml"
    (workdir / file).write_bytes(text.encode("utf-8", "surrogatepass"))
    before = _log_entries(workdir)
    validate = cli("card", "validate", file)
    gate = cli("gate", file, "--to", "production")
    assert validate.code in (0, 2) and "Traceback" not in validate.err + gate.err
    assert gate.code in ((0, 1) if validate.code == 0 else (2,)), (validate.err, gate.err)
    if gate.code == 2:
        assert _log_entries(workdir) == before
        assert gate.err.count("\n") == 1 or "$." in gate.err, gate.err


@pytest.mark.parametrize("value", ["1" * 5001, ".inf", ".nan", "1.0e+400"])
def test_hostile_set_override_exits_2(workdir, value):
    """--set policy.param=VALUE is read by the same reader: exit 2, one line."""
    run = cli("eval", "card.yaml", "--event", "promote", "--to", "production",
              "--set", f"fairness-thresholds.min_dp_ratio={value}")
    assert run.code == 2 and _one_line(run.err) and "--set" in run.err, run.err


@pytest.mark.parametrize("fmt", ["mct", "sagemaker", "mlflow"])
def test_hostile_json_card_import_exits_2(workdir, fmt):
    """card import of a JSON source holding a 5,001-digit integer exits 2 with one line."""
    (workdir / "src.json").write_text(_json_card("1" * 5001))
    run = cli("card", "import", "--from", fmt, "src.json")
    assert run.code == 2 and _one_line(run.err) and "out of range" in run.err, run.err


_EVENT = REPO / "examples" / "events" / "credit-risk-scorer-approved.json"
_HISTORY = REPO / "examples" / "history" / "credit-risk-scorer-approvals.yaml"
_PACK = REPO / "policies" / "fairness" / "fairness.yaml"


def _loader_run(kind: str, file: str) -> object:
    """Run the command that reads a ``kind`` file named ``file``."""
    eval_args = ("eval", "card.yaml", "--event", "promote", "--to", "production")
    return {
        "policy": lambda: cli("check", file),
        "history": lambda: cli(*eval_args, "--history", file),
        "params": lambda: cli(*eval_args, "--params", file),
        "event": lambda: cli("event", "incident", "--model", "m", "--version", "1",
                             "--data", "@" + file),
    }[kind]()


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["policy", "history", "params", "event"]),
       seed=st.integers(0, 2**32), steps=st.integers(1, 4))
def test_mutated_policies_histories_params_and_events_never_crash(workdir, kind, seed, steps):
    """Random edits of an example policy, history, params or event file give a verdict or
    exit 2 with no traceback; a refusal writes nothing to the log."""
    base = {"policy": _PACK.read_text(), "history": _HISTORY.read_text(),
            "params": "fairness-thresholds:\n  min_dp_ratio: 0.8\n",
            "event": json.dumps(json.loads(_EVENT.read_text()).get("data") or {"k": 1})}[kind]
    file = f"in.{'json' if kind == 'event' else 'yaml'}"
    (workdir / file).write_bytes(_mutate(base, random.Random(seed), steps).encode(
        "utf-8", "surrogatepass"))
    before = _log_entries(workdir)
    run = _loader_run(kind, file)
    assert run.code in (0, 1, 2), (run.out, run.err)
    assert "Traceback" not in run.out + run.err
    if run.code == 2:
        assert _log_entries(workdir) == before
