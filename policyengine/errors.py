"""The one error hierarchy of policyengine.

Every error a user can cause is a :class:`PolicyEngineError` with a stable
snake_case ``code``. The CLI maps ``code`` to an exit code and the service
maps it to an HTTP status, each in exactly one place; nothing else inspects
exception types. Messages are lowercase fragments that say what was expected,
what was found and where.

This module owns the error types and :class:`Diagnostic` (one located
problem in a policy file); it does not format for any particular output
beyond ``str``/``to_dict``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "CardValidationError",
    "ConfigError",
    "Diagnostic",
    "EvaluationError",
    "InputError",
    "KeyUnavailableError",
    "LogUnavailableError",
    "PolicyEngineError",
    "PolicyLoadError",
    "RecordedIncompleteError",
    "RetentionRefusedError",
    "SchemaError",
]


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a policy or test file, with its location."""

    file: str
    """Path of the file as the user named it."""
    line: int
    """1-based line in the file (0 when unknown)."""
    col: int
    """1-based column in the file (0 when unknown)."""
    policy: str | None
    """metadata.name of the policy, when known."""
    rule: str | None
    """Rule id, when the problem is inside a rule."""
    message: str
    """Lowercase fragment: what is wrong and how to fix it."""

    def where(self) -> str:
        """``policy/rule`` (or ``policy``, or ``-`` when neither is known)."""
        if self.policy and self.rule:
            return f"{self.policy}/{self.rule}"
        return self.policy or (f"-/{self.rule}" if self.rule else "-")

    def __str__(self) -> str:
        # `file:line:col: policy/rule: message`, leaving out what is unknown
        # (a file that cannot be read has no line, and no policy yet).
        place = self.file
        if self.line:
            place += f":{self.line}" + (f":{self.col}" if self.col else "")
        where = self.where()
        return f"{place}: {self.message}" if where == "-" else f"{place}: {where}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form used by ``--format json``."""
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "policy": self.policy,
            "rule": self.rule,
            "message": self.message,
        }


class PolicyEngineError(Exception):
    """Base for every error policyengine raises deliberately."""

    code: ClassVar[str] = "internal_error"

    def diagnostics(self) -> str:
        """Text for people: one line per problem, no traceback."""
        return str(self)


class PolicyLoadError(PolicyEngineError):
    """Policy files that cannot be loaded or compiled; carries every problem found."""

    code: ClassVar[str] = "policy_invalid"

    def __init__(self, errors: Sequence[Diagnostic]) -> None:
        self.errors: list[Diagnostic] = sorted(
            errors, key=lambda d: (d.file, d.line, d.col, d.message)
        )
        count = len(self.errors)
        super().__init__(f"{count} error{'s' if count != 1 else ''} in policies")

    def diagnostics(self) -> str:
        return "\n".join(str(d) for d in self.errors)


@dataclass(frozen=True)
class SchemaError:
    """One JSON Schema violation in an input document."""

    path: str
    """JSON path of the offending value, e.g. ``$.fairness[0].value``."""
    message: str
    """What the schema expected there."""

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class CardValidationError(PolicyEngineError):
    """A model card (or other input document) does not match its JSON Schema."""

    code: ClassVar[str] = "card_invalid"

    def __init__(self, source: str, errors: Sequence[SchemaError]) -> None:
        self.source = source
        self.errors = list(errors)
        super().__init__(f"{source}: does not match the model card schema")

    def diagnostics(self) -> str:
        lines = [f"{self.source}: {e.path}: {e.message}" for e in self.errors]
        return "\n".join(lines) or str(self)


class InputError(PolicyEngineError):
    """An input file (card, history, params, test file) that cannot be read or parsed."""

    code: ClassVar[str] = "bad_input"


class ConfigError(PolicyEngineError):
    """Bad command-line options or configuration (e.g. an unknown param override)."""

    code: ClassVar[str] = "config_invalid"


class EvaluationError(PolicyEngineError):
    """Evaluation could not run at all (not a rule error: those are results)."""

    code: ClassVar[str] = "evaluation_failed"


class LogUnavailableError(PolicyEngineError):
    """The audit log cannot be opened or written."""

    code: ClassVar[str] = "log_unavailable"


class KeyUnavailableError(PolicyEngineError):
    """A signing or verification key cannot be loaded."""

    code: ClassVar[str] = "key_unavailable"


class RetentionRefusedError(PolicyEngineError):
    """A redaction or hold release the retention rules refuse (floor, legal hold, none held).

    Nothing was written; the message says which rule refused and how to proceed.
    """

    code: ClassVar[str] = "retention_refused"


class RecordedIncompleteError(PolicyEngineError):
    """An entry is durably in the log, but a step after the append failed.

    The caller must not take this for "nothing written" and record the entry
    again: the message says at which seq it is, what failed and how to finish.
    """

    code: ClassVar[str] = "recorded_incomplete"

    def __init__(self, seq: int, failed: str, fix: str, cause: str = "") -> None:
        self.seq = seq
        self.failed = failed
        self.fix = fix
        detail = f" ({cause})" if cause else ""
        super().__init__(f"entry recorded at seq {seq}; {failed}{detail}; {fix}")

    def summary(self) -> str:
        """The message without the underlying cause (which may name server paths)."""
        return f"entry recorded at seq {self.seq}; {self.failed}; {self.fix}"
