"""`policyengine gate`, `approve`, `promote`: the promotion story and its exit codes."""

from __future__ import annotations

import re

from tests.integration.gatecli import (
    DIGEST,
    MODEL,
    OTHER_DIGEST,
    VERSION,
    approve,
    cli,
    gate,
    log_size,
)


def approve_both(keys):
    """Valid signed approvals by bob (model-risk) and carol (domain-owner)."""
    assert approve(keys, "bob@bank.example", "model-risk").code == 0
    assert approve(keys, "carol@bank.example", "domain-owner").code == 0


def promote(stage: str = "production", digest: str = DIGEST):
    """`policyengine promote` of the example model."""
    return cli("promote", "--model", MODEL, "--version", VERSION, "--digest", digest, "--to", stage)


def test_deny_without_approvals(workdir):
    """With no approvals in the log the high-risk card is denied (exit 1) with reasons."""
    run = gate()
    assert run.code == 1, run.err
    assert run.out.startswith("DENY credit-risk-scorer 2.3.0")
    assert "approvals@1.0.0 distinct-approvers" in run.out
    assert re.search(r"decision deny, id dec_\w+, seq \d+, checkpoint size \d+", run.out)
    assert "DEVELOPMENT signing key" in run.err


def test_two_signed_approvals_allow_and_promote(approvers, workdir):
    """Two trusted approvals in the required roles turn deny into allow; promote then succeeds."""
    assert gate().code == 1
    assert approve(approvers, "bob@bank.example", "model-risk").code == 0
    assert approve(approvers, "carol@bank.example", "domain-owner").code == 0
    run = gate("--receipt", "receipt.json")
    assert run.code == 0, run.out + run.err
    assert run.out.startswith("ALLOW") and (workdir / "receipt.json").is_file()
    allow_seq = re.search(r"decision allow, id dec_\w+, seq (\d+),", run.out)
    assert allow_seq, run.out
    promoted = promote()
    assert promoted.code == 0, promoted.err
    assert f"justified by the allow decision at seq {allow_seq[1]}" in promoted.out


def test_promote_without_allow_writes_nothing(approvers, workdir):
    """promote with only a deny in the log exits 1 and appends nothing."""
    assert gate().code == 1
    before = log_size(workdir)
    run = promote()
    assert run.code == 1 and "is deny" in run.err
    assert log_size(workdir) == before


def test_promote_empty_log_exits_1(workdir):
    """promote with no decision at all exits 1 saying none exists."""
    run = promote()
    assert run.code == 1 and "no decision in the log" in run.err


def test_promote_other_stage_or_digest_refused(approvers, workdir):
    """An allow for production does not justify staging, nor another artifact digest."""
    approve_both(approvers)
    assert gate().code == 0
    before = log_size(workdir)
    staging = promote("staging")
    assert staging.code == 1 and "is for stage production" in staging.err
    other = promote(digest=OTHER_DIGEST)
    assert other.code == 1 and f"is for artifact {DIGEST}" in other.err
    assert log_size(workdir) == before


def test_allow_on_another_intent_does_not_justify_promotion(workdir):
    """An allow for `--event register` to production is no allow to promote there: exit 1."""
    registered = gate("--event", "register")
    assert registered.code == 0, registered.out + registered.err
    before = log_size(workdir)
    run = promote()
    assert run.code == 1 and "no decision in the log" in run.err
    assert log_size(workdir) == before


def test_later_deny_blocks_promotion(approvers, workdir):
    """A deny after an allow for the same artifact and stage wins: promote exits 1."""
    approve_both(approvers)
    assert gate().code == 0
    cli(
        "approve",
        "--model",
        MODEL,
        "--version",
        VERSION,
        "--digest",
        DIGEST,
        "--role",
        "model-risk",
        "--by",
        "alice@bank.example",
        "--key",
        str(approvers / "alice@bank.example.key"),
    )
    assert gate().code == 1
    assert promote().code == 1


def test_stale_allow_refused(approvers, workdir):
    """An allow older than --max-age does not justify a promotion."""
    approve_both(approvers)
    assert gate().code == 0
    run = cli(
        "promote",
        "--model",
        MODEL,
        "--version",
        VERSION,
        "--digest",
        DIGEST,
        "--to",
        "production",
        "--max-age",
        "0s",
    )
    assert run.code == 1 and "older than the freshness limit" in run.err


def test_changed_policies_need_a_new_gate(approvers, workdir):
    """An allow made under another policy bundle does not justify a promotion."""
    approve_both(approvers)
    assert gate().code == 0
    (workdir / "policyengine.yaml").write_text(
        "environments:\n  production:\n    params:\n      approvals: {max_age_days: 30}\n"
    )
    run = promote()
    assert run.code == 1 and "configured bundle" in run.err


def test_untrusted_key_does_not_count(approvers, workdir):
    """An approval for bob signed with a key not in the trust file does not count; says why."""
    approve(approvers, "bob@bank.example", "model-risk", key="mallory@evil.example")
    approve(approvers, "carol@bank.example", "domain-owner")
    run = gate()
    assert run.code == 1
    assert "not a key of 'bob@bank.example' in the trust file" in run.out
    assert "no valid approval from role model-risk" in run.out


def test_role_not_held_does_not_count(approvers, workdir):
    """dave holds domain-owner only: his model-risk approval does not count; report says why."""
    approve(approvers, "dave@bank.example", "model-risk")
    approve(approvers, "carol@bank.example", "domain-owner")
    run = gate()
    assert run.code == 1 and "does not hold role model-risk" in run.out


def test_other_digest_approval_does_not_count(approvers, workdir):
    """An approval bound to another artifact digest does not count; the deny names the binding."""
    approve(approvers, "bob@bank.example", "model-risk", digest=OTHER_DIGEST)
    approve(approvers, "carol@bank.example", "domain-owner")
    run = gate()
    assert run.code == 1
    assert "bound to a different artifact" in run.out


def test_author_self_approval_does_not_count(approvers, workdir):
    """The card's author approving their own model does not satisfy separation of duties."""
    approve(approvers, "alice@bank.example", "model-risk")
    approve(approvers, "carol@bank.example", "domain-owner")
    run = gate()
    assert run.code == 1
    assert "approver-not-author" in run.out and "self-approval" in run.out


def test_approve_warns_when_it_will_not_count(approvers, workdir):
    """approve says at once that an approval will not count (role not held)."""
    run = approve(approvers, "dave@bank.example", "model-risk")
    assert run.code == 0 and "will not count" in run.err


def test_unsigned_approval_refused(workdir):
    """approve without --key is refused unless unsigned approvals are allowed."""
    run = cli(
        "approve",
        "--model",
        MODEL,
        "--version",
        VERSION,
        "--digest",
        DIGEST,
        "--role",
        "r",
        "--by",
        "bob@bank.example",
    )
    assert run.code == 2 and "unsigned approvals are not allowed" in run.err


def test_unsigned_allowed_and_marked(workdir):
    """With --allow-unsigned, unsigned approvals count and are recorded as UNSIGNED."""
    (workdir / "approvers.yaml").write_text(
        "approvers:\n  - {id: bob, roles: [model-risk]}\n  - {id: carol, roles: [domain-owner]}\n"
    )
    for who, role in (("bob", "model-risk"), ("carol", "domain-owner")):
        run = cli(
            "approve",
            "--model",
            MODEL,
            "--version",
            VERSION,
            "--digest",
            DIGEST,
            "--role",
            role,
            "--by",
            who,
            "--allow-unsigned",
        )
        assert run.code == 0 and "UNSIGNED" in run.out
    assert gate().code == 1
    assert gate("--allow-unsigned").code == 0
