"""JSON report: the Decision itself (schemas/decision.schema.json), indented."""

from __future__ import annotations

import json

from policyengine.decision import Decision
from policyengine.report import ReportContext


def render(decision: Decision, context: ReportContext) -> str:
    """Render the Decision's dict form as JSON (the context is not part of it)."""
    del context
    return json.dumps(decision.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
