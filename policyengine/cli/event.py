"""`policyengine event TYPE`: record a lifecycle event (registered, rolled_back, ...).

The event is validated against schemas/lifecycle-event.schema.json before it
is appended; promotions go through ``policyengine promote`` instead.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from policyengine.cli._common import add_config_options, engine_from_args, guarded


def register(subparsers: Any) -> None:
    """Add the ``event`` command."""
    from policyengine.promote import RECORDABLE_EVENTS

    parser = subparsers.add_parser(
        "event",
        help="record a lifecycle event in the audit log",
        description="Append a lifecycle event validated against the lifecycle-event schema.",
    )
    parser.add_argument(
        "type",
        choices=RECORDABLE_EVENTS,
        metavar="TYPE",
        help=f"one of {', '.join(RECORDABLE_EVENTS)}",
    )
    parser.add_argument("--model", required=True)
    parser.add_argument("--version")
    parser.add_argument("--digest", help="artifact digest sha256:<64 hex>")
    parser.add_argument("--stage")
    parser.add_argument("--data", metavar="JSON", help="details as a JSON object, or @FILE")
    parser.add_argument("--actor", help="who or what caused it (default: CI user or local user)")
    add_config_options(parser, policies=False)
    parser.set_defaults(func=guarded(_run), logs=False)


def _data(text: str | None) -> dict[str, Any]:
    from policyengine.errors import InputError
    from policyengine.inputs import parse_json, read_text

    if not text:
        return {}
    raw = read_text(text[1:], "--data file") if text.startswith("@") else text
    data = parse_json(raw, "--data")
    if not isinstance(data, dict):
        raise InputError(f"--data: expected a JSON object, got {type(data).__name__}")
    return data


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from policyengine.promote import record_event

    engine = engine_from_args(args, err)
    result = record_event(
        engine,
        args.type,
        model=args.model,
        version=args.version,
        digest=args.digest,
        stage=args.stage,
        actor=engine.actor(args.actor),
        data=_data(args.data),
    )
    out.write(
        f"recorded {args.type} for {args.model} {args.version or ''} at seq {result.seq} "
        f"(checkpoint size {result.checkpoint_size})\n".replace("  ", " ")
    )
    return 0
