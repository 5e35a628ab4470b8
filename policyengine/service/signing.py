"""The HMAC signature of deliveries the service receives and sends.

Owns one scheme, used both ways: generic registry webhooks sign what they send
us with it, and our notifications sign what we send with it, so a receiver
checks both with one function. ``sha256=`` + hex HMAC-SHA256 over
``"{delivery id}.{timestamp}." + body`` (the id and time bind each delivery
against replay; the raw body, not a re-serialisation, is what is signed).
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["generic_signature"]


def generic_signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """Return the ``X-PolicyEngine-Signature`` value for a delivery."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
