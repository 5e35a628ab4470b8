"""Trust a stranger can check: key rotation, a required anchor, approval revocation."""

from __future__ import annotations

import json
import shutil

from tests.integration.gatecli import approve, cli, gate


def _configure(workdir, monkeypatch):
    """A log signing key in keys/log.key (with keys/log.pub), configured by the environment."""
    assert cli("keys", "generate", "log.example/audit", "--out", "keys").code == 0
    shutil.move(workdir / "keys" / "log.example_audit.key", workdir / "keys" / "log.key")
    shutil.move(workdir / "keys" / "log.example_audit.pub", workdir / "keys" / "first.pub")
    monkeypatch.setenv("POLICYENGINE_SIGNING_KEY", str(workdir / "keys" / "log.key"))


def test_rotated_twice_verifies_with_the_first_key(workdir, monkeypatch):
    """Two rotations with a gate between: the first key alone verifies the log and its bundle."""
    _configure(workdir, monkeypatch)
    assert gate().code == 1
    first = cli("keys", "rotate")
    assert first.code == 0, first.err
    assert "PRIVATE" not in first.out + first.err and "rotated the log's key" in first.err
    assert gate().code == 1
    second = cli("keys", "rotate")
    assert second.code == 0, second.err
    assert gate().code == 1
    kept = sorted(p.name for p in (workdir / "keys").glob("log.key.prev-*"))
    assert len(kept) == 2
    verified = cli("audit", "verify", "--key", "keys/first.pub")
    assert verified.code == 0, verified.out + verified.err
    assert verified.out.count("key transition at size") == 2
    latest = cli("audit", "verify", "--key", second.out.strip())
    assert latest.code == 0, latest.out
    assert cli("keys", "generate", "stranger", "--out", "other").code == 0
    outside = cli("audit", "verify", "--key", "other/stranger.pub")
    assert outside.code == 1 and "unknown_key" in outside.out
    assert cli("audit", "export", "--out", "bundle").code == 0
    assert (workdir / "bundle" / "transitions.jsonl").read_text().count("\n") == 2
    offline = cli("audit", "verify", "--bundle", "bundle", "--key", "keys/first.pub")
    assert offline.code == 0, offline.out + offline.err


def test_a_stale_key_cannot_sign_after_rotation(workdir, monkeypatch):
    """After a rotation the old key is refused: the gate exits 3 and writes nothing."""
    _configure(workdir, monkeypatch)
    assert gate().code == 1
    assert cli("keys", "rotate").code == 0
    stale = next((workdir / "keys").glob("log.key.prev-*"))
    monkeypatch.setenv("POLICYENGINE_SIGNING_KEY", str(stale))
    run = gate()
    assert run.code == 3 and "not in force" in run.err


def test_bundle_needs_an_anchor_and_catches_a_resigned_rewrite(workdir, monkeypatch):
    """No anchor: exit 2; a deny rewritten to allow and re-signed by another key: exit 1."""
    _configure(workdir, monkeypatch)
    assert gate().code == 1
    assert cli("audit", "export", "--out", "bundle").code == 0
    monkeypatch.delenv("POLICYENGINE_SIGNING_KEY")  # a stranger: no key configured either
    refused = cli("audit", "verify", "--bundle", "bundle")
    assert refused.code == 2 and "--key" in refused.err
    forged = _rewrite_and_resign(workdir)
    assert cli("audit", "verify", "--bundle", "bundle", "--trust-bundle-keys").code == 0
    checked = cli("audit", "verify", "--bundle", "bundle", "--key", "keys/first.pub")
    assert checked.code == 1 and "unknown_key" in checked.out, checked.out
    assert forged


def _rewrite_and_resign(workdir):
    """Turn the decision into an allow, rebuild chain and tree, sign with a fresh key."""
    import base64
    import hashlib

    from audit.canonical import dumps
    from audit.export import export_bundle
    from audit.keys import Signer, generate_key
    from audit.log import AuditLog

    bundle = workdir / "bundle"
    # The decision follows the policy bundle it was made under: find it by type.
    env_lines = [json.loads(x) for x in (bundle / "entries.jsonl").read_text().splitlines()]
    envelopes = [json.loads(base64.b64decode(x["envelope_b64"])) for x in env_lines]
    at = [e["type"] for e in envelopes].index("decision")
    pay_line = json.loads((bundle / "payloads.jsonl").read_text().splitlines()[at])
    envelope = envelopes[at]
    payload = json.loads(base64.b64decode(pay_line["payload_b64"]))
    payload["decision"]["allow"] = True
    payload["decision"]["decision"] = "allow"
    forger = Signer.from_skey(generate_key("log.example/audit")[0])
    log = AuditLog.open(f"sqlite:///{workdir / 'forged.db'}", origin=envelope["log"],
                        signer=forger)
    log.append(envelope["type"], envelope["subject"], envelope["actor"], payload)
    shutil.rmtree(bundle)
    export_bundle(log, bundle)
    line = json.loads((bundle / "payloads.jsonl").read_text().splitlines()[0])
    return line["digest"] == "sha256:" + hashlib.sha256(dumps(payload)).hexdigest()


def test_a_revoked_approval_no_longer_counts(approvers, workdir):
    """Approvals that allow; the approver revokes one; the gate denies and says why."""
    assert approve(approvers, "bob@bank.example", "model-risk").code == 0
    assert approve(approvers, "carol@bank.example", "domain-owner").code == 0
    assert gate().code == 0
    revoked = cli("revoke-approval", "0", "--reason", "signed the wrong card",
                  "--key", str(approvers / "bob@bank.example.key"))
    assert revoked.code == 0, revoked.err
    run = gate()
    assert run.code == 1, run.out
    assert "revoked by bob@bank.example at" in run.out and "signed the wrong card" in run.out


def test_only_the_approver_or_an_admin_may_revoke(approvers, workdir):
    """carol cannot revoke bob's approval; an admin-role holder can."""
    assert approve(approvers, "bob@bank.example", "model-risk").code == 0
    assert approve(approvers, "carol@bank.example", "domain-owner").code == 0
    other = cli("revoke-approval", "0", "--reason", "not mine",
                "--key", str(approvers / "carol@bank.example.key"))
    assert other.code == 0 and "will not count" in other.err
    assert gate().code == 0
    trust = workdir / "approvers.yaml"
    trust.write_text(trust.read_text() + "admin_roles: [domain-owner]\n")
    admin = cli("revoke-approval", "0", "--reason", "admin withdraws",
                "--key", str(approvers / "carol@bank.example.key"))
    assert admin.code == 0, admin.err
    assert gate().code == 1


def test_revoke_approval_of_a_non_approval_writes_nothing(approvers, workdir):
    """A seq that is not an approval is bad input (exit 2) and nothing is appended."""
    assert gate().code == 1
    run = cli("revoke-approval", "0", "--reason", "x",
              "--key", str(approvers / "bob@bank.example.key"))
    assert run.code == 2 and "not an approval" in run.err


def _decisions():
    """The decision entries of the log, oldest first, as `audit query` lists them."""
    run = cli("audit", "query", "--type", "decision", "--format", "json")
    assert run.code == 0, run.err
    return [row["seq"] for row in json.loads(run.out)]


def _recorded_history(seq):
    """The history dict the decision at ``seq`` recorded (what its evaluation read)."""
    shown = cli("audit", "show", str(seq))
    assert shown.code == 0, shown.err
    return json.loads(shown.out)["payload"]["history"]


def _replayed(seq):
    """`audit replay SEQ --format json`: exit code and the one result."""
    run = cli("audit", "replay", str(seq), "--format", "json")
    (result,) = json.loads(run.out)["results"]
    return run.code, result


def test_replay_of_a_decision_after_a_revocation_reproduces_the_deny(approvers, workdir):
    """Approved, one approval revoked, then a deny: replay reproduces it from what it recorded."""
    assert approve(approvers, "bob@bank.example", "model-risk").code == 0
    assert approve(approvers, "carol@bank.example", "domain-owner").code == 0
    assert cli("revoke-approval", "0", "--reason", "signed the wrong card",
               "--key", str(approvers / "bob@bank.example.key")).code == 0
    assert gate().code == 1
    (deny,) = _decisions()
    code, result = _replayed(deny)
    assert code == 0 and result["status"] == "reproduced" and result["verdict"] == "deny", result
    history = _recorded_history(deny)
    assert [a["approver"] for a in history["approvals"]] == ["carol@bank.example"]
    (withdrawn,) = history["rejected_approvals"]
    assert withdrawn["seq"] == 0 and withdrawn["approver"] == "bob@bank.example"
    assert withdrawn["reason"].startswith("revoked by bob@bank.example at ")
    assert withdrawn["reason"].endswith(": signed the wrong card")


def test_a_revocation_after_a_decision_leaves_its_replay_unchanged(approvers, workdir):
    """An allow made before the revocation replays as that allow: the record is what it saw."""
    assert approve(approvers, "bob@bank.example", "model-risk").code == 0
    assert approve(approvers, "carol@bank.example", "domain-owner").code == 0
    assert gate().code == 0
    assert cli("revoke-approval", "0", "--reason", "signed the wrong card",
               "--key", str(approvers / "bob@bank.example.key")).code == 0
    assert gate().code == 1
    allow, deny = _decisions()
    code, result = _replayed(allow)
    assert code == 0 and result["status"] == "reproduced" and result["verdict"] == "allow", result
    approvers_seen = [a["approver"] for a in _recorded_history(allow)["approvals"]]
    assert approvers_seen == ["bob@bank.example", "carol@bank.example"]
    assert _recorded_history(allow)["rejected_approvals"] == []
    every = cli("audit", "replay", "--all", "--format", "json")
    assert every.code == 0, every.out
    assert [(r["seq"], r["verdict"], r["status"]) for r in json.loads(every.out)["results"]] == [
        (allow, "allow", "reproduced"), (deny, "deny", "reproduced")]
