"""Model cards: schema validation and importers from other card formats.

Public API:
- ``validate_card`` / ``card_issues`` / ``validate_event``: JSON Schema checks
  with JSON paths (``policyengine.cards.validate``).
- ``import_card(fmt, path, overrides)``: convert a Hugging Face, Model Card
  Toolkit, SageMaker or MLflow card into the canonical card
  (``policyengine.cards.importers``).
"""

from policyengine.cards._errors import (
    CardImportError,
    CardLoadError,
    CardValidationError,
)
from policyengine.cards.validate import (
    CardIssue,
    card_issues,
    event_issues,
    load_document,
    validate_card,
    validate_event,
)

__all__ = [
    "CardImportError",
    "CardIssue",
    "CardLoadError",
    "CardValidationError",
    "card_issues",
    "event_issues",
    "load_document",
    "validate_card",
    "validate_event",
]
