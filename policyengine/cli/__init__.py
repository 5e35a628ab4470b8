"""The `policyengine` command: parse, dispatch, map errors to exit codes.

Each command lives in its own module of this package and exposes
``register(subparsers)``; the parser a command registers sets ``func``,
called as ``func(args, out, err) -> int``. This module only wires them and
owns the one mapping from error codes to exit codes.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import TextIO

# Command modules, in the order `--help` lists them.
_COMMANDS: tuple[str, ...] = ()


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="policyengine",
        description="Declarative governance for the ML model lifecycle.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        module = importlib.import_module(f"policyengine.cli.{name}")
        module.register(subparsers)
    return parser


def main(
    argv: list[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run the command line and return its exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(out)
        return 2
    return int(args.func(args, out, err))
