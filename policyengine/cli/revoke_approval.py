"""`policyengine revoke-approval SEQ`: withdraw a recorded approval for good.

Appends a signed ``approval_revoked`` entry naming the approval's seq, the
model version (read from the approval entry itself) and a reason. It counts
when signed by the approval's own approver, or by an approver holding one of
the trust file's ``admin_roles``; from then on the approval never counts
(gate, service, history) and decisions list it in ``rejected_approvals`` as
"revoked by X at T: reason". ``revoke-waiver`` is the same for waivers.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from policyengine.cli._common import add_config_options, engine_from_args, guarded
from policyengine.cli.approve import warn_if_not_counted


def register(subparsers: Any) -> None:
    """Add the ``revoke-approval`` command."""
    parser = subparsers.add_parser(
        "revoke-approval",
        help="record a signed revocation of an approval",
        description="Append a revocation signed by the approval's approver or an admin. "
        "Exit 0 recorded, 2 bad input, 3 log or key unavailable.",
    )
    parser.add_argument("approval_seq", metavar="SEQ", type=int, help="seq of the approval entry")
    parser.add_argument("--reason", required=True)
    parser.add_argument("--by", metavar="ID", help="who revokes (default: the key's name)")
    parser.add_argument("--key", metavar="FILE", help="private key of who revokes")
    add_config_options(parser, policies=False)
    parser.set_defaults(func=guarded(_run), logs=False)


def _approval(log: Any, seq: int) -> Any:
    """The approval entry at ``seq``; anything else is bad input (nothing is written)."""
    from audit.errors import InputError as AuditInputError
    from policyengine.errors import InputError

    try:
        entry = log.get(seq)
    except AuditInputError as exc:
        raise InputError(f"SEQ: {exc}") from exc
    if entry.envelope.get("type") != "approval":
        raise InputError(
            f"SEQ: entry {seq} is a {entry.envelope.get('type')!r} entry, not an approval; "
            "find the approval's seq with `policyengine audit show` or the decision's "
            "history"
        )
    return entry


def _warn_if_not_allowed(engine: Any, by: str, approval: Any, err: TextIO) -> None:
    """Say now when ``by`` is neither the approval's approver nor an admin."""
    payload = approval.payload if isinstance(approval.payload, dict) else {}
    owner = (payload.get("statement") or {}).get("approver")
    if by != owner and not engine.trust.is_admin(by):
        err.write(f"warning: this will not count at the gate: only {owner!r} or a holder of "
                  "an admin role (admin_roles in the trust file) may revoke this approval\n")


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from datetime import UTC, datetime

    from policyengine.approvals import (
        approval_revocation_statement,
        approver_identity,
        check_signing,
        now_text,
        record_statement,
    )

    if not args.reason.strip():
        from policyengine.errors import InputError

        raise InputError("--reason: expected why the approval is withdrawn, got nothing")
    engine = engine_from_args(args, err)
    check_signing(engine.config, bool(args.key), "revocation")
    by = approver_identity(args.by, args.key)
    approval = _approval(engine.log, args.approval_seq)
    subject = dict(approval.envelope["subject"])
    statement = approval_revocation_statement(
        approval_seq=args.approval_seq,
        model=subject["name"],
        version=subject.get("version", ""),
        reason=args.reason,
        approver=by,
        time=now_text(datetime.now(UTC)),
    )
    warn_if_not_counted(engine, statement, args.key, None, err)
    _warn_if_not_allowed(engine, by, approval, err)
    seq, size = record_statement(
        engine, "approval_revoked", subject, statement, approver_key=args.key
    )
    out.write(
        f"recorded revocation of approval {args.approval_seq} ({subject['name']} "
        f"{subject.get('version', '')}) by {by} at seq {seq} (checkpoint size {size})\n"
    )
    return 0
