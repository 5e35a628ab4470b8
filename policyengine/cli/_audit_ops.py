"""`policyengine audit query|timeline|redact|hold|release|evidence` (private).

The audit subcommands that need the engine's side (decisions, policies,
models, the configured key) rather than the bare log: ``policyengine.cli.audit``
hands them here and forwards every other subcommand to ``audit.cli``. Thin:
parse, call ``policyengine.timeline``, ``policyengine.retention`` or
``policyengine.evidence_pack``, print. Errors reach the one exit-code table
through :func:`~policyengine.cli._common.guarded`; a refused redaction, hold or
release exits 2 with the reason.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Callable
from typing import Any, TextIO

from policyengine.cli import EXIT_INPUT, EXIT_OK
from policyengine.cli._common import add_config_options, engine_from_args, guarded

__all__ = ["COMMANDS", "run"]

COMMANDS = ("query", "timeline", "redact", "hold", "release", "evidence")
"""Subcommands of ``policyengine audit`` handled here."""

KeysOf = Callable[[Any], list[str]]
_COLUMNS = ("seq", "time", "type", "model", "version", "actor", "decision", "covered", "summary")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise _Usage(f"{self.prog}: {message}")


class _Usage(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="policyengine audit", add_help=False)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    q = sub.add_parser("query", help="entries matching filters")
    for flag in ("model", "version", "digest", "actor", "policy", "rule"):
        q.add_argument(f"--{flag}")
    q.add_argument("--type", action="append", help="entry type (repeat or comma-separate)")
    q.add_argument("--decision", choices=["allow", "deny"])
    q.add_argument("--since", help="RFC 3339 time, inclusive")
    q.add_argument("--until", help="RFC 3339 time, exclusive")
    q.add_argument("--limit", type=int)
    q.add_argument("--format", choices=["table", "json", "csv"],
                   help="default: table on a terminal, else json")
    t = sub.add_parser("timeline", help="everything that happened to a model (version)")
    t.add_argument("model")
    t.add_argument("version", nargs="?")
    t.add_argument("--format", choices=["text", "json"], default="text")
    r = sub.add_parser("redact", help="redact an entry's payload (admin; leaves a tombstone)")
    r.add_argument("seq", type=int)
    r.add_argument("--reason", required=True)
    h = sub.add_parser("hold", help="place a legal hold on a model, a version or an entry")
    h.add_argument("target", metavar="MODEL|SEQ", help="a model name, or an entry seq")
    h.add_argument("--version", dest="hold_version", help="hold one version of MODEL")
    h.add_argument("--reason", required=True)
    rel = sub.add_parser("release", help="release a legal hold")
    rel.add_argument("hold_id", type=int, metavar="HOLD_ID", help="seq of the legal_hold entry")
    rel.add_argument("--reason", default=None)
    e = sub.add_parser("evidence", help="write an evidence pack for one model version")
    e.add_argument("model")
    e.add_argument("version")
    e.add_argument("--out", required=True, help="new or empty directory")
    e.add_argument("--no-pdf", action="store_true", help="leave out report.pdf")
    for cmd in (q, t, r, h, rel, e):
        add_config_options(cmd, policies=False)
    for cmd in (r, h, rel):
        cmd.add_argument("--actor", help="who acts (default: the CI identity or local user)")
    for cmd in (q, t):
        cmd.add_argument("--key", action="append", default=[],
                         help="verifier key a covering checkpoint must verify with "
                         "(default: the configured log keys)")
    return p


def run(argv: list[str], out: TextIO, err: TextIO, *, keys_of: KeysOf) -> int:
    """Run one of :data:`COMMANDS`; ``keys_of(config)`` names the log's verifier keys."""
    try:
        args = _parser().parse_args(argv)
    except _Usage as exc:
        err.write(f"{exc}\n")
        return EXIT_INPUT
    except SystemExit as exc:  # --help printed
        return int(exc.code or 0)
    args.keys_of = keys_of
    handler = _HANDLERS[args.command]
    args.command = f"audit {args.command}"  # how errors name the command
    return int(guarded(handler)(args, out, err))


def _reader(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """The configured log opened for reading (no signing key needed) and the verifier keys."""
    from audit.keys import load_verifiers
    from policyengine.cli._common import config_from_args
    from policyengine.ledger import open_log

    config = config_from_args(args)
    texts = list(args.key) or args.keys_of(config)
    return open_log(config), (load_verifiers(texts) if texts else [])


def _query(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from policyengine.timeline import Filters, parse_when, query

    types = tuple(t for item in args.type or [] for t in item.split(",") if t) or None
    filters = Filters(model=args.model, version=args.version, digest=args.digest, types=types,
                      decision=args.decision, actor=args.actor, policy=args.policy,
                      rule=args.rule, since=parse_when(args.since, "--since"),
                      until=parse_when(args.until, "--until"), limit=args.limit)
    log, verifiers = _reader(args)
    rows = [r.to_dict() for r in query(log, filters, verifiers)]
    fmt = args.format or ("table" if out.isatty() else "json")
    if fmt == "json":
        out.write(json.dumps(rows, indent=2, sort_keys=True) + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    else:
        _table(out, rows)
    return EXIT_OK


def _table(out: TextIO, rows: list[dict[str, Any]]) -> None:
    cells = [[_cell(r.get(c)) for c in _COLUMNS] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(_COLUMNS)]
    widths[-1] = len(_COLUMNS[-1])  # the summary runs on, unpadded
    out.write("  ".join(c.upper().ljust(w) for c, w in zip(_COLUMNS, widths, strict=True)).rstrip()
              + "\n")
    for row in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")
    out.write(f"({len(rows)} entries)\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _timeline(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from policyengine.timeline import timeline

    log, verifiers = _reader(args)
    found = timeline(log, args.model, args.version, verifiers)
    if args.format == "json":
        out.write(json.dumps(found.to_dict(), indent=2, sort_keys=True) + "\n")
        return EXIT_OK
    title = f"{found.model} {found.version}" if found.version else found.model
    cp = found.checkpoint
    out.write(f"timeline of {title}: {len(found.rows)} entries; "
              + (f"verified checkpoint covers seq 0..{cp.size - 1}\n" if cp else
                 "no checkpoint verified (pass --key to check one)\n"))
    for row in found.rows:
        mark = {True: "✓", False: "·", None: " "}[row.covered]
        version = f" {row.version}" if row.version and not found.version else ""
        out.write(f"{mark} {row.seq:>6}  {row.time}  {row.type:<18}{version}  {row.summary}"
                  f"  [{row.actor}]\n")
        for failed in row.details.get("failed") or []:
            out.write(f"{'':>10}{failed['rule']}: {failed['outcome']}: {failed['message']}\n")
    return EXIT_OK


def _print_result(out: TextIO, verb: str, result: Any) -> int:
    subject = " ".join(v for v in (result.subject.get("name"), result.subject.get("version")) if v)
    out.write(f"{verb} {subject}: {result.type} entry at seq {result.seq} "
              f"(checkpoint {result.checkpoint_size})\n")
    return EXIT_OK


def _redact(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from policyengine.retention import redact

    engine = engine_from_args(args, err)
    result = redact(engine, args.seq, reason=args.reason, actor=args.actor)
    return _print_result(out, f"redacted entry {args.seq} of", result)


def _hold(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from policyengine.retention import hold

    engine = engine_from_args(args, err)
    by_seq = args.target.isdigit()
    result = hold(engine, reason=args.reason, actor=args.actor,
                  seq=int(args.target) if by_seq else None,
                  model=None if by_seq else args.target, version=args.hold_version)
    out.write(f"hold id {result.seq}\n")
    return _print_result(out, "held", result)


def _release(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from policyengine.retention import release

    engine = engine_from_args(args, err)
    reason = args.reason or f"release of hold {args.hold_id}"
    result = release(engine, args.hold_id, reason=reason, actor=args.actor)
    out.write(f"released holds {', '.join(map(str, result.holds))}\n")
    return _print_result(out, "released", result)


def _evidence(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from policyengine.evidence_pack import write_pack

    engine = engine_from_args(args, err)
    pack = write_pack(engine, args.model, args.version, args.out, pdf=not args.no_pdf)
    for path in pack.files:
        out.write(f"{path}\n")
    out.write(f"evidence pack of {args.model} {args.version}: {len(pack.seqs)} entries; "
              f"verify with: policyengine audit verify --bundle {pack.bundle} "
              f"--key {pack.public_key}\n")
    return EXIT_OK


_HANDLERS = {"query": _query, "timeline": _timeline, "redact": _redact, "hold": _hold,
             "release": _release, "evidence": _evidence}
