"""`policyengine audit ...`: the audit log's own command line, with the configured log.

Forwards the arguments to ``audit.cli.main``. What the arguments leave out is
filled in from the gate's configuration (flags of ``audit.cli`` still win):

- ``--log``: the configured log (``POLICYENGINE_LOG_URL``, policyengine.yaml,
  or the default ``.policyengine/audit.db``) for subcommands that read a log;
- ``--key`` for ``verify``: the configured log keys and the public key of the
  configured signing key, or of the local development key;
- ``--signing-key`` for ``checkpoint`` and ``export``: the local development
  key, when no key is configured and not under CI;
- for ``checkpoint`` and ``export``, the configured ``witnessing:``: a
  checkpoint they sign is cosigned and timestamped like one a ``gate`` signs
  (fewer witnesses than ``min_witnesses``: exit 3).

``audit replay`` is policyengine's own (it re-evaluates policies, which
``audit`` knows nothing of): see ``cli/audit_replay.py``.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

_READS_LOG = ("verify", "show", "checkpoint", "proof", "export")
# Subcommands that need policyengine (decisions, models, the engine's key):
# handled by policyengine.cli._audit_ops, never forwarded (audit/ stays alone).
_ENGINE_SIDE = ("query", "timeline", "redact", "hold", "release", "evidence")
_SIGNS = ("checkpoint", "export")


def register(subparsers: Any) -> None:
    """Add the ``audit`` command (everything after it goes to audit.cli)."""
    parser = subparsers.add_parser(
        "audit",
        help="verify, query, inspect, prove and export the audit log; timelines, "
        "redaction, legal holds, evidence packs",
        add_help=False,
        description="The audit log's command line (see `policyengine audit --help`).",
    )
    parser.add_argument("audit_args", nargs=argparse.REMAINDER)
    # argparse leaves a leading option (`audit --help`) out of REMAINDER; main()
    # hands such arguments over as `extra_args` for commands that forward.
    parser.set_defaults(func=_run, forwards_extra_args=True, logs=False)


def _has(argv: list[str], *flags: str) -> bool:
    return any(a in flags or a.startswith(tuple(f"{f}=" for f in flags)) for a in argv)


def _verifier_keys(config: Any) -> list[str]:
    """vkeys a verifier of this log should trust, without creating any key."""
    keys = [str(k) for k in config.log_keys]
    try:
        if config.signing_key or config.env.get("POLICYENGINE_SIGNING_KEY"):
            keys.append(config.signer().vkey)
    except Exception:  # an unusable key: audit.cli reports the missing --key itself
        pass
    dev_pub = config.state_dir / "dev-signing.pub"
    if not keys and dev_pub.is_file():
        keys.append(dev_pub.read_text(encoding="utf-8").strip())
    return keys


def forwarded_args(argv: list[str], config: Any) -> list[str]:
    """``argv`` with --log, --key and --signing-key added from ``config`` where missing."""
    if not argv or argv[0] not in _READS_LOG:
        return argv
    out = list(argv)
    if not _has(argv, "--log", "--bundle"):
        out += ["--log", config.log_url]
    if argv[0] == "verify" and not _has(argv, "--key"):
        for key in _verifier_keys(config):
            out += ["--key", key]
    dev_key = config.state_dir / "dev-signing.key"
    configured = config.signing_key or config.env.get("POLICYENGINE_SIGNING_KEY")
    if argv[0] in _SIGNS and not _has(argv, "--signing-key") and not config.ci:
        if configured:
            out += ["--signing-key", str(configured)] if config.signing_key else []
        elif dev_key.is_file():
            out += ["--signing-key", str(dev_key)]
    return out


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from audit.cli import main as audit_main

    argv = list(getattr(args, "extra_args", ())) + list(args.audit_args)
    if argv and argv[0] == "replay":
        from policyengine.cli.audit_replay import run

        return run(argv[1:], out, err)
    if argv and argv[0] in _ENGINE_SIDE:
        return _run_engine_side(argv, out, err)
    publishers: list[Any] = []
    if argv and argv[0] in _READS_LOG:
        from policyengine.config import load_config
        from policyengine.errors import PolicyEngineError
        from policyengine.ledger import checkpoint_publishers

        try:
            config = load_config()
            argv = forwarded_args(argv, config)
            if argv[0] in _SIGNS:  # a checkpoint signed here is witnessed like any other
                publishers = checkpoint_publishers(config)
        except PolicyEngineError as exc:
            err.write(f"policyengine audit: {exc.diagnostics()}\n")
            return 2
    code = int(audit_main(argv, stdout=out, stderr=err, publishers=publishers))
    if not argv or argv[0] in ("-h", "--help"):
        out.write(f"\nwith the engine's configuration also: {', '.join(_ENGINE_SIDE)} "
                  "(policyengine audit query --help, ...)\n")
    return code


def _run_engine_side(argv: list[str], out: TextIO, err: TextIO) -> int:
    """query, timeline, redact, hold, release, evidence: see ``_audit_ops``."""
    from policyengine.cli import _audit_ops

    return _audit_ops.run(argv, out, err, keys_of=_verifier_keys)
