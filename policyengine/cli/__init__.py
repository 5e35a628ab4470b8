"""The `policyengine` command: parse, dispatch, map errors to exit codes.

Each command lives in its own module of this package and exposes
``register(subparsers)``; the parser a command registers sets ``func``,
called as ``func(args, out, err) -> int``. This module only wires them and
owns the one mapping from error codes to exit codes (:data:`EXIT_CODES`):
it catches :class:`~policyengine.errors.PolicyEngineError` (and the audit
package's ``AuditError``) once, prints its diagnostics, never a traceback.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import sys
from typing import Any, NoReturn, TextIO

from policyengine.errors import PolicyEngineError

# Command modules, in the order `--help` lists them.
_COMMANDS: tuple[str, ...] = (
    "check",
    "eval",
    "test",
    "gate",
    "approve",
    "revoke_approval",
    "waive",
    "promote",
    "event",
    "audit",
    "whatif",
    "keys",
    "serve",
    "card",
    "witness",
    "evidence",
)

EXIT_OK, EXIT_DENY, EXIT_INPUT, EXIT_UNAVAILABLE = 0, 1, 2, 3
EXIT_CODES: dict[str, int] = {
    # 0 allow/ok, 1 deny/failed check, 2 bad input/config, 3 log or key unavailable
    "policy_invalid": EXIT_INPUT,
    "card_invalid": EXIT_INPUT,
    "bad_input": EXIT_INPUT,
    "config_invalid": EXIT_INPUT,
    "evaluation_failed": EXIT_INPUT,
    "internal_error": EXIT_INPUT,
    "promotion_refused": EXIT_DENY,
    "retention_refused": EXIT_INPUT,  # redaction inside the floor or under hold
    "log_unavailable": EXIT_UNAVAILABLE,
    "recorded_incomplete": EXIT_UNAVAILABLE,  # the entry is in the log; its receipt is not
    "key_unavailable": EXIT_UNAVAILABLE,
    "mlflow_unavailable": EXIT_UNAVAILABLE,
    # audit/ errors (its own hierarchy; mapped here, at policyengine's edge)
    "audit_log_unavailable": EXIT_UNAVAILABLE,
    "audit_storage_error": EXIT_UNAVAILABLE,
    "audit_key_load_error": EXIT_UNAVAILABLE,
    "audit_integrity_error": EXIT_DENY,
    "audit_invalid_proof": EXIT_DENY,
    "audit_invalid_signature": EXIT_DENY,
    "audit_retention_refused": EXIT_DENY,
    "audit_invalid_input": EXIT_INPUT,
    "audit_canonicalization_error": EXIT_INPUT,
}
"""Error code -> exit code; a code not listed exits 2."""


def exit_code_for(code: str) -> int:
    """The exit code for an error ``code`` (2 when unknown)."""
    return EXIT_CODES.get(code, EXIT_INPUT)


class _UsageError(Exception):
    """argparse found bad arguments."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that reports usage errors to the injected stream."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: {message}")


def _only_command(argv: list[str] | None) -> str | None:
    """The command module ``argv`` names, or None (``--help``, an unknown command)."""
    first = next((a for a in argv or [] if not a.startswith("-")), None)
    return first if first in _COMMANDS and "-" not in first else None


def _build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv`` naming a command module, only that command is registered.

    Registering imports each command's module; the gate run by CI needs none
    of the others (start-up time). Anything else (``--help``, a command
    another module registers) gets every command.
    """
    parser = _Parser(
        prog="policyengine",
        description="Declarative governance for the ML model lifecycle.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more (repeat for debug); logs go to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND",
                                       parser_class=_Parser)
    only = _only_command(argv)
    for name in (only,) if only else _COMMANDS:
        module = importlib.import_module(f"policyengine.cli.{name}")
        module.register(subparsers)
    return parser


def _start_process(argv: list[str]) -> argparse.ArgumentParser:
    """:func:`_build_parser` for a whole process, with the cycle collector paused.

    Building the parser imports the command's module, and the modules it
    lists in ``PRELOAD`` (those its every run imports; for ``gate``, the
    policy stack and the log's). While they load, the collector would walk
    those long-lived objects again and again (about a tenth of a gate run's
    CPU time); they are never garbage, so ``gc.freeze()`` leaves them out of
    later collections, and the collector is back on before the command runs.
    Only for a whole process (``main()`` without ``argv``): callers that run
    many commands in one process keep their collector as it was.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        parser = _build_parser(argv)
        only = _only_command(argv)
        if only:
            module = importlib.import_module(f"policyengine.cli.{only}")
            for name in getattr(module, "PRELOAD", ()):
                importlib.import_module(name)
        return parser
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _configure_logging(verbosity: int, err: TextIO) -> None:
    """Key-value logs for people on stderr, unless something configured structlog."""
    import structlog

    if structlog.is_configured():
        return
    names = {0: "WARNING", 1: "INFO"}
    level_name = os.environ.get("POLICYENGINE_LOG_LEVEL") or names.get(verbosity, "DEBUG")
    level = logging.getLevelName(level_name.upper())
    structlog.configure(
        processors=[structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso"),
                    structlog.processors.KeyValueRenderer(
                        key_order=["timestamp", "level", "event"])],
        wrapper_class=structlog.make_filtering_bound_logger(
            level if isinstance(level, int) else logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(err),
        cache_logger_on_first_use=False,
    )


def _error_code(exc: BaseException) -> str | None:
    code = getattr(exc, "code", None)
    return code if isinstance(code, str) else None


def _report(exc: Any, err: TextIO) -> int:
    text = exc.diagnostics() if hasattr(exc, "diagnostics") else str(exc)
    err.write(text.rstrip("\n") + "\n")
    return exit_code_for(_error_code(exc) or "internal_error")


def main(
    argv: list[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run the command line and return its exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = _start_process(sys.argv[1:]) if argv is None else _build_parser(argv)
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and not getattr(args, "forwards_extra_args", False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.extra_args = extra
    except _UsageError as exc:
        err.write(f"{exc}\n")
        return EXIT_INPUT
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0)
    if not getattr(args, "func", None):
        parser.print_help(out)
        return EXIT_INPUT
    if getattr(args, "logs", True):  # commands that never log set logs=False: no structlog
        _configure_logging(getattr(args, "verbose", 0), err)
    try:
        return int(args.func(args, out, err))
    except PolicyEngineError as exc:
        return _report(exc, err)
    except _UsageError as exc:
        err.write(f"{exc}\n")
        return EXIT_INPUT
    except Exception as exc:
        if type(exc).__module__.startswith("audit") and _error_code(exc):
            return _report(exc, err)
        raise
