"""Errors raised while reading, validating and importing model cards.

Every error is one line a user can act on (what, where, how to fix); the CLI
maps ``code`` to exit code 2 (bad input).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

try:
    from policyengine.errors import PolicyEngineError
except ImportError:  # pragma: no cover - the engine's hierarchy is not in place yet

    class PolicyEngineError(Exception):  # type: ignore[no-redef]
        """Stand-in for policyengine.errors.PolicyEngineError."""

        code: ClassVar[str] = "internal_error"

        def diagnostics(self) -> str:
            """The message, for people."""
            return str(self)

if TYPE_CHECKING:
    from policyengine.cards.validate import CardIssue


class CardError(PolicyEngineError):
    """Base for card input problems (bad input, exit 2)."""

    code: ClassVar[str] = "invalid_card"


class CardLoadError(CardError):
    """A card or event file cannot be read or parsed."""

    code: ClassVar[str] = "card_load_error"


class CardImportError(CardError):
    """A third-party card cannot be converted (malformed source)."""

    code: ClassVar[str] = "card_import_error"


class CardValidationError(CardError):
    """A card or event does not conform to its JSON Schema."""

    code: ClassVar[str] = "invalid_card"

    def __init__(self, source: str, issues: Sequence[CardIssue]) -> None:
        self.source = source
        self.issues = list(issues)
        first = self.issues[0] if self.issues else "no detail"
        more = f" (and {len(self.issues) - 1} more)" if len(self.issues) > 1 else ""
        super().__init__(f"{source}: {first}{more}")

    def diagnostics(self) -> str:
        """Every issue, one per line, prefixed by the source."""
        return "\n".join(f"{self.source}: {issue}" for issue in self.issues)
