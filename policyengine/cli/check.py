"""`policyengine check [PATH...]`: lint policy packs, report every error at once.

Prints one line per problem, ``file:line:col: policy/rule: message`` (or a
JSON document with ``--format json``) and exits 0 when clean, 2 when any
policy is invalid. With no PATH it checks the built-in packs. Param
overrides (``--params``, ``--set``) are checked too. Also home of the
policy options that ``eval`` and ``test`` share.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO

__all__ = ["add_policy_options", "load_policy_set", "register"]


def add_policy_options(parser: argparse.ArgumentParser, *, positional: bool) -> None:
    """``PATH...`` or ``--policies``, plus ``--params FILE`` and ``--set policy.param=value``."""
    if positional:
        parser.add_argument("paths", nargs="*", metavar="PATH", type=Path,
                            help="policy files or directories (default: the built-in packs)")
    else:
        parser.add_argument("--policies", nargs="+", action="extend", metavar="DIR", type=Path,
                            dest="paths",
                            help="policy files or directories (default: built-in packs)")
    parser.add_argument("--params", metavar="FILE", type=Path,
                        help="param overrides, YAML/JSON {policy-name: {param: value}}")
    parser.add_argument("--set", action="append", default=[], metavar="POLICY.PARAM=VALUE",
                        dest="sets", help="override one param (repeatable; wins over --params)")


def load_policy_set(args: argparse.Namespace) -> Any:
    """Load, lint and compile the policies the options name.

    Raises:
        PolicyLoadError, ConfigError, InputError: as the library raises them.
    """
    import structlog

    from policyengine import resources
    from policyengine.policy import compile_policies, load_policies
    from policyengine.policy.load import load_overrides

    paths = list(getattr(args, "paths", None) or [resources.policies_dir()])
    docs = load_policies(paths)
    overrides = load_overrides(args.params, args.sets)
    cps = compile_policies(docs, overrides, engine=getattr(args, "engine", None))
    # Names of overridden params only, never their values (they may be sensitive).
    structlog.get_logger("policyengine.cli").info(
        "policy set compiled", policies=len(cps.policies), bundle_digest=cps.bundle_digest,
        overrides=sorted(f"{k}.{p}" for k, v in overrides.items() for p in v))
    return cps


def register(subparsers: Any) -> None:
    """Add the ``check`` command."""
    parser = subparsers.add_parser("check", help="lint policies (exit 0 clean, 2 errors)",
                                   description=__doc__.split("\n\n")[0])
    add_policy_options(parser, positional=True)
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Lint and report; 0 clean, 2 errors."""
    from policyengine.errors import PolicyLoadError

    try:
        cps = load_policy_set(args)
    except PolicyLoadError as exc:
        if args.format == "json":
            body = {"ok": False, "errors": [d.to_dict() for d in exc.errors]}
            out.write(json.dumps(body, indent=2) + "\n")
        else:
            out.write(exc.diagnostics() + "\n")
            err.write(f"{exc}\n")
        return 2
    rules = sum(len(p.rules) for p in cps.policies)
    if args.format == "json":
        body = {"ok": True, "errors": [], "bundle_digest": cps.bundle_digest,
                "policies": [{"name": p.name, "version": p.version, "digest": p.digest,
                              "source": p.source, "rules": len(p.rules)} for p in cps.policies]}
        out.write(json.dumps(body, indent=2) + "\n")
    else:
        out.write(f"ok: {len(cps.policies)} policies, {rules} rules, "
                  f"bundle {cps.bundle_digest}\n")
    return 0
