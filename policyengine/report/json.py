"""JSON report: the Decision itself (schemas/decision.schema.json), indented."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from policyengine.report import ReportContext


def render(decision: Mapping[str, Any], context: ReportContext) -> str:
    """Render the Decision as JSON, unchanged (the context is not part of it)."""
    del context
    return json.dumps(decision, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
