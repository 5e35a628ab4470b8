"""`policyengine eval CARD --event TYPE --to STAGE`: decide, print, write nothing.

Loads the card (JSON or YAML) and checks it against the model-card schema
(exit 2 with JSON paths when it does not match), builds the event, reads an
optional history file, evaluates the policy set and prints the Decision as
text for people (the ``gate`` text report with the values each finding read,
the policies that did not apply and the full digests) or ``--format json``
(schemas/decision.schema.json).
Exit 0 allow, 1 deny, 2 bad input. The library call is pure; only this
command reads the clock, and only when ``--now`` is not given.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
from pathlib import Path
from typing import Any, TextIO

from policyengine.cli.check import add_policy_options, load_policy_set

__all__ = ["add_engine_option", "load_card", "load_history", "parse_now", "register"]


def add_engine_option(parser: argparse.ArgumentParser) -> None:
    """``--engine``: which CEL runtime decides (wins over ``$POLICYENGINE_ENGINE``)."""
    from policyengine.policy.compile import ENGINES

    parser.add_argument("--engine", choices=ENGINES, default=None,
                        help="reference (cel-python), fast (native where rules qualify) or "
                        "shadow (both, compared); default $POLICYENGINE_ENGINE or reference")


def register(subparsers: Any) -> None:
    """Add the ``eval`` command."""
    parser = subparsers.add_parser("eval", help="evaluate a card against policies (pure)",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("card", type=Path, metavar="CARD", help="model card, JSON or YAML")
    parser.add_argument("--event", required=True, metavar="TYPE",
                        help="lifecycle intent: register, promote, rollback, retire")
    parser.add_argument("--to", required=True, metavar="STAGE", dest="stage",
                        help="target stage, e.g. staging, production")
    parser.add_argument("--history", type=Path, metavar="FILE",
                        help="approvals, waivers, decisions, promotions (YAML/JSON)")
    parser.add_argument("--actor", default="cli", help="who asks (recorded in the event)")
    parser.add_argument("--now", metavar="RFC3339", help="evaluation time (default: the clock)")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    add_engine_option(parser)
    add_policy_options(parser, positional=False)
    parser.set_defaults(func=run)


def parse_now(text: str | None) -> _dt.datetime:
    """``--now`` as an aware datetime; the current UTC time when None.

    Raises:
        ConfigError: not an RFC 3339 timestamp with a time zone.
    """
    from policyengine.errors import ConfigError
    from policyengine.policy.waivers import parse_time

    if text is None:
        return _dt.datetime.now(_dt.UTC)
    parsed = parse_time(text)
    if parsed is None:
        raise ConfigError(f"bad --now {text!r}: expected RFC 3339 with a zone, "
                          "e.g. 2026-11-26T15:00:00Z")
    return parsed


def _schema_errors(name: str, data: Any) -> list[Any]:
    from policyengine import resources
    from policyengine.errors import SchemaError

    if not resources.schema_path(name).is_file():
        return []
    out = []
    for error in resources.validator(name).iter_errors(data):
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                             for p in error.absolute_path)
        out.append(SchemaError(path, error.message))
    return sorted(out, key=lambda e: e.path)


def load_card(path: Path) -> dict[str, Any]:
    """Read a card (the bounded reader, as gate and card validate do) and validate it
    against schemas/model-card.schema.json.

    Raises:
        InputError: unreadable, refused by the reader, or not an object.
        CardValidationError: schema errors.
    """
    from policyengine.errors import CardValidationError, InputError
    from policyengine.inputs import load_document

    card = load_document(path, "card")
    if not isinstance(card, dict):
        raise InputError(f"{path}: expected a model card object, got {type(card).__name__}")
    try:
        from policyengine.cards import validate_card
    except ImportError:  # cards package absent: validate against the schema file if shipped
        errors = _schema_errors("model-card", card)
        if errors:
            raise CardValidationError(str(path), errors) from None
    else:
        validate_card(card, source=str(path))
    return card


def load_history(path: Path | None) -> dict[str, Any]:
    """Read a history file and validate it against schemas/history.schema.json.

    Raises:
        InputError: unreadable, or not matching the schema (with JSON paths).
    """
    from policyengine.errors import InputError
    from policyengine.inputs import load_document

    if path is None:
        return {}
    history = load_document(path, "history") or {}
    if not isinstance(history, dict):
        raise InputError(f"{path}: expected a history object, got {type(history).__name__}")
    errors = _schema_errors("history", history)
    if errors:
        raise InputError("\n".join(f"{path}: {e.path}: {e.message}" for e in errors))
    return history


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Evaluate and print; 0 allow, 1 deny (errors raise and map to 2)."""
    from policyengine.events import event_for
    from policyengine.policy import Context, evaluate
    from policyengine.report import ReportContext, render

    now = parse_now(args.now)
    card = load_card(args.card)
    history = load_history(args.history)
    cps = load_policy_set(args)
    event = event_for(card, args.event, args.stage, args.actor)
    decision = evaluate(cps, Context(card=card, event=event, history=history), now)
    if args.format == "json":
        out.write(json.dumps(decision.to_dict(), indent=2) + "\n")
    else:
        out.write(render("text", decision, ReportContext(card_path=str(args.card), explain=True)))
    return 0 if decision.allow else 1
