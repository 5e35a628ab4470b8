"""Annotations point at the card line of the value a failing rule read."""

from __future__ import annotations

import json

import pytest

from policyengine.report import ReportContext, render
from policyengine.report.lines import card_lines

YAML_CARD = """\
model:
  name: credit-risk
  version: 1.4.0
fairness:
  - metric: demographic_parity_ratio
    group: sex
    value: 0.72
  - {metric: equal_opportunity, value: 0.9}
"""

JSON_CARD = """{
  "model": {"name": "credit-risk", "version": "1.4.0"},
  "fairness": [
    {"metric": "equal_opportunity", "value": 0.9},
    {
      "metric": "demographic_parity_ratio",
      "value": 0.72
    }
  ],
  "odd key": [[1, 2], {"": null}]
}
"""


def test_yaml_lines_from_node_marks():
    """Members map to their key's line, list elements to where they start."""
    lines = card_lines(YAML_CARD)
    assert lines["card.model.version"] == 3
    assert lines["card.fairness"] == 4
    assert lines["card.fairness[0]"] == 5
    assert lines["card.fairness[0].value"] == 7
    assert lines["card.fairness[1].value"] == 8
    assert "card" not in lines


def test_json_lines_from_position_index():
    """The JSON index finds members on one line and spread over several."""
    lines = card_lines(JSON_CARD)
    assert lines["card.model.name"] == 2
    assert lines["card.fairness[0].value"] == 4
    assert lines["card.fairness[1]"] == 5
    assert lines["card.fairness[1].value"] == 7
    assert lines['card["odd key"][0][1]'] == 10
    assert lines['card["odd key"][1][""]'] == 10


def test_json_index_agrees_with_the_parser_on_every_path():
    """Every path the JSON index finds names a value the parsed card holds, and all are found."""
    data = json.loads(JSON_CARD)
    found = card_lines(JSON_CARD)
    assert len(found) == 16
    assert card_lines(json.dumps(data, indent=2)).keys() == found.keys()


@pytest.mark.parametrize("text", ["{", "{\"a\": }", "a: [", "a: b: c", ""])
def test_unparseable_text_gives_no_lines(text):
    """Text that does not parse gives no lines (annotations fall back to line 1)."""
    assert card_lines(text) == {}


def test_yaml_aliases_are_walked_once():
    """An alias-heavy card is indexed in linear work, not expanded."""
    text = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    lines = card_lines(text)
    assert lines["card.i"] == 9 and len(lines) < 200


@pytest.mark.parametrize(("name", "text", "line"), [("card.yaml", YAML_CARD, 7),
                                                    ("card.json", JSON_CARD, 7)])
def test_github_annotation_at_the_failing_value(build, rule, name, text, line):
    """A failing fairness rule is annotated on the card line of the value it read."""
    failed = rule("fairness", "dp-ratio", "fail", values={
        "params.min_ratio": 0.8, "card.fairness[1].value" if name == "card.json"
        else "card.fairness[0].value": 0.72})
    context = ReportContext(card_path=name, card_lines=card_lines(text))
    out = render("github", build([failed]), context)
    assert out.startswith(f"::error file={name},line={line},title=FAIL fairness/dp-ratio::")


def test_github_falls_back_to_line_1(build, rule):
    """A rule whose values are not in the card (a missing field) is annotated on line 1."""
    failed = rule("docs", "limits", "error", values={"event.stage": "production"})
    context = ReportContext(card_path="card.yaml", card_lines=card_lines(YAML_CARD))
    assert "file=card.yaml,line=1," in render("github", build([failed]), context)


def test_sarif_region_at_the_failing_value(build, rule):
    """The SARIF card location's region starts at the line of the value the rule read."""
    failed = rule("fairness", "dp-ratio", "fail", values={"card.fairness[0].value": 0.72})
    context = ReportContext(card_path="card.yaml", card_lines=card_lines(YAML_CARD))
    result = json.loads(render("sarif", build([failed]), context))["runs"][0]["results"][0]
    assert result["locations"][0]["physicalLocation"]["region"] == {"startLine": 7}


def test_annotation_prefers_the_value_the_message_names(build, rule):
    """Of all values a rule read, the one its message quotes is the line annotated."""
    failed = rule("fairness", "dp-ratio", "fail",
                  message="demographic parity ratio below 0.8 for sex = 0.72",
                  values={"card.fairness[0].metric": "demographic_parity_ratio",
                          "card.fairness[1].metric": "equal_opportunity",
                          "card.fairness[1].value": 0.9, "card.fairness[0].value": 0.72})
    context = ReportContext(card_path="card.yaml", card_lines=card_lines(YAML_CARD))
    assert "file=card.yaml,line=7," in render("github", build([failed]), context)
