"""`policyengine audit ...`: the audit log's own command line, with the configured log.

Forwards the arguments to ``audit.cli.main``. For subcommands that read a log,
the configured log URL (flag, ``POLICYENGINE_LOG_URL``, policyengine.yaml or
the default ``.policyengine/audit.db``) is passed as ``--log`` unless the
arguments name a log or a bundle already.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

_READS_LOG = ("verify", "show", "checkpoint", "proof", "export", "query")


def register(subparsers: Any) -> None:
    """Add the ``audit`` command (everything after it goes to audit.cli)."""
    parser = subparsers.add_parser(
        "audit", help="verify, inspect, prove and export the audit log", add_help=False,
        description="The audit log's command line (see `policyengine audit --help`).",
    )
    parser.add_argument("audit_args", nargs=argparse.REMAINDER)
    parser.set_defaults(func=_run)


def forwarded_args(argv: list[str], log_url: str | None) -> list[str]:
    """Add ``--log URL`` for subcommands that read a log when none is named."""
    if not argv or argv[0] not in _READS_LOG or not log_url:
        return argv
    if any(a in ("--log", "--bundle") or a.startswith(("--log=", "--bundle=")) for a in argv):
        return argv
    return [*argv, "--log", log_url]


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from audit.cli import main as audit_main

    argv = list(args.audit_args)
    log_url = None
    if argv and argv[0] in _READS_LOG:
        from policyengine.config import load_config
        from policyengine.errors import PolicyEngineError

        try:
            log_url = load_config().log_url
        except PolicyEngineError as exc:
            err.write(f"policyengine audit: {exc.diagnostics()}\n")
            return 2
    return int(audit_main(forwarded_args(argv, log_url), stdout=out, stderr=err))
