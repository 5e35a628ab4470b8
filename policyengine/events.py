"""``Context.event``: the intent a decision is made on, built from the card.

Owns the one shape of the event policies read as ``event`` (type, stage,
model, version, digest, actor), so ``eval`` (pure, nothing logged) and
``gate`` (logged) put the same event in front of the same policies. The
lifecycle events written to the log (schemas/lifecycle-event.schema.json)
are ``promote.py``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["event_for"]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def event_for(card: Mapping[str, Any], event: str, stage: str, actor: str) -> dict[str, Any]:
    """Context.event for ``event`` of the card's model version to ``stage``.

    Identity fields are strings (the card schema requires them so); a field
    the card lacks is None.
    """
    found = card.get("model")
    model: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    return {
        "type": event,
        "stage": stage,
        "model": _text(model.get("name")),
        "version": _text(model.get("version")),
        "digest": _text(model.get("artifact_digest")),
        "actor": actor,
    }
