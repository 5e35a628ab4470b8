"""`policyengine promote`: record a promotion only if the log holds a fresh allow for it.

Exit 0 promoted, 1 refused (the message says what is missing; nothing is
written), 2 bad input or configuration, 3 log or key unavailable.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from policyengine.cli._common import add_config_options, engine_from_args, guarded, write_json


def register(subparsers: Any) -> None:
    """Add the ``promote`` command."""
    parser = subparsers.add_parser(
        "promote",
        help="record a promotion justified by an allow decision in the log",
        description="Append a `promoted` entry only if the log holds an allow decision for exactly "
        "this model, version, digest and stage, under the configured policy bundle, not followed "
        "by a deny and not older than the freshness limit. Exit 0 promoted, 1 refused.",
    )
    parser.add_argument("--model", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--digest", required=True, help="artifact digest sha256:<64 hex>")
    parser.add_argument("--to", dest="stage", required=True, metavar="STAGE")
    parser.add_argument("--max-age", metavar="DURATION", help="freshness limit (default 24h)")
    parser.add_argument("--actor", help="who promotes (default: CI user or local user)")
    parser.add_argument("--receipt", metavar="FILE", help="write the promotion's receipt here")
    add_config_options(parser)
    parser.set_defaults(func=guarded(_run), logs=False)


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from policyengine.promote import promote

    engine = engine_from_args(args, err)
    result = promote(
        engine,
        model=args.model,
        version=args.version,
        digest=args.digest,
        stage=args.stage,
        actor=engine.actor(args.actor),
    )
    if args.receipt:
        write_json(args.receipt, result.receipt)
    out.write(
        f"promoted {args.model} {args.version} to {args.stage} at seq {result.seq} "
        f"(justified by the allow decision at seq {result.decision_seq}; "
        f"checkpoint size {result.checkpoint_size})\n"
    )
    return 0
