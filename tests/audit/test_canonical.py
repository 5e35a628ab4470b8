"""Tests for audit/canonical.py: envelope bytes equal RFC 8785 output."""

from __future__ import annotations

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.canonical import dumps, dumps_envelope
from audit.errors import CanonicalizationError

_ENVELOPE = {
    "v": 1,
    "log": "policyengine.local/audit",
    "seq": 41,
    "time": "2026-11-26T15:00:00.123456Z",
    "type": "decision",
    "subject": {"name": "credit-risk", "version": "3", "digest": "sha256:" + "ab" * 32},
    "actor": "ci@example.org",
    "payload_digest": "sha256:" + "cd" * 32,
    "prev": "00" * 32,
}

_SAFE_INT = st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
_BMP_TEXT = st.text(alphabet=st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)))
_ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)))
_ENVELOPE_VALUES = st.recursive(
    st.none() | st.booleans() | _SAFE_INT | _ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_BMP_TEXT, inner, max_size=4),
    max_leaves=12,
)


@pytest.mark.parametrize(
    "envelope",
    [
        _ENVELOPE,
        {**_ENVELOPE, "actor": 'Zoë \u2028 "quoted" \\ \x00\x1f\x7f'},
        {**_ENVELOPE, "subject": {"name": "模型", "z": None, "a": [True, False, -1]}},
        {**_ENVELOPE, "actor": "emoji \U0001f600 in a value"},
        {"\u00e9": 1, "e": 2, "\u20ac": 3, "\ufb33": 4, "\r": 5, "1": 6},
        {**_ENVELOPE, "seq": 2**53 - 1},
    ],
)
def test_envelope_bytes_equal_rfc8785(envelope: dict) -> None:
    """Envelope bytes from the fast path equal the rfc8785 package byte for byte."""
    assert dumps_envelope(envelope) == rfc8785.dumps(envelope)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_BMP_TEXT, _ENVELOPE_VALUES, max_size=8))
def test_envelope_fast_path_matches_rfc8785_property(envelope: dict) -> None:
    """Any float-free object with BMP keys canonicalises exactly as RFC 8785 does."""
    assert dumps_envelope(envelope) == rfc8785.dumps(envelope)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | _SAFE_INT
        | st.floats(allow_nan=False, allow_infinity=False)
        | _ANY_TEXT,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_ANY_TEXT, inner, max_size=4),
        max_leaves=12,
    )
)
def test_payload_dumps_matches_rfc8785_property(value: object) -> None:
    """Payload canonicalisation equals rfc8785 for any JSON value, floats included."""
    assert dumps(value) == rfc8785.dumps(value)


_MIXED_KEYS = st.text(
    alphabet=st.sampled_from("aZ_1\u00e9\u20ac\ufb01\uffff\U00010000\U0001f600"), max_size=4
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        _MIXED_KEYS,
        _ANY_TEXT | st.dictionaries(_MIXED_KEYS, _ANY_TEXT | _SAFE_INT, max_size=4),
        max_size=6,
    )
)
def test_non_ascii_and_astral_keys_property(value: dict) -> None:
    """ASCII, non-ASCII BMP and astral keys with string values give rfc8785's bytes;
    envelopes refuse exactly the objects holding a key above U+FFFF."""
    assert dumps(value) == rfc8785.dumps(value)
    keys = [*value, *(k for v in value.values() if isinstance(v, dict) for k in v)]
    if any(max(key, default="\x00") > "\uffff" for key in keys):
        with pytest.raises(CanonicalizationError, match="above U\\+FFFF"):
            dumps_envelope(value)
    else:
        assert dumps_envelope(value) == rfc8785.dumps(value)


def test_astral_keys_sort_by_utf16_code_units() -> None:
    """Keys above U+FFFF are sorted by UTF-16 code units (RFC 8785 §3.2.3), not code points."""
    obj = {"\U0001f600": 1, "\ufb01": 2}
    assert dumps(obj) == rfc8785.dumps(obj)
    assert dumps(obj).index("\U0001f600".encode()) < dumps(obj).index("\ufb01".encode())


@pytest.mark.parametrize(
    ("envelope", "fragment"),
    [
        ({**_ENVELOPE, "seq": 1.0}, "float"),
        ({**_ENVELOPE, "seq": 2**53}, "outside"),
        ({**_ENVELOPE, "subject": {"score": 0.5}}, "envelope.subject.score: float"),
        ({"\U0001f600": 1}, "above U\\+FFFF"),
        ({1: "x"}, "not a string"),
        ({"t": object()}, "not a JSON value"),
        ({"t": "\ud800"}, "lone surrogate"),
    ],
)
def test_envelope_refuses_values_outside_the_fast_path(envelope: dict, fragment: str) -> None:
    """Floats, big integers, astral keys and non-JSON values never enter an envelope."""
    with pytest.raises(CanonicalizationError, match=fragment):
        dumps_envelope(envelope)


def test_envelope_must_be_an_object() -> None:
    """An envelope that is not a JSON object is refused with the type found."""
    with pytest.raises(CanonicalizationError, match="expected dict, got list"):
        dumps_envelope([1])  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 2**64, {"a": {1, 2}}])
def test_dumps_refuses_non_canonical_values(value: object) -> None:
    """Values RFC 8785 cannot represent raise CanonicalizationError, not a foreign error."""
    with pytest.raises(CanonicalizationError, match="not canonical JSON"):
        dumps(value)


@pytest.mark.parametrize("edge", [2**53 - 1, -(2**53 - 1), 2**53, -(2**53), 2**64])
@pytest.mark.parametrize(
    "wrap", [lambda v: {"n": v}, lambda v: [v], lambda v: {"a": [1, {"n": v}]}])
def test_integers_inside_containers_at_the_safe_bound(edge: int, wrap: object) -> None:
    """Integers checked inline in objects and arrays give rfc8785's bytes within
    +-(2**53-1) and the same refusal beyond it."""
    value = wrap(edge)  # type: ignore[operator]
    try:
        want = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(CanonicalizationError):
            dumps(value)
    else:
        assert dumps(value) == want
