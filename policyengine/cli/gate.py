"""`policyengine gate CARD --to STAGE`: decide, log, report, exit 0/1/2/3.

Also holds the plumbing the gate's sibling commands (approve, waive, promote,
event) share: the configuration options every one of them takes, turning
them into a :class:`~policyengine.config.Config`, and :func:`guarded`, which
maps errors to the exit-code contract (0 allow, 1 deny or refused, 2 bad input
or configuration, 3 log or key unavailable). Heavy modules are imported inside
the command so ``policyengine --help`` and the gate itself start fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TextIO

from policyengine.cli import EXIT_DENY, EXIT_INPUT, EXIT_UNAVAILABLE, exit_code_for
from policyengine.cli import EXIT_OK as EXIT_ALLOW
from policyengine.cli.eval import add_engine_option

Command = Callable[[argparse.Namespace, TextIO, TextIO], int]


def add_config_options(parser: argparse.ArgumentParser, *, policies: bool = True) -> None:
    """Options that override policyengine.yaml and the environment."""
    group = parser.add_argument_group(
        "configuration (flags win over env vars and policyengine.yaml)"
    )
    group.add_argument(
        "--config", metavar="FILE", help="configuration file (default ./policyengine.yaml)"
    )
    group.add_argument(
        "--log", metavar="URL", help="audit log URL or SQLite path (env POLICYENGINE_LOG_URL)"
    )
    group.add_argument(
        "--signing-key",
        metavar="FILE",
        help="checkpoint signing key (env POLICYENGINE_SIGNING_KEY)",
    )
    group.add_argument("--trust-file", metavar="FILE", help="approvers with roles and public keys")
    group.add_argument(
        "--env", metavar="NAME", help="environment whose params apply (env POLICYENGINE_ENV)"
    )
    group.add_argument(
        "--allow-unsigned",
        action="store_true",
        default=None,
        help="let unsigned approvals and waivers count (local demos only)",
    )
    if policies:
        group.add_argument(
            "--policies",
            metavar="PATH",
            nargs="+",
            action="extend",
            help="policy files or directories (env POLICYENGINE_POLICIES)",
        )


def config_from_args(args: argparse.Namespace) -> Any:
    """Resolve the configuration with this command's flags on top."""
    from policyengine.config import load_config

    keys = ("config", "log", "signing_key", "trust_file", "env", "allow_unsigned", "policies")
    flags = {k: getattr(args, k, None) for k in keys}
    flags["freshness"] = getattr(args, "max_age", None)
    return load_config(flags)


def exit_code(exc: BaseException) -> int:
    """The exit code for ``exc``: the CLI's table, except that for these commands
    any audit error means the log cannot be used (3): they write to it."""
    from audit.errors import AuditError

    if isinstance(exc, AuditError):
        return EXIT_UNAVAILABLE
    code = getattr(exc, "code", None)
    return exit_code_for(code) if isinstance(code, str) else EXIT_INPUT


def guarded(command: Command) -> Command:
    """Run ``command``; print a one-line error and map it to an exit code."""

    def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
        from audit.errors import AuditError
        from policyengine.errors import PolicyEngineError

        try:
            return command(args, out, err)
        except (PolicyEngineError, AuditError) as exc:
            err.write(f"policyengine {args.command}: {exc.diagnostics()}\n")
            return exit_code(exc)
        except OSError as exc:
            err.write(f"policyengine {args.command}: {exc}\n")
            return EXIT_INPUT

    return run


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

    config = config_from_args(args)
    card = load_document(args.card)
    with engine_setting(args.engine):
        result = gate(
            card, args.stage, args.event, config, card_source=args.card, actor=args.actor, err=err
        )
    if args.receipt:
        write_json(args.receipt, result.receipt)
    _report(args, result, out)
    return EXIT_ALLOW if result.allow else EXIT_DENY


def write_json(path: str, data: Any) -> None:
    """Write ``data`` as indented JSON (receipts, reports)."""
    import json
    from pathlib import Path

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _card_lines(path: str) -> dict[str, int]:
    """Value path -> card line for annotations; none when the card cannot be re-read
    (the decision is already logged: a report never fails the gate)."""
    from policyengine.cards.validate import read_text
    from policyengine.errors import PolicyEngineError
    from policyengine.report.lines import card_lines

    try:
        return card_lines(read_text(path))
    except PolicyEngineError:
        return {}


def _report(args: argparse.Namespace, result: Any, out: TextIO) -> None:
    from pathlib import Path

    from policyengine.decision import Decision
    from policyengine.report import ReportContext, render
    from policyengine.report.github import write_step_summary

    decision = Decision.from_dict(result.decision)
    context = ReportContext(
        card_path=args.card,
        card_lines=_card_lines(args.card),
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
