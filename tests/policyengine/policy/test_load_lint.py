"""Loading and linting: every error located (file:line:col, policy, rule) and reported together."""

from __future__ import annotations

from pathlib import Path

import pytest

from policyengine.errors import PolicyLoadError
from policyengine.policy import load_policies


def _errors(path: Path) -> list[str]:
    with pytest.raises(PolicyLoadError) as info:
        load_policies([path])
    return [str(d) for d in info.value.errors]


def test_valid_policy_loads(write, h):
    """A well-formed policy loads into one document named by metadata.name."""
    docs = load_policies([write(h.policy_yaml(h.rule("r1", "true")))])
    assert [d.name for d in docs] == ["p"]


def test_cel_syntax_error_in_folded_block_names_line_and_column(write, h):
    """A syntax error inside a '>' block scalar points at the file line and column."""
    text = h.policy_yaml("""
        - id: broken
          severity: deny
          expr: >
            card.risk_tier == "high" &&
              card.fairness.size() >
          message: '"x"'
        """)
    path = write(text)
    lines = text.splitlines()
    target = next(i for i, line in enumerate(lines, 1) if "size() >" in line)
    (error,) = _errors(path)
    assert error.startswith(f"{path}:{target}:")
    assert "p/broken: expr: syntax error" in error


def test_cel_syntax_error_column_in_quoted_scalar(write, h):
    """In a one-line quoted scalar the column is the offending character's column."""
    path = write(h.policy_yaml(h.rule("r", "card.a == 1 &&& 2")))
    (error,) = _errors(path)
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "&&&" in t)
    col = path.read_text().splitlines()[line - 1].index("&&&") + 3
    assert error.startswith(f"{path}:{line}:{col}: p/r: expr: syntax error: unexpected character")


def test_literal_block_error_on_second_line(write, h):
    """With '|', expression line 2 maps to the second content line of the block."""
    text = h.policy_yaml("""
        - id: lit
          severity: deny
          expr: |
            true &&
            card.x ) 1
          message: '"x"'
        """)
    path = write(text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "card.x )" in t)
    col = text.splitlines()[line - 1].index(")") + 1
    (error,) = _errors(path)
    assert error.startswith(f"{path}:{line}:{col}:")


def test_two_errors_reported_together(write, h):
    """A duplicate rule id and a bad severity are both reported by one load."""
    text = h.policy_yaml(h.rule("dup", "true") + h.rule("dup", "true", severity="critical"))
    errors = _errors(write(text))
    assert any("duplicate rule id 'dup'" in e for e in errors)
    assert any("bad severity: expected one of deny, warn, info, got 'critical'" in e
               for e in errors)


def test_unknown_field_is_located_at_its_key(write, h):
    """An unknown field names itself and the line of its key."""
    text = h.policy_yaml(h.rule("r", "true")).replace("  mode:", "  colour: red\n  mode:")
    path = write(text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "colour" in t)
    (error,) = _errors(path)
    assert error == (f"{path}:{line}:3: p: unknown field 'colour' in spec; "
                     "expected one of appliesTo, mode, params, rules")


def test_unknown_variable_and_undeclared_param(write, h):
    """Only card/event/history/params/now exist, and params must be declared."""
    path = write(h.policy_yaml(h.rule("r", "model.x > params.missing"), params="{known: 1}"))
    errors = _errors(path)
    assert any("unknown variable 'model'" in e and "p/r" in e for e in errors)
    assert any("params.missing is not declared in spec.params (declared: known)" in e
               for e in errors)


def test_comprehension_variable_is_not_unknown(write, h):
    """Variables bound by all/exists/map/filter are in scope inside the macro."""
    path = write(h.policy_yaml(h.rule("r", "card.fairness.all(f, f.value > 0.5)")))
    assert load_policies([path])


def test_unknown_function(write, h):
    """Calling a function CEL does not define is a lint error."""
    (error,) = _errors(write(h.policy_yaml(h.rule("r", "card.a.frobnicate()"))))
    assert "unknown function 'frobnicate'" in error


def test_plain_text_message_is_an_error_with_a_hint(write, h):
    """A message that is prose rather than CEL fails lint and says to quote it."""
    text = h.policy_yaml("- id: r\n  severity: deny\n  expr: 'true'\n  message: fairness too low\n")
    (error,) = _errors(write(text))
    assert "message: syntax error" in error and "quote plain text" in error


def test_expr_that_is_a_string_literal_is_rejected(write, h):
    """An expr must yield a bool: a string literal is caught at lint time."""
    (error,) = _errors(write(h.policy_yaml(h.rule("r", '"yes"'))))
    assert "expr must yield a bool, got a string literal" in error


def test_empty_rules_list(write, h):
    """A policy with no rules fails to load (fail closed)."""
    text = h.policy_yaml(h.rule("r", "true"))
    text = text[: text.index("  rules:")] + "  rules: []\n"
    (error,) = _errors(write(text))
    assert "rules must not be empty" in error


def test_duplicate_policy_names_across_files(write, h):
    """Two policies with one name in a set are rejected, naming the first file."""
    write(h.policy_yaml(h.rule("r", "true")), "a.yaml")
    path = write(h.policy_yaml(h.rule("r", "true")), "b.yaml")
    errors = _errors(path.parent)
    assert any("duplicate policy name 'p'" in e and "a.yaml" in e for e in errors)


def test_multiple_documents_per_file(write, h):
    """A file may hold several policies separated by ---."""
    text = h.policy_yaml(h.rule("r", "true"), name="one") + "---\n" + h.policy_yaml(
        h.rule("r", "true"), name="two")
    assert [d.name for d in load_policies([write(text)])] == ["one", "two"]


def test_yaml_syntax_error_is_located(write):
    """Invalid YAML is reported with its line, not a traceback."""
    (error,) = _errors(write("apiVersion: policyengine/v1\nkind: [Policy\n"))
    assert "invalid YAML" in error and (":3:" in error or ":2:" in error)


def test_test_files_are_not_loaded_as_policies(write, h):
    """Files under tests/ and *_test.yaml are pack tests, not policies."""
    write(h.policy_yaml(h.rule("r", "true")), "pack/p.yaml")
    write("not: a policy\n", "pack/tests/cases.yaml")
    write("not: a policy\n", "pack/more_test.yaml")
    docs = load_policies([write("", "pack/empty.yaml").parent])
    assert [d.name for d in docs] == ["p"]


def test_missing_path_is_a_load_error(tmp_path):
    """A policy path that does not exist is reported, not a traceback."""
    errors = _errors(tmp_path / "nope.yaml")
    assert "cannot read policy file" in errors[0]


def test_version_as_number_hints_to_quote(write, h):
    """version: 1.2 parses as a number; the error says to quote it."""
    text = h.policy_yaml(h.rule("r", "true")).replace("version: '1.0.0'", "version: 1.2")
    (error,) = _errors(write(text))
    assert "bad version: expected string, got a number (quote the version)" in error


def test_expression_too_long(write, h):
    """Expressions over the length limit are rejected before parsing."""
    long_expr = " || ".join(["card.a == 1"] * 400)
    (error,) = _errors(write(h.policy_yaml(h.rule("r", long_expr))))
    assert "expr too long" in error


def test_nesting_too_deep(write, h):
    """Deeply nested parentheses are rejected at compile time."""
    deep = "(" * 40 + "true" + ")" * 40
    (error,) = _errors(write(h.policy_yaml(h.rule("r", deep))))
    assert "nested too deeply" in error


def test_comprehensions_nested_too_deep(write, h):
    """Four nested comprehensions exceed the limit of three."""
    expr = "[1].all(a, [1].all(b, [1].all(c, [1].all(d, true))))"
    (error,) = _errors(write(h.policy_yaml(h.rule("r", expr))))
    assert "nests 4 comprehensions, limit 3" in error


def test_approvers_and_test_documents_are_skipped(write, h):
    """kind: Approvers / PolicyTest beside policies are not policies; a typo'd kind is an error."""
    write(h.policy_yaml(h.rule("r", "true")), "pack/p.yaml")
    write("apiVersion: policyengine/v1\nkind: Approvers\napprovers: []\n", "pack/approvers.yaml")
    assert [d.name for d in load_policies([write("", "pack/x.yaml").parent])] == ["p"]
    typo = write("apiVersion: policyengine/v1\nkind: Polcy\nmetadata: {name: q, version: '1'}\n"
                 "spec: {rules: [{id: r, severity: deny, expr: 'true', message: '\"x\"'}]}\n",
                 "pack/typo.yaml")
    (error,) = _errors(typo)
    assert "bad kind: expected 'Policy', got 'Polcy'" in error


def test_byte_order_mark_is_accepted(write, h, tmp_path):
    """Files saved with a UTF-8 BOM (common on Windows) load, JSON and YAML alike."""
    from policyengine.policy import load_data

    path = tmp_path / "bom.yaml"
    path.write_text("\ufeff" + h.policy_yaml(h.rule("r", "true")), encoding="utf-8")
    assert [d.name for d in load_policies([path])] == ["p"]
    card = tmp_path / "card.json"
    card.write_text('\ufeff{"a": 1}', encoding="utf-8")
    assert load_data(card) == {"a": 1}


def test_duplicate_keys_in_data_files_are_refused(tmp_path):
    """A card with a key twice (JSON or YAML) is bad input, not silently last-wins."""
    from policyengine.errors import InputError
    from policyengine.policy import load_data

    (tmp_path / "c.json").write_text('{"risk_tier": "low", "risk_tier": "high"}')
    (tmp_path / "c.yaml").write_text("risk_tier: low\nrisk_tier: high\n")
    with pytest.raises(InputError, match="duplicate key 'risk_tier'"):
        load_data(tmp_path / "c.json")
    with pytest.raises(InputError, match=r"c.yaml:2:1: duplicate key 'risk_tier'"):
        load_data(tmp_path / "c.yaml")
