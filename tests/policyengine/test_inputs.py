"""The bounded reader refuses each class of hostile input with one line naming where."""

from __future__ import annotations

import pytest
import yaml

from policyengine.inputs import (
    MAX_DEPTH,
    DocumentError,
    Loader,
    compose_all,
    parse_document,
    parse_json,
)
from policyengine.policy.numbers import normalise, to_cel

BIG = "1" + "0" * 400
HUGE = "1" * 5001

# (name, text, source, message fragment, kind): every class the reader refuses.
CASES = [
    ("json-5001-digit-int", '{"m": [{"v": ' + HUGE + "}]}", "c.json", "$.m[0].v", "number"),
    ("json-10**400", '{"m": [{"v": ' + BIG + "}]}", "c.json", "$.m[0].v", "number"),
    ("json-nan", '{"v": NaN}', "c.json", "$.v", "number"),
    ("json-inf", '{"v": -Infinity}', "c.json", "$.v", "number"),
    ("json-1e400", '{"v": 1.0e+400}', "c.json", "out of range at $.v", "number"),
    ("json-deep", "[" * 200_000 + "]" * 200_000, "c.json", "nesting deeper", "depth"),
    ("json-duplicate", '{"a": {"b": 1, "b": 2}}', "c.json", "duplicate key 'b' at $.a",
     "duplicate_key"),
    ("json-escaped-nul", '{"a": "x\\u0000"}', "c.json", "NUL character at $.a", "encoding"),
    ("json-surrogate", '{"a": "\\ud800"}', "c.json", "lone surrogate at $.a", "encoding"),
    ("json-nul-byte", '{"a": 1}\x00', "c.json", "NUL character at offset 8", "encoding"),
    ("yaml-nan", "m:\n  v: .nan\n", "c.yaml", "nan is not a number at $.m.v", "number"),
    ("yaml-inf", "v: -.inf\n", "c.yaml", "out of range at $.v", "number"),
    ("yaml-1e400", "v: 1.0e+400\n", "c.yaml", "out of range at $.v", "number"),
    ("yaml-5001-digit-int", "v: " + HUGE + "\n", "c.yaml", "c.yaml:1:4: number", "number"),
    # libyaml stops at its own nesting limit first; the pure-Python parser at MAX_DEPTH.
    ("yaml-flow-deep", "a: " + "[" * 100_000 + "]" * 100_000 + "\n", "c.yaml", "c.yaml:1:",
     None),
    ("yaml-flow-65", "a: " + "[" * 65 + "]" * 65 + "\n", "c.yaml", "nesting deeper than 64",
     "depth"),
    ("yaml-block-deep", "".join(" " * i + f"k{i}:\n" for i in range(3000)), "c.yaml",
     "nesting deeper than 64", "depth"),
    ("yaml-duplicate", "risk_tier: low\nrisk_tier: high\n", "c.yaml",
     "c.yaml:2:1: duplicate key 'risk_tier' at $", "duplicate_key"),
    ("yaml-nul-byte", "a: 1\x00\n", "c.yaml", "NUL character at offset 4", "encoding"),
    ("yaml-escaped-nul", 'a: "\\0"\n', "c.yaml", "NUL character at $.a", "encoding"),
    ("yaml-binary", "a: !!binary aGVsbG8=\n", "c.yaml", "not JSON data at $.a", "value"),
    ("yaml-complex-key", "? [a]\n: 1\n", "c.yaml", "mapping key is not a string", "value"),
    ("yaml-recursive-alias", "a: &a [*a]\n", "c.yaml", "nesting deeper", "depth"),
]


@pytest.mark.parametrize(("name", "text", "source", "fragment", "kind"), CASES,
                         ids=[c[0] for c in CASES])
def test_each_hostile_input_is_one_located_line(name, text, source, fragment, kind):
    """Each class is a DocumentError of its kind: one line naming the source and place."""
    with pytest.raises(DocumentError) as caught:
        parse_document(text, source=source)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(source), message
    assert fragment in message, message
    assert caught.value.kind == kind or kind is None
    assert caught.value.code == "bad_input"


def test_plain_documents_load_as_json_data():
    """Valid JSON and YAML load alike: exponent floats are numbers, dates stay strings."""
    assert parse_document('{"a": [1, 2.5e-1]}', source="c.json") == {"a": [1, 0.25]}
    assert parse_document("a: [1, 25e-2]\nd: 2026-01-01\n1: x\n", source="c.yaml") == {
        "a": [1, 0.25], "d": "2026-01-01", "1": "x"}


def test_merge_keys_are_not_duplicates():
    """A YAML merge key (<<) then an own key of the same name is YAML's override, not a
    duplicate."""
    text = "base: &b {x: 1, y: 1}\nc:\n  <<: *b\n  y: 2\n"
    assert parse_document(text, source="c.yaml")["c"] == {"x": 1, "y": 2}


def test_depth_limit_is_exact():
    """MAX_DEPTH levels load; one more is refused, in JSON and YAML alike."""
    ok, deep = "[" * MAX_DEPTH + "]" * MAX_DEPTH, "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    assert parse_json(ok, "c.json") is not None
    assert parse_document("a: 1\nb: " + ok[1:-1] + "\n", source="c.yaml")
    for text, source in ((deep, "c.json"), ("b: " + deep + "\n", "c.yaml")):
        with pytest.raises(DocumentError, match="nesting deeper"):
            parse_document(text, source=source)


def test_brackets_inside_strings_do_not_count_as_depth():
    """A string full of brackets is data, not nesting."""
    assert parse_json('{"a": "' + "[" * 1000 + '"}', "c.json") == {"a": "[" * 1000}


def test_unterminated_strings_are_syntax_errors_not_slow_scans():
    """Escaped quotes without an end are a JSON syntax error (the depth scan stops)."""
    with pytest.raises(DocumentError, match="invalid JSON") as caught:
        parse_json('["' + '\\"' * 200_000, "c.json")
    assert caught.value.kind == "syntax"


def test_invalid_utf8_bytes_are_refused_with_the_offset():
    """Bytes that are not UTF-8 are refused naming the byte."""
    with pytest.raises(DocumentError, match=r"not UTF-8 text \(byte 6\)"):
        parse_json(b'{"a": \xff}', "body")


def test_yaml_load_with_the_loader_is_bounded():
    """yaml.load(..., Loader=Loader), as the Hugging Face importer calls it, checks too."""
    with pytest.raises(DocumentError, match="duplicate key"):
        yaml.load("a: 1\na: 2\n", Loader=Loader)  # Loader is a safe loader


def test_policy_composition_shares_the_checks():
    """Composing policy documents refuses duplicates and depth with line and column."""
    assert len(compose_all("a: 1\n---\nb: 2\n", "p.yaml")) == 2
    with pytest.raises(DocumentError) as caught:
        compose_all("a: 1\n---\nb: 1\nb: 2\n", "p.yaml")
    assert (caught.value.line, caught.value.col) == (4, 1)


@pytest.mark.parametrize("value", [10**400, float("nan"), float("inf"), -float("inf")])
def test_normalise_refuses_numbers_no_double_holds(value):
    """normalise and to_cel refuse what a double cannot hold as bad input naming the path."""
    from policyengine.errors import InputError

    with pytest.raises(InputError, match=r"\$\.metrics\[0\]\.value: .*out of range"):
        normalise({"metrics": [{"value": value}]})
    with pytest.raises(InputError):
        to_cel(value)


def test_normalise_keeps_large_finite_numbers():
    """Integers up to a double's range still normalise (with a double's precision)."""
    assert normalise({"n": 10**300})["n"] == 1e300


def test_integers_stop_where_the_log_can_hash_them():
    """2**53-1 loads; 2**53 is refused (RFC 7493 I-JSON), so validate and gate agree."""
    assert parse_json('{"n": 9007199254740991}', "c.json") == {"n": 2**53 - 1}
    with pytest.raises(DocumentError, match=r"2\*\*53-1"):
        parse_json('{"n": -9007199254740992}', "c.json")


def test_json_path_escapes_unprintable_key_characters():
    """Control characters and lone surrogates in keys print escaped, one line, encodable."""
    from policyengine.inputs import json_path

    shown = json_path(("card", "can_\ud800x", 0, "a\nb", "é"))
    assert shown == "$.card.can_\\ud800x[0].a\\u000ab.é"
    shown.encode("utf-8")  # a lone surrogate would raise here
