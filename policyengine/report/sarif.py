"""SARIF 2.1.0 report for code-scanning views (GitHub code scanning, GitLab).

One result per rule that failed, errored or was waived. The primary location is
the model card file, its region the line of the value the rule read
(:func:`policyengine.report.card_line`; line 1 when none maps); a related
location points at the policy file and the line where the rule is written.
Waived results carry an external suppression with the waiver's justification
(SARIF 2.1.0 §3.35), so they show as suppressed, not as fixed. Rules appear in
``tool.driver.rules`` with their remediation as help.
Evidence that did not count (approvals whose key, role or signature failed)
is listed as tool execution notifications of the invocation (§3.20.21).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from policyengine._version import __version__
from policyengine.decision import Decision, RuleResult
from policyengine.report import ReportContext, card_line, label, level

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
_REPORTED = ("fail", "error", "waived")


def _uri(path: str) -> tuple[str, bool]:
    """A URI for ``path``: relative to the working directory when inside it."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix(), True
    except ValueError:
        return resolved.as_uri(), False


def _location(path: str, line: int, message: str | None = None) -> dict[str, Any]:
    uri, relative = _uri(path)
    artifact: dict[str, Any] = {"uri": uri}
    if relative:
        artifact["uriBaseId"] = "%SRCROOT%"
    loc: dict[str, Any] = {
        "physicalLocation": {"artifactLocation": artifact, "region": {"startLine": max(1, line)}}
    }
    if message:
        loc["message"] = {"text": message}
    return loc


def _descriptor(result: RuleResult) -> dict[str, Any]:
    desc = result.rule
    out: dict[str, Any] = {
        "id": result.key,
        "name": result.rule,
        "shortDescription": {"text": desc},
        "defaultConfiguration": {"level": level(result)},
        "properties": {"policy": result.policy, "policy_version": result.policy_version},
    }
    if result.remediation:
        out["help"] = {"text": result.remediation.strip()}
    return out


def _result(result: RuleResult, index: int, context: ReportContext) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ruleId": result.key,
        "ruleIndex": index,
        "level": level(result),
        "kind": "fail",
        "message": {"text": result.message or f"{result.key}: {result.outcome}"},
        "properties": {"outcome": result.outcome, "severity": result.severity,
                       "mode": result.mode, "label": label(result)},
    }
    if result.references:
        out["properties"]["references"] = list(result.references)
    if context.card_path:
        out["locations"] = [_location(context.card_path, card_line(result, context) or 1)]
    where = context.rule_locations.get(result.key) or (
        (result.file, result.line) if result.file else None)
    if where:
        out["relatedLocations"] = [dict(_location(where[0], where[1], "rule definition"), id=0)]
    if result.outcome == "waived":
        waiver = result.waiver or {}
        ticket = waiver.get("ticket", "")
        reason = f"waiver {waiver.get('id', '?')} ({ticket}): {waiver.get('reason', '')}"
        out["suppressions"] = [{"kind": "external", "status": "accepted", "justification": reason}]
    return out


def render(decision: Decision, context: ReportContext) -> str:
    """Render the Decision as a SARIF 2.1.0 log with one run."""
    reported = [r for r in decision.results if r.outcome in _REPORTED]
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for result in reported:
        if result.key not in index:
            index[result.key] = len(rules)
            rules.append(_descriptor(result))
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "policyengine",
                "version": __version__,
                "informationUri": "https://github.com/policyengine/policyengine",
                "rules": rules,
            }
        },
        "results": [_result(r, index[r.key], context) for r in reported],
        "invocations": [_invocation(decision, context)],
        "properties": _run_properties(decision, context),
    }
    if any(r.get("locations") for r in run["results"]):
        run["originalUriBaseIds"] = {"%SRCROOT%": {"uri": Path.cwd().resolve().as_uri() + "/"}}
    log = {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}
    return json.dumps(log, indent=2, ensure_ascii=False) + os.linesep


def _invocation(decision: Decision, context: ReportContext) -> dict[str, Any]:
    """The gate run; evidence that did not count (e.g. rejected approvals) as notifications."""
    out: dict[str, Any] = {
        "executionSuccessful": True,
        "exitCode": 0 if decision.allow else 1,
    }
    if context.notes:
        out["toolExecutionNotifications"] = [
            {"level": "warning", "message": {"text": f"not counted: {note}"}}
            for note in context.notes
        ]
    return out


def _run_properties(decision: Decision, context: ReportContext) -> dict[str, Any]:
    props: dict[str, Any] = {"decision": decision.decision, "id": decision.id,
                             "bundle_digest": decision.bundle_digest,
                             "input_digest": decision.input_digest}
    if context.seq is not None:
        props["log_seq"] = context.seq
    if context.checkpoint_size is not None:
        props["checkpoint_size"] = context.checkpoint_size
    return props
