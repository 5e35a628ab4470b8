"""Model cards: schema validation and importers from other card formats.

Public API:
- ``validate_card`` / ``card_issues`` / ``validate_event``: JSON Schema checks
  with JSON paths (``policyengine.cards.validate``).
- ``import_card(fmt, path, **overrides)`` / ``import_text``: convert a Hugging
  Face, Model Card Toolkit, SageMaker or MLflow card into the canonical card,
  returning an ``ImportResult`` (card, missing fields, warnings)
  (``policyengine.cards.importers``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from policyengine._lazy import lazy_names

_LAZY: dict[str, str] = {
    "ImportResult": "policyengine.cards._build",
    "CardImportError": "policyengine.cards._errors",
    "CardLoadError": "policyengine.cards._errors",
    "CardValidationError": "policyengine.cards._errors",
    "FORMATS": "policyengine.cards.importers",
    "import_card": "policyengine.cards.importers",
    "import_text": "policyengine.cards.importers",
    "CardIssue": "policyengine.cards.validate",
    "card_issues": "policyengine.cards.validate",
    "event_issues": "policyengine.cards.validate",
    "load_document": "policyengine.cards.validate",
    "validate_card": "policyengine.cards.validate",
    "validate_event": "policyengine.cards.validate",
}
"""Public name -> the module that defines it; imported on first use (PEP 562), so
validating a card (every gate run) does not load the importers (start-up time)."""

__all__ = [
    "FORMATS",
    "CardImportError",
    "CardIssue",
    "CardLoadError",
    "CardValidationError",
    "ImportResult",
    "card_issues",
    "event_issues",
    "import_card",
    "import_text",
    "load_document",
    "validate_card",
    "validate_event",
]

if TYPE_CHECKING:  # what type checkers and IDEs see; nothing is imported at run time
    from policyengine.cards._build import ImportResult
    from policyengine.cards._errors import (
        CardImportError,
        CardLoadError,
        CardValidationError,
    )
    from policyengine.cards.importers import FORMATS, import_card, import_text
    from policyengine.cards.validate import (
        CardIssue,
        card_issues,
        event_issues,
        load_document,
        validate_card,
        validate_event,
    )


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
