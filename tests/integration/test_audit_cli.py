"""`policyengine audit ...` forwards to the audit CLI with the configured log and keys."""

from __future__ import annotations

import json

from policyengine.cli.audit import forwarded_args
from policyengine.config import load_config
from tests.integration.gatecli import cli, gate


def test_verify_uses_configured_log_and_dev_key(workdir):
    """After a gate run, `audit verify` needs no flags: default log, development public key."""
    assert gate().code == 1
    run = cli("audit", "verify")
    assert run.code == 0, run.err
    assert run.out.startswith("ok:")


def test_show_and_proof(workdir):
    """`audit show 1` prints the decision entry (after its policy bundle at 0); a proof prints."""
    assert gate().code == 1
    shown = cli("audit", "show", "1")
    assert shown.code == 0 and json.loads(shown.out)["envelope"]["type"] == "decision"
    assert cli("audit", "proof", "inclusion", "1").code == 0


def test_receipt_verify_with_wrong_key_fails(workdir):
    """A receipt does not verify against a key that did not sign its checkpoint."""
    assert gate("--receipt", "r.json").code == 1
    assert cli("keys", "generate", "other").code == 0
    run = cli("audit", "receipt", "verify", "r.json", "--key", "other.pub")
    assert run.code != 0


def test_forwarded_args_respect_explicit_flags(workdir):
    """Explicit --log/--bundle/--key are kept; missing ones are filled in; others untouched."""
    config = load_config(env={}, cwd=workdir)
    assert forwarded_args(["verify", "--bundle", "b", "--key", "k"], config) == [
        "verify",
        "--bundle",
        "b",
        "--key",
        "k",
    ]
    assert forwarded_args(["show", "3"], config) == ["show", "3", "--log", config.log_url]
    assert forwarded_args(["receipt", "verify", "r.json"], config) == [
        "receipt",
        "verify",
        "r.json",
    ]


def test_audit_help_is_forwarded(workdir, capsys):
    """`policyengine audit --help` shows the audit command's own help, exit 0."""
    run = cli("audit", "--help")
    assert run.code == 0, run.err
    shown = run.out + capsys.readouterr().out  # argparse writes help to sys.stdout
    assert "verify" in shown and "receipt" in shown


def test_unknown_flag_on_other_commands_is_bad_input(workdir):
    """Only forwarding commands take unknown flags; elsewhere they are exit 2."""
    run = cli("check", "--no-such-flag")
    assert run.code == 2
    assert "unrecognized arguments: --no-such-flag" in run.err
