"""Model cards: schema validation and importers from other card formats.

Public API:
- ``validate_card`` / ``card_issues`` / ``validate_event``: JSON Schema checks
  with JSON paths (``policyengine.cards.validate``).
- ``import_card(fmt, path, **overrides)`` / ``import_text``: convert a Hugging
  Face, Model Card Toolkit, SageMaker or MLflow card into the canonical card,
  returning an ``ImportResult`` (card, missing fields, warnings)
  (``policyengine.cards.importers``).
"""

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
