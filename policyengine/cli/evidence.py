"""`policyengine evidence import FILE --model M --version V`: record a tool's report.

Reads an Evidently report, a fairlearn MetricFrame export, a SageMaker Clarify
bias report or a Model Monitor model-quality report, says on stderr which
format it read, and appends it to the audit log as an ``evidence`` entry for
that model version (policies see it as ``history.evidence``). Exit 0 when
recorded, 2 for a malformed or unsupported report (nothing written), 3 when
the log or key is unavailable.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from policyengine.cli._common import add_config_options, engine_from_args, guarded

# policyengine.evidence.FORMAT_NAMES, spelled out so `--help` imports no parser
# (tests/integration/test_evidence_cli.py checks the two agree).
FORMATS = ("evidently", "fairlearn", "clarify", "model-monitor")


def register(subparsers: Any) -> None:
    """Add the ``evidence`` command with its ``import`` subcommand."""
    parser = subparsers.add_parser(
        "evidence",
        help="record drift, fairness and quality reports as evidence in the audit log",
        description="Record reports other tools produce as evidence policies can judge.",
    )
    sub = parser.add_subparsers(dest="evidence_command", metavar="SUBCOMMAND", required=True)
    imp = sub.add_parser(
        "import",
        help="record an Evidently, fairlearn, Clarify or Model Monitor report",
        description="Parse a report and append it as an evidence entry for a model version.",
    )
    imp.add_argument("file", metavar="FILE", help="report file (JSON)")
    imp.add_argument("--format", dest="fmt", default="auto", choices=("auto", *FORMATS),
                     help="report format (default: detected from the content)")
    imp.add_argument("--model", help="model name the evidence is about")
    imp.add_argument("--version", help="model version the evidence is about")
    imp.add_argument("--digest", help="artifact digest sha256:<64 hex> (optional)")
    imp.add_argument("--actor", help="who records it (default: CI user or local user)")
    imp.add_argument("--receipt", metavar="FILE", help="write the entry's receipt here (JSON)")
    add_config_options(imp, policies=False)
    imp.set_defaults(func=guarded(_import), logs=False)


def _import(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from pathlib import Path

    from policyengine.errors import InputError
    from policyengine.evidence import load_evidence
    from policyengine.evidence_log import record_evidence

    if not args.model or not args.version:
        raise InputError(
            f"{args.file}: --model and --version are required: the report names no model "
            "version, and evidence counts only for the version it is recorded against"
        )
    evidence = load_evidence(args.file, args.fmt)
    err.write(f"{args.file}: read as {evidence.format} ({evidence.format_version}) "
              f"{evidence.kind} evidence\n")
    for note in evidence.notes:
        err.write(f"note: {note}\n")
    engine = engine_from_args(args, err)
    recorded = record_evidence(
        engine,
        evidence,
        model=args.model,
        version=args.version,
        digest=args.digest,
        actor=engine.actor(args.actor),
    )
    if args.receipt:
        Path(args.receipt).write_text(json.dumps(recorded.receipt, indent=2) + "\n",
                                      encoding="utf-8")
    out.write(f"recorded {evidence.kind} evidence for {args.model} {args.version} at seq "
              f"{recorded.seq} (checkpoint size {recorded.checkpoint_size})\n")
    return 0
