"""Compilation (digests, overrides) and explanations (values read, missing fields)."""

from __future__ import annotations

import pytest

from policyengine.errors import ConfigError
from policyengine.policy import compile_policies, load_policies, parse_set
from policyengine.policy.explain import MAX_VALUES, missing_field, render_path, values_read


def _cps(write, h, overrides=None, params="{min: 0.8, name: x}"):
    path = write(h.policy_yaml(h.rule("r", "card.v >= params.min"), params=params))
    return compile_policies(load_policies([path]), overrides)


def test_bundle_digest_is_stable_and_override_sensitive(write, h):
    """Same files give the same digest; an override changes it; 0.8 vs 0.80 changes only it.

    0.8 and 0.80 are one canonical form (the policy digest), but the bundle
    digest also covers the file's exact text.
    """
    a, b = _cps(write, h), _cps(write, h)
    assert a.bundle_digest == b.bundle_digest and a.bundle_digest.startswith("sha256:")
    assert _cps(write, h, {"p": {"min": 0.9}}).bundle_digest != a.bundle_digest
    spelled = _cps(write, h, params="{min: 0.80, name: x}")
    assert spelled.policies[0].digest == a.policies[0].digest
    assert spelled.bundle_digest != a.bundle_digest


def test_override_of_unknown_policy_or_param_or_type(write, h):
    """Unknown policies, unknown params and type changes are ConfigErrors naming them."""
    with pytest.raises(ConfigError, match="unknown policy 'q'"):
        _cps(write, h, {"q": {"min": 1}})
    with pytest.raises(ConfigError, match="unknown param 'max'"):
        _cps(write, h, {"p": {"max": 1}})
    with pytest.raises(ConfigError, match="param 'min' expected a number, got a string"):
        _cps(write, h, {"p": {"min": "high"}})


def test_effective_params_are_compiled(write, h):
    """Overrides reach the compiled policy as floats."""
    (policy,) = _cps(write, h, {"p": {"min": 1}}).policies
    assert policy.params == {"min": 1.0, "name": "x"}


@pytest.mark.parametrize(("text", "want"), [
    ("fair.min=0.9", ("fair", "min", 0.9)), ("a.b.flag=true", ("a.b", "flag", True)),
    ("p.name=text", ("p", "name", "text"))])
def test_parse_set(text, want):
    """--set policy.param=value reads the value as YAML."""
    assert parse_set(text) == want


@pytest.mark.parametrize("text", ["nodot=1", "p.x", ".x=1", "p.=1"])
def test_parse_set_rejects_malformed(text):
    """A --set without policy, param or '=' is a ConfigError."""
    with pytest.raises(ConfigError, match=r"expected policy\.param=value"):
        parse_set(text)


def test_values_read_are_bounded():
    """At most MAX_VALUES values, long strings cut, big lists summarised."""
    data = {"card": {"xs": [{"v": i} for i in range(50)], "s": "x" * 500, "big": list(range(100))}}
    values = values_read((("card", "xs", None, "v"),), data)
    assert len(values) == MAX_VALUES + 1 and values["..."] == "more values not shown"
    shown = values_read((("card", "s"), ("card", "big")), data)
    assert shown["card.s"].endswith("...") and len(shown["card.s"]) < 200
    assert shown["card.big"] == "<list of 100 items>"


def test_missing_field_messages():
    """Missing keys, short lists and wrong types are described with their paths."""
    data = {"card": {"a": {"b": "text"}, "xs": [1.0]}}
    assert missing_field((("card", "q"),), data) == "card.q is missing"
    assert missing_field((("card", "xs", 3),), data) == "card.xs[3] is missing (list has 1 items)"
    assert (missing_field((("card", "a", "b", "c"),), data)
            == "card.a.b is a string, expected an object")
    assert missing_field((("card", "a"),), data) is None


def test_render_path_quotes_odd_keys():
    """Keys that are not identifiers are rendered in brackets."""
    path = ("card", "extensions", "my-key", 0, None)
    assert render_path(path) == 'card.extensions["my-key"][0][*]'
