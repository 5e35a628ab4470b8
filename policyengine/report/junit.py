"""JUnit XML report: one testcase per rule, for CI test-result views.

The layout is the Apache Ant JUnit schema (the one Jenkins, GitLab and most CI
systems read; tests/vectors/junit/ holds it and the Jenkins xUnit variant):
``<testsuites>`` with one ``<testsuite>`` carrying ``package``, ``id``,
``timestamp`` (no zone), ``hostname``, ``properties``, the testcases,
``system-out`` and ``system-err``. A rule that failed or errored is a
``<failure>`` or ``<error>``; a rule that did not apply is ``<skipped>``; a
waived rule is ``<skipped>`` whose message starts with "waived", never a pass.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from policyengine.decision import Decision, RuleResult
from policyengine.report import ReportContext, subject_line


def _timestamp(decision: Decision) -> str:
    """ISO 8601 without zone or fraction, as the Ant schema's pattern requires (UTC)."""
    try:
        when = datetime.fromisoformat(decision.evaluated_at.replace("Z", "+00:00"))
    except ValueError:
        when = datetime.now(UTC)
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S")


def _testcase(parent: ET.Element, result: RuleResult) -> None:
    case = ET.SubElement(
        parent, "testcase", name=result.rule or "?", classname=result.policy or "policy", time="0"
    )
    text = result.message
    if result.remediation:
        text = f"{text}\nremediation: {result.remediation.strip()}"
    if result.outcome == "fail":
        node = ET.SubElement(
            case, "failure", type=f"{result.mode}:{result.severity}", message=result.message
        )
        node.text = text
    elif result.outcome == "error":
        node = ET.SubElement(case, "error", type="evaluation_error", message=result.message)
        node.text = text
    elif result.outcome == "waived":
        waiver = result.waiver or {}
        note = (
            f"waived by {waiver.get('id', '?')} ({waiver.get('ticket', '')}), "
            f"expires {waiver.get('expires', '?')}"
        )
        ET.SubElement(case, "skipped", message=f"waived: {result.message} [{note}]")
    elif result.outcome == "skipped":
        ET.SubElement(case, "skipped", message="not applicable")


def render(decision: Decision, context: ReportContext) -> str:
    """Render the Decision as a JUnit XML document."""
    results = decision.results
    failures = sum(r.outcome == "fail" for r in results)
    errors = sum(r.outcome == "error" for r in results)
    skipped = sum(r.outcome in ("skipped", "waived") for r in results)
    counts = {"tests": str(len(results)), "failures": str(failures), "errors": str(errors)}
    # The Ant schema allows no attributes on <testsuites>; the counts live on the suite.
    root = ET.Element("testsuites")
    attrib = {
        "name": subject_line(decision),
        "package": "policyengine",
        "id": "0",
        "timestamp": _timestamp(decision),
        "hostname": socket.gethostname() or "localhost",
        "skipped": str(skipped),
        "time": "0",
        **counts,
    }
    suite = ET.SubElement(root, "testsuite", attrib)
    props = ET.SubElement(suite, "properties")
    for name, value in _properties(decision, context):
        ET.SubElement(props, "property", name=name, value=value)
    for result in results:
        _testcase(suite, result)
    ET.SubElement(suite, "system-out").text = f"decision: {decision.decision}"
    ET.SubElement(suite, "system-err").text = "\n".join(context.notes)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _properties(decision: Decision, context: ReportContext) -> list[tuple[str, str]]:
    props = [("decision", decision.decision), ("id", decision.id),
             ("bundle_digest", decision.bundle_digest), ("input_digest", decision.input_digest)]
    if context.seq is not None:
        props.append(("log_seq", str(context.seq)))
    if context.checkpoint_size is not None:
        props.append(("checkpoint_size", str(context.checkpoint_size)))
    return props
