"""audit: a tamper-evident, signed, append-only log.

Imports nothing from policyengine: an auditor verifies a log with this
package and ``cryptography`` alone. Hashing, notes, keys and receipts are
imported eagerly; the storage side and whole-log verification on first use of
one of their names, so verifying an export bundle or a receipt never needs a
database driver, and appending never loads the verifier. A SQLite log is read
and appended on the DB-API alone; SQLAlchemy and SQLModel load only to create
a log's tables or on PostgreSQL.

Public API (see each module for details):

- :class:`AuditLog` (``audit.log``): append, checkpoint, proofs, query, receipts;
- :func:`open_store` (``audit.store``), :func:`export_bundle` / :func:`open_bundle`
  (``audit.export``), :func:`redact` / :func:`hold` / :func:`release`
  (``audit.retention``);
- :class:`Verifier` (``audit.verify``), :func:`verify_receipt` (``audit.receipt``);
- keys and notes: :class:`Signer`, :class:`NoteVerifier`, :func:`generate_key`,
  :func:`load_signer`, :func:`load_verifiers`, :class:`Checkpoint`;
- errors: :class:`AuditError` and its subclasses.
"""

from __future__ import annotations

import importlib
from typing import Any

from audit.errors import (
    AuditError,
    CanonicalizationError,
    IntegrityError,
    InvalidProofError,
    InvalidSignatureError,
    KeyLoadError,
    LogUnavailableError,
    RetentionError,
    StorageError,
)
from audit.keys import NoteVerifier, Signer, generate_key, load_signer, load_verifiers
from audit.note import Checkpoint, open_note, parse_checkpoint, sign_note
from audit.receipt import build_receipt, dumps_receipt, loads_receipt, verify_receipt
from audit.records import LeafHashHex, Seq, StoredCheckpoint, StoredEntry

_LAZY = {
    "AppendResult": "audit.log",
    "AuditLog": "audit.log",
    "Entry": "audit.log",
    "InputError": "audit.log",
    "NewEntry": "audit.log",
    "SignedCheckpoint": "audit.log",
    "Store": "audit.store",
    "open_store": "audit.store",
    "Bundle": "audit.export",
    "BundleIntegrityError": "audit.export",
    "export_bundle": "audit.export",
    "open_bundle": "audit.export",
    "verify_filtered_bundle": "audit.export",
    "active_holds": "audit.retention",
    "hold": "audit.retention",
    "redact": "audit.retention",
    "release": "audit.retention",
    "main": "audit.cli",
    "FaultClass": "audit.verify",
    "VerificationReport": "audit.verify",
    "Verifier": "audit.verify",
}
"""Names imported on first access: the storage side (SQLAlchemy and SQLModel
only where a table is created or the log is on PostgreSQL), exports,
retention, the command line and the verifier (a gate process appends and
never verifies a whole log)."""

__all__ = [
    "AppendResult",
    "AuditError",
    "AuditLog",
    "Bundle",
    "BundleIntegrityError",
    "CanonicalizationError",
    "Checkpoint",
    "Entry",
    "FaultClass",
    "InputError",
    "IntegrityError",
    "InvalidProofError",
    "InvalidSignatureError",
    "KeyLoadError",
    "LeafHashHex",
    "LogUnavailableError",
    "NewEntry",
    "NoteVerifier",
    "RetentionError",
    "Seq",
    "SignedCheckpoint",
    "Signer",
    "StorageError",
    "Store",
    "StoredCheckpoint",
    "StoredEntry",
    "VerificationReport",
    "Verifier",
    "active_holds",
    "build_receipt",
    "dumps_receipt",
    "export_bundle",
    "generate_key",
    "hold",
    "load_signer",
    "load_verifiers",
    "loads_receipt",
    "main",
    "open_bundle",
    "open_note",
    "open_store",
    "parse_checkpoint",
    "redact",
    "release",
    "sign_note",
    "verify_filtered_bundle",
    "verify_receipt",
]


def __getattr__(name: str) -> Any:
    """Import storage-side names on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'audit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
