"""`policyengine waive` and `policyengine revoke-waiver`: signed exceptions in the log.

A waiver names rule ids, a model (and a version or a version range), the
reason, a ticket, the approver and an expiry; it is signed like an approval
and appended as a ``waiver`` entry. ``revoke-waiver`` appends a signed
``waiver_revoked`` entry; the gate then ignores the waiver everywhere.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from policyengine.cli._common import add_config_options, engine_from_args, guarded
from policyengine.cli.approve import warn_if_not_counted


def register(subparsers: Any) -> None:
    """Add the ``waive`` and ``revoke-waiver`` commands."""
    parser = subparsers.add_parser(
        "waive",
        help="record a signed waiver of rules for a model",
        description="Append a waiver signed with the approver's key. Expired or revoked waivers "
        "are ignored by the gate.",
    )
    parser.add_argument(
        "--rule",
        dest="rules",
        action="append",
        required=True,
        metavar="ID",
        help="rule id or policy/rule (repeat for several)",
    )
    parser.add_argument("--model", required=True)
    versions = parser.add_mutually_exclusive_group()
    versions.add_argument("--version", help="one model version (default: every version)")
    versions.add_argument("--versions", metavar="RANGE", help='version range, e.g. ">=1,<3"')
    parser.add_argument("--reason", required=True)
    parser.add_argument("--ticket", required=True, metavar="REF")
    parser.add_argument("--by", metavar="ID", help="approver id (default: the key's name)")
    parser.add_argument("--key", metavar="FILE", help="approver's private key")
    parser.add_argument(
        "--expires",
        required=True,
        metavar="DATE",
        help="RFC 3339 date or date-time, or a duration such as 30d",
    )
    parser.add_argument("--id", dest="waiver_id", help="waiver id (default: generated)")
    add_config_options(parser, policies=False)
    parser.set_defaults(func=guarded(_waive), logs=False)

    revoke = subparsers.add_parser("revoke-waiver", help="record a signed revocation of a waiver")
    revoke.add_argument("waiver_id", metavar="WAIVER_ID")
    revoke.add_argument("--model", required=True)
    revoke.add_argument("--reason", required=True)
    revoke.add_argument("--by", metavar="ID")
    revoke.add_argument("--key", metavar="FILE")
    add_config_options(revoke, policies=False)
    revoke.set_defaults(func=guarded(_revoke), logs=False)


def _waive(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from datetime import UTC, datetime

    from policyengine.approvals import (
        approver_identity,
        check_signing,
        expiry,
        new_waiver_id,
        now_text,
        record_statement,
        waiver_statement,
    )

    engine = engine_from_args(args, err)
    check_signing(engine.config, bool(args.key), "waiver")
    approver = approver_identity(args.by, args.key)
    now = datetime.now(UTC)
    waiver_id = args.waiver_id or new_waiver_id()
    statement = waiver_statement(
        waiver_id=waiver_id,
        rules=args.rules,
        model=args.model,
        version=args.version,
        versions=args.versions,
        reason=args.reason,
        ticket=args.ticket,
        approver=approver,
        time=now_text(now),
        expires=expiry(args.expires, now),
    )
    if statement["expires"] <= statement["time"]:  # same fixed-width UTC format: sorts as time
        from policyengine.errors import InputError

        raise InputError(
            f"--expires: {statement['expires']} is not in the future; a waiver that has "
            "already expired would never apply"
        )
    warn_if_not_counted(engine, statement, args.key, engine.trust.waiver_roles or None, err)
    subject = {"name": args.model} | ({"version": args.version} if args.version else {})
    seq, size = record_statement(engine, "waiver", subject, statement, approver_key=args.key)
    out.write(
        f"recorded waiver {waiver_id} of {', '.join(args.rules)} for {args.model} by {approver}, "
        f"expires {statement['expires']}, at seq {seq} (checkpoint size {size})\n"
    )
    return 0


def _revoke(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from datetime import UTC, datetime

    from policyengine.approvals import (
        approver_identity,
        check_signing,
        now_text,
        record_statement,
        revocation_statement,
    )

    engine = engine_from_args(args, err)
    check_signing(engine.config, bool(args.key), "revocation")
    approver = approver_identity(args.by, args.key)
    statement = revocation_statement(
        waiver_id=args.waiver_id,
        model=args.model,
        reason=args.reason,
        approver=approver,
        time=now_text(datetime.now(UTC)),
    )
    seq, size = record_statement(
        engine, "waiver_revoked", {"name": args.model}, statement, approver_key=args.key
    )
    out.write(
        f"recorded revocation of waiver {args.waiver_id} by {approver} at seq {seq} "
        f"(checkpoint size {size})\n"
    )
    return 0
