"""Errors raised while reading and importing model cards.

Schema violations use the engine's :class:`policyengine.errors.CardValidationError`
(with :class:`~policyengine.errors.SchemaError` items); this module adds the two
input errors specific to cards. Each is one line a user can act on (what,
where, how to fix); the CLI maps every ``code`` here to exit code 2.
"""

from __future__ import annotations

from typing import ClassVar

from policyengine.errors import CardValidationError, InputError
from policyengine.inputs import DocumentError

__all__ = ["CardImportError", "CardLoadError", "CardValidationError"]

CardLoadError = DocumentError
"""A card or event file cannot be read or parsed (code ``bad_input``): the one
error of the bounded reader, :mod:`policyengine.inputs`."""


class CardImportError(InputError):
    """A third-party card cannot be converted because its source is malformed."""

    code: ClassVar[str] = "bad_input"
