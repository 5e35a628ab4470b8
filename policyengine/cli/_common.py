"""Plumbing every command that reads the configuration shares (private).

Owns the configuration options (:func:`add_config_options`), resolving them
into a :class:`~policyengine.config.Config` (:func:`config_from_args`) and the
command's :class:`~policyengine.engine.Engine` (:func:`engine_from_args`),
:func:`guarded`, which prints an error as one line and takes its exit code
from the one table (``EXIT_CODES`` in ``policyengine.cli``) by its ``code``,
and :func:`write_json` for receipts and reports. Heavy modules are imported
inside the functions so ``policyengine --help`` starts fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from policyengine.cli import EXIT_INPUT, exit_code_for

if TYPE_CHECKING:
    from policyengine.config import Config
    from policyengine.engine import Engine

__all__ = [
    "Command",
    "add_config_options",
    "config_from_args",
    "engine_from_args",
    "guarded",
    "write_json",
]

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


def config_from_args(args: argparse.Namespace) -> Config:
    """Resolve the configuration with this command's flags on top."""
    from policyengine.config import load_config

    keys = ("config", "log", "signing_key", "trust_file", "env", "allow_unsigned", "policies")
    flags = {k: getattr(args, k, None) for k in keys}
    flags["freshness"] = getattr(args, "max_age", None)
    return load_config(flags)


def engine_from_args(args: argparse.Namespace, err: TextIO) -> Engine:
    """The command's Engine over :func:`config_from_args` (the dev key is announced on ``err``)."""
    from policyengine.engine import Engine

    return Engine(config_from_args(args), err=err)


def guarded(command: Command) -> Command:
    """Run ``command``; print a one-line error and map it to an exit code."""

    def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
        from audit.errors import AuditError
        from policyengine.errors import PolicyEngineError

        try:
            return command(args, out, err)
        except (PolicyEngineError, AuditError) as exc:
            err.write(f"policyengine {args.command}: {exc.diagnostics()}\n")
            return exit_code_for(exc.code)
        except OSError as exc:
            err.write(f"policyengine {args.command}: {exc}\n")
            return EXIT_INPUT

    return run


def write_json(path: str, data: Any) -> None:
    """Write ``data`` as indented JSON (receipts, reports)."""
    import json
    from pathlib import Path

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
