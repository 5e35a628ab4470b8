"""Helpers for CLI tests of the gate: run the CLI in process, the example model, the log size."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CARD = REPO / "examples" / "cards" / "credit-risk-scorer.yaml"
MODEL, VERSION = "credit-risk-scorer", "2.3.0"
DIGEST = "sha256:3e53696f4df1faab196b580cc7f6ddaa0a657529d338d4886e9b22fbbc6ddc83"
OTHER_DIGEST = "sha256:" + "0" * 64
_ENV = (
    "CI",
    "GITHUB_STEP_SUMMARY",
    "GITHUB_ACTOR",
    "GITLAB_USER_LOGIN",
    "POLICYENGINE_LOG_URL",
    "POLICYENGINE_SIGNING_KEY",
    "POLICYENGINE_POLICIES",
    "POLICYENGINE_ENV",
    "POLICYENGINE_CONFIG",
    "POLICYENGINE_ACTOR",
)


@dataclass
class Run:
    """Exit code and captured streams of one in-process CLI run."""

    code: int
    out: str
    err: str


def cli(*argv: str) -> Run:
    """Run ``policyengine ARGV`` in process with captured streams."""
    from policyengine.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return Run(code, out.getvalue(), err.getvalue())


def approve(
    keys: Path, who: str, role: str, *, key: str | None = None, digest: str = DIGEST
) -> Run:
    """`policyengine approve` of the example model by ``who`` (signed with ``key``'s file)."""
    return cli(
        "approve",
        "--model",
        MODEL,
        "--version",
        VERSION,
        "--digest",
        digest,
        "--role",
        role,
        "--by",
        who,
        "--key",
        str(keys / f"{key or who}.key"),
    )


def gate(*extra: str) -> Run:
    """`policyengine gate card.yaml --to production`."""
    return cli("gate", "card.yaml", "--to", "production", *extra)


def log_size(workdir: Path) -> int:
    """Entries in the default log."""
    from audit.log import AuditLog

    return AuditLog.open(f"sqlite:///{workdir / '.policyengine' / 'audit.db'}").size()


def environ(**extra: str) -> dict[str, str]:
    """os.environ without CI/policyengine variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _ENV}
    env.update(extra)
    return env
