"""`policyengine approve`: append a signed approval of one artifact in one role.

The approval statement (model, version, digest, role, approver, expiry, time)
is signed with the approver's Ed25519 key (``--key``) and appended as an
``approval`` entry. It counts at the gate only if the trust file lists that
key for that approver and the approver holds the role; the command warns at
once when it will not count, but still records what was asked.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, TextIO

from policyengine.cli._common import add_config_options, engine_from_args, guarded

if TYPE_CHECKING:
    from policyengine.engine import Engine


def register(subparsers: Any) -> None:
    """Add the ``approve`` command."""
    parser = subparsers.add_parser(
        "approve",
        help="record a signed approval of a model artifact",
        description="Append an approval signed with the approver's key. Exit 0 recorded, "
        "2 bad input, 3 log or key unavailable.",
    )
    parser.add_argument("--model", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--digest", required=True, help="artifact digest sha256:<64 hex>")
    parser.add_argument("--role", required=True)
    parser.add_argument("--by", metavar="ID", help="approver id (default: the key's name)")
    parser.add_argument("--key", metavar="FILE", help="approver's private key (signed-note or PEM)")
    parser.add_argument("--expires", metavar="DURATION", help="validity, e.g. 30d (default: none)")
    parser.add_argument("--note", help="free text kept with the approval")
    add_config_options(parser, policies=False)
    parser.set_defaults(func=guarded(_run), logs=False)


def warn_if_not_counted(
    engine: Engine,
    statement: dict[str, Any],
    key: str | None,
    roles: frozenset[str] | None,
    err: TextIO,
) -> None:
    """Say now, not at the gate, when the statement will not count."""
    from policyengine.approvals import will_count

    check = will_count(engine, statement, key, roles)
    if not check:
        err.write(f"warning: this will not count at the gate: {check.reason}\n")


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from datetime import UTC, datetime

    from policyengine.approvals import (
        approval_statement,
        approver_identity,
        check_signing,
        now_text,
        record_statement,
    )
    from policyengine.config import parse_duration
    from policyengine.errors import InputError

    if not args.digest.startswith("sha256:") or len(args.digest) != 71:
        raise InputError(f"--digest: expected sha256:<64 hex>, got {args.digest!r}")
    engine = engine_from_args(args, err)
    check_signing(engine.config, bool(args.key), "approval")
    approver = approver_identity(args.by, args.key)

    now = datetime.now(UTC)
    expires = (
        now_text(now + parse_duration(args.expires, what="--expires")) if args.expires else None
    )
    statement = approval_statement(
        model=args.model,
        version=args.version,
        digest=args.digest,
        role=args.role,
        approver=approver,
        time=now_text(now),
        expires=expires,
    )
    warn_if_not_counted(engine, statement, args.key, frozenset([args.role]), err)
    subject = {"name": args.model, "version": args.version, "digest": args.digest}
    seq, size = record_statement(
        engine, "approval", subject, statement, approver_key=args.key, note=args.note
    )
    signed = "signed" if args.key else "UNSIGNED"
    out.write(
        f"recorded {signed} approval by {approver} as {args.role} for {args.model} "
        f"{args.version} at seq {seq} (checkpoint size {size})\n"
    )
    return 0
