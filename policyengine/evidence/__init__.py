"""Evidence other tools produce, read as it is and recorded in the audit log.

Public API:

- ``load_evidence(path, fmt="auto") -> Evidence``: read a report file (bounded
  size), detect or check its format, and parse it: Evidently reports become
  ``drift`` evidence, fairlearn MetricFrame exports and SageMaker Clarify bias
  reports ``fairness`` evidence, SageMaker Model Monitor model-quality reports
  ``metrics`` evidence.
- ``parse_evidence(data, source, fmt="auto")``: the same on parsed JSON.
Recording it in the log is :mod:`policyengine.evidence_log`'s job (an
operation: it needs the engine); the history of that model version then shows
it to policies as ``history.evidence``.

Malformed or unsupported reports raise :class:`EvidenceError` (exit 2) with
one line naming the file; nothing is written to the log before a report has
parsed. Nothing here reaches the network.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from policyengine.evidence._model import KINDS, Evidence, EvidenceError
from policyengine.evidence.detect import FORMAT_NAMES, evidence_format
from policyengine.evidence.evidently import SHAPES as EVIDENTLY_SHAPES
from policyengine.evidence.evidently import parse_evidently
from policyengine.evidence.fairlearn import SHAPE as FAIRLEARN_SHAPE
from policyengine.evidence.fairlearn import parse_fairlearn
from policyengine.evidence.sagemaker import parse_clarify, parse_model_monitor

__all__ = [
    "FORMAT_NAMES",
    "KINDS",
    "Evidence",
    "EvidenceError",
    "load_evidence",
    "parse_evidence",
]

_PARSERS = {
    "evidently": parse_evidently,
    "fairlearn": parse_fairlearn,
    "clarify": parse_clarify,
    "model-monitor": parse_model_monitor,
}
_SUPPORTED = (
    f"{EVIDENTLY_SHAPES}; {FAIRLEARN_SHAPE}; SageMaker Clarify analysis "
    "{pre_training_bias_metrics, post_training_bias_metrics}; SageMaker Model Monitor "
    "statistics {binary_classification_metrics | multiclass_classification_metrics | "
    "regression_metrics}; or SageMaker metric_groups of either"
)


def parse_evidence(data: Any, source: str, fmt: str = "auto") -> Evidence:
    """Parsed report JSON -> Evidence (``source`` names the file in errors).

    Raises:
        EvidenceError: unknown format, a format that does not match, or a
            malformed report.
    """
    if fmt not in ("auto", *FORMAT_NAMES):
        raise EvidenceError(
            f"{source}: unknown evidence format {fmt!r}; expected auto or one of "
            f"{', '.join(FORMAT_NAMES)}"
        )
    if not isinstance(data, dict):
        raise EvidenceError(f"{source}: $: expected a JSON object, got {type(data).__name__}")
    if fmt == "auto":
        try:
            fmt = evidence_format(data)
        except ValueError:
            keys = ", ".join(sorted(map(str, data))[:5]) or "none"
            raise EvidenceError(
                f"{source}: $: not a supported report (top-level keys: {keys}); "
                f"supported: {_SUPPORTED}"
            ) from None
    try:
        return _PARSERS[fmt](data, source)
    except EvidenceError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        # A structure the parser did not expect deeper down: still one line, exit 2.
        raise EvidenceError(
            f"{source}: malformed {fmt} report ({type(exc).__name__}: {exc}); "
            f"supported: {_SUPPORTED}"
        ) from exc


def _read(path: Path) -> tuple[Any, bytes]:
    """The parsed JSON and the bytes it came from (bounded, one-line errors)."""
    from policyengine.inputs import DocumentError, parse_json, read_text

    try:
        text = read_text(path, "evidence file")
        return parse_json(text, str(path)), path.read_bytes()
    except DocumentError as exc:  # the bounded reader's one line, as evidence (exit 2)
        raise EvidenceError(str(exc)) from exc
    except OSError as exc:
        raise EvidenceError(f"{path}: cannot read evidence file: {exc.strerror}") from exc


def load_evidence(path: str | Path, fmt: str = "auto") -> Evidence:
    """Read and parse a report file; ``source`` carries its name and sha256 digest.

    Raises:
        EvidenceError: unreadable, too large, not JSON, or not a supported report.
    """
    path = Path(path)
    data, raw = _read(path)
    evidence = parse_evidence(data, str(path), fmt)
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    return replace(evidence, source={"file": path.name, "digest": digest})
