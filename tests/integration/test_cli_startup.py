"""Start-up of the gate's commands: they import only what they use."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.integration.gatecli import environ

COMMANDS = ("check", "eval", "test", "gate", "approve", "revoke-approval", "waive",
            "revoke-waiver", "promote", "event", "audit", "whatif", "keys", "serve", "card",
            "witness", "evidence")
"""Every command ``policyengine --help`` lists."""

_UNNEEDED = ("structlog", "fastapi", "uvicorn", "jsonschema", "rich",
             "policyengine.cli.serve", "policyengine.cli.witness", "policyengine.cli.audit",
             "policyengine.cli.evidence", "policyengine.cli.whatif", "policyengine.report.lines",
             "policyengine.cards.importers", "policyengine.evidence", "audit.verify")
"""Modules a valid gate run with the text report never needs: logging, the
service, the reference JSON Schema validator (only words errors), the other
commands, the card's line index (only SARIF and GitHub reports point at lines),
the card importers and evidence parsers, and the whole-log verifier."""

_PROBE = f"""
import io, sys
from policyengine.cli import main
code = main(sys.argv[1:], out=io.StringIO(), err=io.StringIO())
heavy = sorted(m for m in {_UNNEEDED!r} if m in sys.modules)
print(code)
print(",".join(heavy))
"""


def _run(argv: list[str], cwd: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=environ(), capture_output=True, text=True,
                          timeout=120)


def test_gate_does_not_import_logging_or_service_stacks(workdir):
    """A gate run imports neither structlog, the service stack, jsonschema nor other commands."""
    proc = _run([sys.executable, "-c", _PROBE, "gate", "card.yaml", "--to", "staging"], workdir)
    code, heavy = [*proc.stdout.splitlines(), "", ""][:2]
    assert code in ("0", "1"), proc.stdout + proc.stderr
    assert heavy == "", f"imported: {heavy}"


def test_a_gate_on_an_existing_sqlite_log_does_not_import_sqlalchemy(workdir):
    """Once the log exists, a gate run reads, appends and proves on the DB-API alone; with
    no configuration or trust file it loads no validator of those files (pydantic)."""
    first = _run([sys.executable, "-c", _PROBE, "gate", "card.yaml", "--to", "staging"], workdir)
    assert first.stdout.splitlines()[0] in ("0", "1"), first.stdout + first.stderr
    probe = _PROBE.replace(repr(_UNNEEDED), repr(("sqlalchemy", "sqlmodel", "pydantic")))
    proc = _run([sys.executable, "-c", probe, "gate", "card.yaml", "--to", "staging",
                 "--receipt", "receipt.json"], workdir)
    code, heavy = [*proc.stdout.splitlines(), "", ""][:2]
    assert code in ("0", "1"), proc.stdout + proc.stderr
    assert heavy == "", f"imported: {heavy}"
    assert (workdir / "receipt.json").is_file()


def test_gate_as_a_whole_process_decides_and_writes_its_receipt(workdir):
    """`python -m policyengine gate` (the process entry point) allows the example and writes
    its receipt."""
    proc = _run([sys.executable, "-m", "policyengine", "gate", "card.yaml", "--to", "staging",
                 "--receipt", "r.json"], workdir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("ALLOW ")
    assert (workdir / "r.json").is_file()


def test_help_lists_every_command(workdir):
    """`policyengine --help` lists every command, exit 0."""
    proc = _run([sys.executable, "-m", "policyengine", "--help"], workdir)
    assert proc.returncode == 0, proc.stderr
    missing = [name for name in COMMANDS if name not in proc.stdout]
    assert missing == []


@pytest.mark.parametrize("argv", [["no-such"], ["-v", "gaet", "card.yaml"]])
def test_an_unknown_command_lists_every_command(workdir, argv):
    """An unknown command is a usage error (exit 2) naming every command there is."""
    proc = _run([sys.executable, "-m", "policyengine", *argv], workdir)
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr
    missing = [name for name in COMMANDS if f"'{name}'" not in proc.stderr]
    assert missing == []
