"""Numbers: the same card gives the same decision however a number was written."""

from __future__ import annotations

import json
import re

import pytest
from celpy import celtypes
from hypothesis import given, settings
from hypothesis import strategies as st

from policyengine.errors import InputError
from policyengine.policy import load_data
from policyengine.policy.numbers import compare_operands, normalise, plain_to_cel, to_cel

RULES = """
- id: dp
  severity: deny
  expr: 'card.fairness.all(f, f.value >= params.min) && card.retention.data_days <= 365'
  message: '"low"'
- id: count
  severity: deny
  expr: 'card.fairness.size() >= params.min_groups && params.min_groups <= size(card.fairness)'
  message: '"few"'
- id: literal
  severity: deny
  expr: 'card.retention.audit_log_days >= 180 && 1 <= card.fairness[0].value * 2'
  message: '"short"'
"""


def _card(h, value_text: str, days_text: str):
    card = json.loads(json.dumps(h.CARD))
    text = json.dumps(card).replace("0.93", value_text).replace("365", days_text)
    return json.loads(text)


@pytest.mark.parametrize(("value", "days"), [("0.93", "365"), ("93e-2", "365.0"),
                                             ("0.930", "3.65e2"), ("9.3E-1", "365")])
def test_spelling_of_numbers_does_not_change_the_decision(decide, h, value, days):
    """0.93 / 93e-2 and 365 / 365.0 give identical decisions and input digests."""
    baseline = decide(RULES, _card(h, "0.93", "365"), params="{min: 0.8, min_groups: 2}")
    other = decide(RULES, _card(h, value, days), params="{min: 0.8, min_groups: 2}")
    assert baseline.allow and other.allow
    assert [r.outcome for r in other.results] == ["pass", "pass", "pass"]
    assert other.input_digest == baseline.input_digest


def test_int_param_against_double_value(decide, h):
    """A param written as 1 compares with a card value 0.93 (cel-python alone says no overload)."""
    d = decide(RULES, params="{min: 1, min_groups: 2.0}")
    assert [r.outcome for r in d.results] == ["fail", "pass", "pass"]


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_int_and_double_equal_values_in_card_files(decide, h, write, suffix):
    """Card files with 1, 1.0, 1e0 and 100e-2 evaluate identically, in YAML and JSON."""
    rules = h.rule("one", "card.metrics[0].value == 1.0 && 1 == card.metrics[0].value")
    digests = set()
    for spelling in ("1", "1.0", "1e0", "100e-2"):
        text = f'{{"metrics": [{{"name": "a", "value": {spelling}}}], "risk_tier": "high"}}'
        card = load_data(write(text, f"card{suffix}"))
        decision = decide(rules, card)
        assert decision.allow, spelling
        digests.add(decision.input_digest)
    assert len(digests) == 1


def test_in_operator_across_number_types(decide, h):
    """`x in [..]` matches 2.0 against 2."""
    rules = h.rule("in", "card.retention.data_days in [365, 730]")
    assert decide(rules).allow


def test_mixed_arithmetic_promotes_to_double(decide, h):
    """int literal times a double value is a double, not an error."""
    rules = h.rule("a", "card.fairness[0].value * 100 > 90 && 100 * card.fairness[0].value < 94")
    assert decide(rules).allow


def test_list_index_from_int_arithmetic_still_works(decide, h):
    """Pure int arithmetic stays int, so indexes computed from size() work."""
    rules = h.rule("last", "card.fairness[size(card.fairness) - 1].value == 0.85")
    assert decide(rules).allow


def test_booleans_are_not_numbers():
    """true stays a bool, never 1.0."""
    assert normalise({"a": True, "b": 1}) == {"a": True, "b": 1.0}
    assert isinstance(to_cel(True), celtypes.BoolType)


def test_string_against_number_is_still_a_type_error():
    """Promotion applies to numbers only."""
    left, right = compare_operands(celtypes.StringType("a"), celtypes.IntType(1))
    assert isinstance(left, celtypes.StringType) and isinstance(right, celtypes.IntType)


@given(st.integers(min_value=-(2**53), max_value=2**53))
def test_int_and_float_normalise_to_the_same_value(n):
    """n and float(n) normalise to equal CEL doubles."""
    assert to_cel(n) == to_cel(float(n))
    assert normalise([n]) == normalise([float(n)])


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False), st.integers(0, 10**6))
def test_number_spelling_never_changes_digest_or_value(value, whole):
    """Any float written as repr or exponent, and any int written as n or n.0, normalise alike."""
    import json as _json
    # .17e round-trips every double exactly, so both texts denote one number.
    for text_a, text_b in ((repr(value), f"{value:.17e}"), (str(whole), f"{whole}.0")):
        a = _json.loads(f'{{"v": {text_a}}}')
        b = _json.loads(f'{{"v": {text_b}}}')
        assert to_cel(a) == to_cel(b)
        assert normalise(a) == normalise(b)


_PLAIN = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(-10, 10) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner,
                                                                max_size=3),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(_PLAIN)
def test_plain_to_cel_converts_as_to_cel_does(value):
    """The fast path's converter gives to_cel's CEL values, types included, and its errors
    (a NaN or an infinity is refused the same way)."""
    try:
        expected = to_cel(value)
    except InputError as exc:
        with pytest.raises(InputError, match=re.escape(str(exc))):
            plain_to_cel(value)
        return
    got = plain_to_cel(value)
    assert got == expected and _types(got) == _types(expected)


def _types(value):
    """The CEL value's type tree (== alone cannot tell a DoubleType from an IntType)."""
    if isinstance(value, dict):
        return {str(k): _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value).__name__
