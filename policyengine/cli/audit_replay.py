"""`policyengine audit replay`: would each recorded decision be the same today?

``audit replay SEQ | --model M [--version V] | --all [--format text|json]``
re-evaluates recorded decisions from the log alone (``policyengine.replay``).
Exit 0 when every decision replayed was reproduced (decisions recorded
before replay inputs existed are reported as not replayable, not as faults),
1 when any fault was found, 2 on bad input, 3 when the log is unavailable.
A progress bar (rich) is drawn on stderr only when it is a terminal and
``CI`` is not set. Lives here, not in ``audit.cli``: ``audit`` never imports
policyengine.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from policyengine.cli import EXIT_DENY, EXIT_INPUT, EXIT_OK, _Parser, _UsageError
from policyengine.cli._common import add_config_options, config_from_args, guarded

if TYPE_CHECKING:
    from audit.log import AuditLog
    from policyengine.config import Config
    from policyengine.replay import ReplayResult

__all__ = ["open_existing_log", "progress_bar", "run"]


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="policyengine audit replay",
        description="Re-evaluate recorded decisions from the log alone (policy text from the "
        "bundle entry, the recorded card, event, history and time) and compare each whole "
        "Decision. Exit 0 all reproduced, 1 any fault, 2 bad input, 3 log unavailable.",
    )
    parser.add_argument("seq", nargs="?", type=int, help="one decision's seq")
    parser.add_argument("--model", help="every decision of this model")
    parser.add_argument("--version", help="with --model: only this version")
    parser.add_argument("--all", action="store_true", help="every decision in the log")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    add_config_options(parser, policies=False)
    return parser


def _check(args: argparse.Namespace) -> None:
    """Exactly one selection, before any work (flag conflicts are usage errors)."""
    chosen = [args.seq is not None, args.model is not None, args.all]
    if sum(chosen) != 1:
        raise _UsageError("policyengine audit replay: give exactly one of SEQ, --model M "
                          "[--version V] or --all")
    if args.version is not None and args.model is None:
        raise _UsageError("policyengine audit replay: --version needs --model")
    if args.seq is not None and args.seq < 0:
        raise _UsageError(f"policyengine audit replay: SEQ must be >= 0, got {args.seq}")


def run(argv: list[str], out: TextIO, err: TextIO) -> int:
    """Parse ``argv`` (after ``replay``) and replay; returns the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        _check(args)
    except _UsageError as exc:
        err.write(f"{exc}\n")
        return EXIT_INPUT
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    args.command = "audit replay"
    return int(guarded(_replay)(args, out, err))


def open_existing_log(config: Config) -> AuditLog:
    """The configured log for reading: never created, no key needed.

    Raises:
        LogUnavailableError: it does not exist or cannot be opened (exit 3).
    """
    from audit.log import AuditLog
    from policyengine.ledger import log_errors

    with log_errors(config):
        return AuditLog.open(config.log_url, origin=None, create=False)
    raise AssertionError("unreachable")  # pragma: no cover


@contextmanager
def progress_bar(err: TextIO, label: str) -> Iterator[Callable[[int, int | None], None] | None]:
    """A rich progress bar on ``err`` when it is a terminal outside CI; else None."""
    if not (getattr(err, "isatty", lambda: False)() and not os.environ.get("CI")):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(file=err), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def advance(done: int, total: int | None) -> None:
            if done == 1 or done % 64 == 0 or done == total:
                bar.update(task, completed=done, total=total)

        yield advance


def _replay(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from policyengine.replay import replay_all, replay_decision

    log = open_existing_log(config_from_args(args))
    try:
        if args.seq is not None:
            results = [replay_decision(log, args.seq)]
        else:
            with progress_bar(err, "replaying decisions") as advance:
                model = None if args.all else args.model
                version = None if args.all else args.version
                results = list(replay_all(log, advance, model=model, version=version))
    finally:
        log.close()
    counts = _counts(results)
    if args.format == "json":
        out.write(json.dumps({"summary": counts, "results": [r.to_dict() for r in results]},
                             indent=2, sort_keys=True) + "\n")
    else:
        _text(results, counts, out)
    return EXIT_DENY if counts["fault"] else EXIT_OK


def _counts(results: list[ReplayResult]) -> dict[str, Any]:
    counts: dict[str, Any] = {"decisions": len(results), "reproduced": 0, "fault": 0,
                              "not_replayable": 0}
    for result in results:
        counts[result.status] += 1
    return counts


def _text(results: list[ReplayResult], counts: dict[str, Any], out: TextIO) -> None:
    for r in results:
        who = f"{r.subject.get('name', '?')} {r.subject.get('version', '?')}"
        if r.status == "reproduced" and len(results) > 1:
            continue
        if r.status == "reproduced":
            out.write(f"seq {r.seq}: {who} {r.verdict}: reproduced\n")
        elif r.fault:
            out.write(f"seq {r.seq}: {who} {r.verdict}: FAULT {r.fault}: {r.detail}\n")
            for d in r.differences[:10]:
                out.write(f"    {d.path}: recorded {json.dumps(d.recorded)}, "
                          f"replayed {json.dumps(d.replayed)}\n")
        else:
            out.write(f"seq {r.seq}: {who} {r.verdict}: not replayable: {r.not_replayable}\n")
    out.write(f"replayed {counts['decisions']} decision(s): {counts['reproduced']} reproduced, "
              f"{counts['fault']} fault(s), {counts['not_replayable']} not replayable\n")
