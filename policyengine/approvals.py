"""Signed approvals, waivers and waiver revocations, verified against the trust file.

Owns two things (the trust file itself, :class:`TrustStore` and
:func:`load_trust`, live in ``policyengine.trust`` and are re-exported here):

- the canonical statements an approver signs: an approval binds model,
  version, artifact digest, role, approver, expiry and signing time; a waiver
  binds its rule ids, model, version (or range), reason, ticket, approver and
  expiry; a revocation binds the waiver id; an approval revocation binds the
  seq of the approval entry it withdraws, the model version and a reason.
  Statements are RFC 8785 canonical JSON, so the signed bytes are
  reproducible from the logged payload;
- verification: a statement counts only when its signature verifies against a
  key the trust file lists for that approver, and (for approvals) the approver
  holds the role. Unsigned statements count only when the configuration
  explicitly allows them, and are then marked ``signed: false``.

Also owns what every way of recording a statement (CLI, service) checks
first: who the approver is, whether an unsigned statement is allowed, when it
expires, and whether it will count; and recording it (:func:`record_statement`).

Not handled here: reading the log (``history.py``) or deciding whether enough
approvals exist (the approvals policy pack).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from policyengine.errors import InputError
from policyengine.ledger import record
from policyengine.trust import Approver, TrustStore, load_trust

if TYPE_CHECKING:
    from audit.keys import Signer
    from policyengine.config import Config
    from policyengine.engine import Engine

__all__ = [
    "APPROVAL_KIND",
    "APPROVAL_REVOCATION_KIND",
    "REVOCATION_KIND",
    "WAIVER_KIND",
    "Approver",
    "TrustStore",
    "Verification",
    "approval_revocation_statement",
    "approval_statement",
    "approver_identity",
    "check_signing",
    "expiry",
    "load_trust",
    "new_waiver_id",
    "now_text",
    "record_statement",
    "revocation_statement",
    "sign_statement",
    "statement_bytes",
    "verify_statement",
    "waiver_statement",
    "will_count",
]

APPROVAL_KIND = "policyengine.approval/v1"
WAIVER_KIND = "policyengine.waiver/v1"
REVOCATION_KIND = "policyengine.waiver-revocation/v1"
APPROVAL_REVOCATION_KIND = "policyengine.approval-revocation/v1"


@dataclass(frozen=True)
class Verification:
    """Outcome of checking one statement against the trust file."""

    ok: bool
    """True when the statement counts."""
    signed: bool
    """True when a valid signature was checked."""
    key_id: str | None = None
    """Hex key id of the signature (whether or not it verified)."""
    reason: str | None = None
    """Why it does not count (None when ok)."""

    def __bool__(self) -> bool:
        return self.ok


def approval_statement(
    *,
    model: str,
    version: str,
    digest: str,
    role: str,
    approver: str,
    time: str,
    expires: str | None,
) -> dict[str, Any]:
    """The statement an approver signs: approval of exactly one artifact in one role."""
    return {
        "kind": APPROVAL_KIND,
        "model": model,
        "version": version,
        "digest": digest,
        "role": role,
        "approver": approver,
        "time": time,
        "expires": expires,
    }


def waiver_statement(
    *,
    waiver_id: str,
    rules: Sequence[str],
    model: str,
    version: str | None,
    versions: str | None,
    reason: str,
    ticket: str,
    approver: str,
    time: str,
    expires: str,
) -> dict[str, Any]:
    """The statement an approver signs to waive rules for a model (version or range)."""
    return {
        "kind": WAIVER_KIND,
        "id": waiver_id,
        "rules": list(rules),
        "model": model,
        "version": version,
        "versions": versions,
        "reason": reason,
        "ticket": ticket,
        "approver": approver,
        "time": time,
        "expires": expires,
    }


def revocation_statement(
    *, waiver_id: str, model: str, reason: str, approver: str, time: str
) -> dict[str, Any]:
    """The statement an approver signs to revoke a waiver."""
    return {
        "kind": REVOCATION_KIND,
        "waiver_id": waiver_id,
        "model": model,
        "reason": reason,
        "approver": approver,
        "time": time,
    }


def approval_revocation_statement(
    *, approval_seq: int, model: str, version: str, reason: str, approver: str, time: str
) -> dict[str, Any]:
    """The statement that withdraws the approval logged at ``approval_seq``.

    ``approver`` is who revokes: the approval's own approver, or an approver
    holding one of the trust file's ``admin_roles``.
    """
    return {
        "kind": APPROVAL_REVOCATION_KIND,
        "approval_seq": approval_seq,
        "model": model,
        "version": version,
        "reason": reason,
        "approver": approver,
        "time": time,
    }


def statement_bytes(statement: Mapping[str, Any]) -> bytes:
    """The exact bytes signed: RFC 8785 canonical JSON of the statement."""
    from audit.canonical import dumps

    return dumps(dict(statement))


def sign_statement(statement: Mapping[str, Any], signer: Signer) -> dict[str, str]:
    """Sign ``statement``; returns ``{"key_id": hex, "sig": base64}`` for the payload."""
    sig = signer.sign(statement_bytes(statement))
    return {"key_id": signer.key_id.hex(), "sig": base64.b64encode(sig).decode("ascii")}


def verify_statement(
    statement: Mapping[str, Any],
    signature: Mapping[str, Any] | None,
    trust: TrustStore,
    *,
    roles: frozenset[str] | None = None,
    allow_unsigned: bool = False,
) -> Verification:
    """Check a statement against the trust file; never raises on a bad signature.

    Args:
        statement: the statement as logged.
        signature: ``{"key_id", "sig"}`` or None when unsigned.
        trust: the approvers.
        roles: the approver must hold one of these (None: any role).
        allow_unsigned: accept unsigned statements (marked unsigned).
    """
    approver_id = str(statement.get("approver", ""))
    approver = trust.approvers.get(approver_id)
    if signature is None:
        return _unsigned(approver_id, approver, trust, roles, allow_unsigned)
    key_id = str(signature.get("key_id", ""))
    if approver is None:
        return Verification(
            False,
            False,
            key_id,
            f"approver {approver_id!r} is not in the trust file {trust.source}",
        )
    checked = _check_signature(statement, signature, trust, approver_id, key_id)
    if not checked.ok:
        return checked
    missing = _role_problem(approver, roles)
    if missing:
        return Verification(False, True, key_id, missing)
    return checked


def _unsigned(
    approver_id: str,
    approver: Approver | None,
    trust: TrustStore,
    roles: frozenset[str] | None,
    allow_unsigned: bool,
) -> Verification:
    if not allow_unsigned:
        return Verification(
            False,
            False,
            None,
            f"unsigned statement by {approver_id!r}; sign it with --key "
            "(unsigned ones count only with allow_unsigned_approvals: true)",
        )
    if approver is None and trust.approvers:
        return Verification(
            False, False, None, f"approver {approver_id!r} is not in the trust file {trust.source}"
        )
    problem = _role_problem(approver, roles) if approver else None
    if problem:
        return Verification(False, False, None, problem)
    return Verification(True, False)


def _check_signature(
    statement: Mapping[str, Any],
    signature: Mapping[str, Any],
    trust: TrustStore,
    approver_id: str,
    key_id: str,
) -> Verification:
    try:
        sig = base64.b64decode(str(signature.get("sig", "")), validate=True)
    except (binascii.Error, ValueError):
        return Verification(False, False, key_id, "signature is not valid base64")
    message = statement_bytes(statement)
    matching = [v for v in trust.verifiers(approver_id) if v.key_id.hex() == key_id]
    if not matching:
        return Verification(
            False,
            False,
            key_id,
            f"signed with key {key_id}, which is not a key of {approver_id!r} "
            f"in the trust file {trust.source}",
        )
    if any(v.verify(message, sig) for v in matching):
        return Verification(True, True, key_id)
    return Verification(
        False,
        False,
        key_id,
        f"signature by key {key_id} of {approver_id!r} does not verify "
        "(statement altered or wrong key)",
    )


def _role_problem(approver: Approver | None, roles: frozenset[str] | None) -> str | None:
    if approver is None or roles is None or roles & approver.roles:
        return None
    held = ", ".join(sorted(approver.roles)) or "none"
    wanted = " or ".join(sorted(roles))
    return f"approver {approver.id!r} does not hold role {wanted} in the trust file (holds: {held})"


def now_text(now: datetime | None = None) -> str:
    """RFC 3339 UTC with microseconds, the time format of statements and entries."""
    when = now or datetime.now(UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_statement(
    engine: Engine,
    entry_type: str,
    subject: Mapping[str, str],
    statement: Mapping[str, Any],
    *,
    approver_key: str | None = None,
    note: str | None = None,
    signature: Mapping[str, str] | None = None,
) -> tuple[int, int]:
    """Append ``statement``, signed with the approver's key file or a ready ``signature``.

    ``signature`` (``{"key_id", "sig"}``) is made by the approver on their own
    machine; ``approver_key`` signs here. With neither, the statement is unsigned.

    Returns:
        (seq of the entry, size of the signed checkpoint covering it).

    Raises:
        KeyUnavailableError: the approver's or the log's key cannot be loaded.
        LogUnavailableError: the log cannot be written (nothing written).
        RecordedIncompleteError: the entry is in the log but its receipt failed.
    """
    if approver_key:
        signature = _sign_with_file(statement, approver_key)
    payload: dict[str, Any] = {
        "statement": dict(statement),
        "signature": dict(signature) if signature else None,
    }
    if note:
        payload["note"] = note
    actor = str(statement["approver"])
    recorded = record(engine.log, engine.config, entry_type, subject, actor, payload)
    return recorded.seq, recorded.checkpoint_size


def check_signing(config: Config, signed: bool, what: str) -> None:
    """Refuse an unsigned statement unless the configuration allows them.

    Raises:
        InputError: ``what`` is unsigned and ``allow_unsigned_approvals`` is off.
    """
    if not signed and not config.allow_unsigned_approvals:
        raise InputError(
            f"unsigned {what}s are not allowed: pass --key FILE "
            "(or set allow_unsigned_approvals: true for local demos)"
        )


def approver_identity(by: str | None, key: str | None) -> str:
    """The approver: ``by`` when given, else the name of the key in file ``key``.

    Raises:
        InputError: neither is given.
    """
    if by:
        return by
    if key:
        from audit.keys import load_signer

        return str(load_signer(key).name)
    raise InputError("approver unknown: pass --by ID (and --key FILE to sign)")


def expiry(text: str, now: datetime) -> str:
    """An absolute expiry (statement time format) from a date, a date-time or a duration.

    Raises:
        InputError: ``text`` is none of those.
    """
    from policyengine.config import parse_duration

    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            return now_text(now + parse_duration(text, what="--expires"))
        except Exception as exc:
            raise InputError(
                f"--expires: expected a date, date-time or duration, got {text!r}"
            ) from exc
    return now_text(when if when.tzinfo else when.replace(tzinfo=UTC))


def will_count(
    engine: Engine,
    statement: Mapping[str, Any],
    key: str | None,
    roles: frozenset[str] | None,
) -> Verification:
    """Whether ``statement``, signed with key file ``key`` (or unsigned), will count
    at the gate: checked now, against the engine's trust store, before it is recorded."""
    signature = None
    if key:
        from audit.keys import load_signer

        signature = sign_statement(statement, load_signer(key))
    return verify_statement(
        statement,
        signature,
        engine.trust,
        roles=roles,
        allow_unsigned=engine.config.allow_unsigned_approvals,
    )


def _sign_with_file(statement: Mapping[str, Any], path: str) -> dict[str, str]:
    """Sign with the approver's private key file (signed-note or PEM)."""
    from audit.errors import AuditError
    from audit.keys import load_signer
    from policyengine.errors import KeyUnavailableError

    try:
        return sign_statement(statement, load_signer(path, env="POLICYENGINE_APPROVER_KEY"))
    except (AuditError, OSError) as exc:
        raise KeyUnavailableError(f"approver key {path}: {exc}") from exc


def new_waiver_id() -> str:
    """A fresh waiver id (``w-`` and 12 hex digits), as the CLI and the service make them."""
    import uuid

    return f"w-{uuid.uuid4().hex[:12]}"
