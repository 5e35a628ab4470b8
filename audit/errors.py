"""The one error hierarchy of the audit package.

Owns every exception `audit` raises deliberately. Each class carries a stable
snake_case ``code`` so the command line and the HTTP service map errors to exit
codes and statuses in one place each. Messages are lowercase fragments that say
what was expected and what was found ("expected X, got Y"), never key material
or whole objects.

This module knows nothing of policies or models, and nothing of how errors are
shown to people.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AuditError",
    "CanonicalizationError",
    "InputError",
    "IntegrityError",
    "InvalidProofError",
    "InvalidSignatureError",
    "KeyLoadError",
    "LogUnavailableError",
    "RetentionError",
    "StorageError",
]


class AuditError(Exception):
    """Base for every error the audit package raises deliberately."""

    code: ClassVar[str] = "audit_error"

    def diagnostics(self) -> str:
        """Return the one-line, user-facing description of the error."""
        return str(self)


class StorageError(AuditError):
    """The backing store failed or holds rows it cannot read."""

    code: ClassVar[str] = "audit_storage_error"


class LogUnavailableError(StorageError):
    """The log cannot be reached or opened (missing file, server down)."""

    code: ClassVar[str] = "audit_log_unavailable"


class IntegrityError(AuditError):
    """Data does not verify: a hash, chain link, proof or signature is wrong."""

    code: ClassVar[str] = "audit_integrity_error"


class InvalidProofError(IntegrityError):
    """A Merkle inclusion or consistency proof does not verify (RFC 9162 §2.1.3, §2.1.4)."""

    code: ClassVar[str] = "audit_invalid_proof"


class InvalidSignatureError(IntegrityError):
    """A signed note is malformed or carries no valid signature from a known key."""

    code: ClassVar[str] = "audit_invalid_signature"


class KeyLoadError(AuditError):
    """A signing or verifier key cannot be loaded (bad format, unsafe permissions)."""

    code: ClassVar[str] = "audit_key_load_error"


class RetentionError(AuditError):
    """A redaction was refused by the retention floor or a legal hold."""

    code: ClassVar[str] = "audit_retention_refused"


class CanonicalizationError(AuditError):
    """A value cannot be written as RFC 8785 canonical JSON where it is required."""

    code: ClassVar[str] = "audit_canonicalization_error"


class InputError(AuditError, ValueError):
    """A caller passed an entry the log refuses (bad type, subject, actor, time)."""

    code: ClassVar[str] = "audit_invalid_input"
