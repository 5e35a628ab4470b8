"""Resources are found in a checkout; errors map to exit codes in one table."""

from __future__ import annotations

import pytest

from policyengine import resources
from policyengine.cli import EXIT_CODES, exit_code_for
from policyengine.errors import (
    CardValidationError,
    ConfigError,
    Diagnostic,
    EvaluationError,
    InputError,
    KeyUnavailableError,
    LogUnavailableError,
    PolicyLoadError,
    SchemaError,
)


def test_schemas_and_policies_are_found():
    """The policy, decision, test and history schemas and the built-in packs are found."""
    for name in ("policy", "decision", "policy-test", "history"):
        assert resources.schema(name)["$schema"].endswith("2020-12/schema")
    assert resources.policies_dir().is_dir()


def test_installed_layout_is_preferred(tmp_path, monkeypatch):
    """An installed copy's policyengine/_data/<name> wins over the checkout layout."""
    (tmp_path / "_data" / "schemas").mkdir(parents=True)
    monkeypatch.setattr(resources, "_PACKAGE", tmp_path)
    assert resources.schemas_dir() == tmp_path / "_data" / "schemas"


@pytest.mark.parametrize(("error", "code"), [
    (PolicyLoadError([Diagnostic("f.yaml", 1, 2, "p", "r", "bad")]), 2),
    (CardValidationError("card.json", [SchemaError("$.risk_tier", "bad")]), 2),
    (InputError("x"), 2), (ConfigError("x"), 2), (EvaluationError("x"), 2),
    (LogUnavailableError("x"), 3), (KeyUnavailableError("x"), 3)])
def test_error_codes_map_to_exit_codes(error, code):
    """Every error's code maps to its documented exit code."""
    assert error.code in EXIT_CODES and exit_code_for(error.code) == code


def test_unknown_code_exits_2():
    """A code not in the table exits 2 (bad input), never 0."""
    assert exit_code_for("something_new") == 2


def test_diagnostic_format():
    """Diagnostics print as file:line:col: policy/rule: message."""
    d = Diagnostic("p.yaml", 3, 7, "fair", "parity", "bad severity")
    assert str(d) == "p.yaml:3:7: fair/parity: bad severity"
    assert str(Diagnostic("p.yaml", 1, 1, "fair", None, "x")) == "p.yaml:1:1: fair: x"
    assert PolicyLoadError([d]).diagnostics() == str(d)
    unread = Diagnostic("p.yaml", 0, 0, None, None, "cannot read policy file")
    assert str(unread) == "p.yaml: cannot read policy file"  # no invented 0:0 or '-'
    assert str(Diagnostic("p.yaml", 4, 0, None, "r", "x")) == "p.yaml:4: -/r: x"
    error = CardValidationError("c.json", [SchemaError("$.risk_tier", "bad")])
    assert "$.risk_tier: bad" in error.diagnostics()
