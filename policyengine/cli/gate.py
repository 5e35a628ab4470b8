"""`policyengine gate CARD --to STAGE`: decide, log, report, exit 0/1/2/3.

Exit 0 allow, 1 deny, 2 bad input or configuration, 3 log or key unavailable
(errors map through the one table, ``EXIT_CODES``). Heavy modules are
imported inside the command so ``policyengine --help`` and the gate itself
start fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

from policyengine.cli import EXIT_DENY
from policyengine.cli import EXIT_OK as EXIT_ALLOW
from policyengine.cli._common import add_config_options, engine_from_args, guarded, write_json
from policyengine.cli.eval import add_engine_option

PRELOAD = ("policyengine.cards.validate", "policyengine.config", "policyengine.engine",
           "policyengine.gate", "audit.log")
"""Modules every gate run imports; a whole process imports them with the parser
(``policyengine.cli._start_process``: start-up time)."""


def register(subparsers: Any) -> None:
    """Add the ``gate`` command."""
    from policyengine.report import FORMATS

    parser = subparsers.add_parser(
        "gate",
        help="decide a promotion against the log, record it, exit 0 allow / 1 deny",
        description="Validate the card, read this model version's history from the audit log, "
        "evaluate, append the decision, publish a signed checkpoint, write the receipt. "
        "Exit 0 allow, 1 deny, 2 bad input or configuration, 3 log or key unavailable.",
    )
    parser.add_argument("card", metavar="CARD", help="model card (YAML or JSON)")
    parser.add_argument("--to", dest="stage", required=True, metavar="STAGE", help="target stage")
    parser.add_argument("--event", default="promote", help="intent evaluated (default promote)")
    parser.add_argument("--format", choices=FORMATS, default="text", help="report format")
    parser.add_argument(
        "--output", metavar="FILE", help="write the report here (text summary still printed)"
    )
    parser.add_argument(
        "--receipt", metavar="FILE", help="write the decision's receipt (JSON) here"
    )
    parser.add_argument("--actor", help="who asks (default: CI user or local user)")
    add_engine_option(parser)
    add_config_options(parser)
    parser.set_defaults(func=guarded(_run), logs=False)


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from policyengine.cards.validate import load_document
    from policyengine.gate import gate
    from policyengine.policy.compile import engine_setting

    engine = engine_from_args(args, err)
    card = load_document(args.card)
    with engine_setting(args.engine):
        result = gate(engine, card, args.stage, args.event, card_source=args.card, actor=args.actor)
    if args.receipt:
        write_json(args.receipt, result.receipt)
    _report(args, result, out)
    return EXIT_ALLOW if result.allow else EXIT_DENY


class _CardLines(Mapping[str, int]):
    """Value path -> card line for annotations, indexed on first use: only the SARIF
    and GitHub reports point at lines (start-up time of the others). Empty when
    the card cannot be re-read (the decision is already logged: a report never
    fails the gate)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._lines: dict[str, int] | None = None

    def _index(self) -> dict[str, int]:
        if self._lines is None:
            from policyengine.cards.validate import read_text
            from policyengine.errors import PolicyEngineError
            from policyengine.report.lines import card_lines

            try:
                self._lines = card_lines(read_text(self._path))
            except PolicyEngineError:
                self._lines = {}
        return self._lines

    def __getitem__(self, key: str) -> int:
        return self._index()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._index())

    def __len__(self) -> int:
        return len(self._index())


def _report(args: argparse.Namespace, result: Any, out: TextIO) -> None:
    from pathlib import Path

    from policyengine.decision import Decision
    from policyengine.report import ReportContext, render
    from policyengine.report.github import write_step_summary

    decision = Decision.from_dict(result.decision)
    context = ReportContext(
        card_path=args.card,
        card_lines=_CardLines(args.card),
        rule_locations=result.rule_locations,
        seq=result.seq,
        checkpoint_size=result.checkpoint.size,
        receipt_path=args.receipt,
        notes=tuple(str(r) for r in result.history.rejected),
    )
    text = render(args.format, decision, context)
    if args.output:
        target = Path(args.output)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        if args.format != "text":
            out.write(render("text", decision, context))
    else:
        out.write(text)
    if args.format == "github":
        write_step_summary(decision, context)
