"""JUnit report: valid against the Ant and Jenkins schemas; one testcase per rule."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from policyengine.report import ReportContext, render

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "junit"


@pytest.mark.parametrize("xsd", ["JUnit.xsd", "junit-10.xsd"])
def test_junit_validates_against_schema(decision, context, xsd):
    """The document validates against the shipped JUnit XSD."""
    schema = xmlschema.XMLSchema(VECTORS / xsd)
    schema.validate(render("junit", decision, context))


@pytest.mark.parametrize("xsd", ["JUnit.xsd", "junit-10.xsd"])
def test_junit_empty_decision_validates(build, xsd):
    """A Decision with no results still gives a valid document."""
    xmlschema.XMLSchema(VECTORS / xsd).validate(render("junit", build([]), ReportContext()))


def test_junit_outcomes_map_to_elements(decision, context):
    """fail -> failure, error -> error, skipped/waived -> skipped (waived noted), pass -> empty."""
    root = ET.fromstring(render("junit", decision, context))
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert len(cases) == 6
    assert cases["min-approvers"].find("failure") is not None
    assert cases["latency-p95"].find("failure").get("type") == "enforce:warn"
    assert cases["limitations"].find("error") is not None
    assert cases["pii-days"].find("skipped").get("message").startswith("waived")
    assert cases["eo-diff"].find("skipped").get("message") == "not applicable"
    assert list(cases["dp-ratio"]) == []


def test_junit_counts(decision, context):
    """Suite counts agree with the testcases."""
    suite = ET.fromstring(render("junit", decision, context)).find("testsuite")
    assert (
        suite.get("tests"),
        suite.get("failures"),
        suite.get("errors"),
        suite.get("skipped"),
    ) == ("6", "2", "1", "2")


def test_junit_escapes_markup(decision, context):
    """Messages with markup characters survive as text."""
    root = ET.fromstring(render("junit", decision, context))
    failure = next(root.iter("failure"))
    assert failure.get("message") == '1 of 2 approvals <&> "q"'
