"""`policyengine waive`, `revoke-waiver` and `event`: signed exceptions and lifecycle events."""

from __future__ import annotations

from tests.integration.gatecli import DIGEST, MODEL, VERSION, cli, gate, log_size

RULES = ("approvals/distinct-approvers", "approvals/required-roles")


def waive(keys, who="carol@bank.example", expires="30d", waiver_id="w-1"):
    """Waive the two approval rules for the example model."""
    args = [
        "waive",
        "--model",
        MODEL,
        "--version",
        VERSION,
        "--reason",
        "pilot",
        "--ticket",
        "RISK-1",
        "--by",
        who,
        "--key",
        str(keys / f"{who}.key"),
        "--expires",
        expires,
        "--id",
        waiver_id,
    ]
    for rule in RULES:
        args += ["--rule", rule]
    return cli(*args)


def test_waiver_turns_deny_into_allow_and_revocation_back(approvers, workdir):
    """A signed waiver of the failing rules allows (shown waived); revoking it denies again."""
    assert gate().code == 1
    run = waive(approvers)
    assert run.code == 0 and "recorded waiver w-1" in run.out
    allowed = gate()
    assert allowed.code == 0, allowed.out
    assert "WAIVED" in allowed.out and "w-1" in allowed.out
    revoked = cli(
        "revoke-waiver",
        "w-1",
        "--model",
        MODEL,
        "--reason",
        "done",
        "--by",
        "bob@bank.example",
        "--key",
        str(approvers / "bob@bank.example.key"),
    )
    assert revoked.code == 0
    assert gate().code == 1


def test_expired_waiver_ignored(approvers, workdir):
    """A waiver whose expiry has passed does not waive."""
    import time

    assert waive(approvers, expires="1s").code == 0
    time.sleep(1.2)
    assert gate().code == 1


def test_waiver_expiring_in_the_past_refused(approvers, workdir):
    """waive with an expiry already past exits 2 and writes nothing."""
    assert gate().code == 1
    before = log_size(workdir)
    run = waive(approvers, expires="2020-01-01")
    assert run.code == 2 and "not in the future" in run.err
    assert log_size(workdir) == before


def test_untrusted_waiver_ignored(approvers, workdir):
    """A waiver signed by a key outside the trust file does not waive; the report says why."""
    run = waive(approvers, who="mallory@evil.example")
    assert run.code == 0 and "will not count" in run.err
    gated = gate()
    assert gated.code == 1 and "not in the trust file" in gated.out


def test_event_recorded(workdir):
    """A registered event is validated and appended (exit 0)."""
    run = cli(
        "event",
        "registered",
        "--model",
        MODEL,
        "--version",
        VERSION,
        "--digest",
        DIGEST,
        "--data",
        '{"registry": "mlflow"}',
    )
    assert run.code == 0 and "recorded registered" in run.out


def test_event_invalid_exits_2(workdir):
    """An event failing the lifecycle-event schema (bad digest) or has an unknown type exits 2."""
    bad = cli("event", "incident", "--model", MODEL, "--digest", "sha256:nothex")
    assert bad.code == 2 and "digest" in bad.err
    assert cli("event", "exploded", "--model", MODEL).code == 2
    assert cli("event", "incident", "--model", MODEL, "--data", "[1]").code == 2


def test_keys_generate_refuses_overwrite(workdir):
    """keys generate does not overwrite an existing key without --force."""
    assert cli("keys", "generate", "x").code == 0
    again = cli("keys", "generate", "x")
    assert again.code == 2 and "exists" in again.err
    assert cli("keys", "generate", "x", "--force").code == 0
