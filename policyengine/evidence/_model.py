"""The evidence record: what one imported report says, in the engine's terms.

Internal to ``policyengine.evidence``. Every parser turns its report into an
:class:`Evidence`; ``to_dict()`` is the payload of the ``evidence`` log entry
and, with the entry's time and sequence number, an item of
``history.evidence`` (docs/policy-language.md, schemas/history.schema.json).
Values are copied from the report, never computed beyond what the report
states (a fairlearn ratio is the report's ratio, not one derived here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from policyengine.errors import InputError

__all__ = ["KINDS", "Evidence", "EvidenceError", "finite"]

KINDS: tuple[str, ...] = ("drift", "fairness", "metrics")
"""What evidence can be about."""


class EvidenceError(InputError):
    """A report cannot be read as evidence (malformed, unsupported version); exit 2."""

    code: ClassVar[str] = "bad_input"


@dataclass(frozen=True)
class Evidence:
    """One imported report as evidence."""

    kind: str
    """drift, fairness or metrics."""
    format: str
    """evidently, fairlearn, clarify or model-monitor."""
    source: dict[str, str]
    """``file`` (base name) and ``digest`` (sha256 of the report's bytes)."""
    format_version: str | None = None
    """The report format's version when the report states it (or its shape)."""
    drift: dict[str, Any] | None = None
    """For drift: ``share``, ``drifted_count``, ``columns_count``, ``dataset_drift``,
    ``share_threshold`` and ``columns`` (one per column: ``column``, ``score``,
    ``score_type``, ``method``, ``threshold``, ``drifted``, ``missing_rate``)."""
    fairness: list[dict[str, Any]] = field(default_factory=list)
    """Fairness results shaped as card.fairness items."""
    metrics: list[dict[str, Any]] = field(default_factory=list)
    """Metrics shaped as card.metrics items."""
    notes: list[str] = field(default_factory=list)
    """What was in the report and not carried over, one line each."""

    def to_dict(self) -> dict[str, Any]:
        """The ``evidence`` entry payload (JSON-able, no None values)."""
        out: dict[str, Any] = {"kind": self.kind, "format": self.format, "source": self.source}
        if self.format_version:
            out["format_version"] = self.format_version
        if self.drift is not None:
            out["drift"] = self.drift
        if self.fairness:
            out["fairness"] = self.fairness
        if self.metrics:
            out["metrics"] = self.metrics
        return out


def finite(value: Any) -> float | int | None:
    """A finite JSON number (bools, NaN, infinities and strings are not); else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
