"""The log's write path through the CLI: a checkpoint of the empty log, and partial writes."""

from __future__ import annotations

import os

import pytest

from tests.integration.gatecli import cli


def _write_key(path):
    from audit.keys import generate_key

    skey, vkey = generate_key("pe-ledger-test")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(skey + "\n")
    return vkey


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def configured(request, workdir, monkeypatch):
    """A fresh, empty log (SQLite file or PostgreSQL database) and a signing key, configured."""
    if request.param == "sqlite":
        url = f"sqlite:///{workdir / 'empty.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    from audit.log import AuditLog

    AuditLog.open(url).close()  # created, empty
    vkey = _write_key(workdir / "signing.key")
    monkeypatch.setenv("POLICYENGINE_LOG_URL", url)
    monkeypatch.setenv("POLICYENGINE_SIGNING_KEY", str(workdir / "signing.key"))
    return url, vkey


def _entries(url):
    """The log's entry types in order and its latest checkpoint."""
    from audit.log import AuditLog

    log = AuditLog.open(url)
    try:
        return [e.envelope["type"] for e in log.query()], log.latest_checkpoint()
    finally:
        log.close()


def test_checkpoint_of_the_empty_log_does_not_block_it(configured, workdir):
    """After signing size 0, a gate decision, checkpoint, export, receipt and verify all work."""
    url, vkey = configured
    first = cli("audit", "checkpoint")
    assert first.code == 0, first.err
    assert first.out.splitlines()[1] == "0"
    gated = cli("gate", "card.yaml", "--to", "production", "--receipt", "receipt.json")
    assert gated.code == 1, gated.err  # deny (no approvals), recorded: not exit 3
    assert "consistency" not in gated.err
    types, _ = _entries(url)
    assert types == ["policy_bundle", "decision"]  # the bundle the decision was made under
    again = cli("audit", "checkpoint")
    assert again.code == 0 and again.out.splitlines()[1] == str(len(types)), again.err
    exported = cli("audit", "export", "--out", "bundle")
    assert exported.code == 0, exported.err
    receipt = cli("audit", "receipt", "verify", "receipt.json", "--key", vkey)
    assert receipt.code == 0, receipt.err
    verified = cli("audit", "verify")
    assert verified.code == 0, verified.err
    assert verified.out.startswith(f"ok: {len(types)} entries"), verified.out
    bundle = cli("audit", "verify", "--bundle", "bundle", "--key", vkey)
    assert bundle.code == 0, bundle.err


def test_a_key_that_cannot_sign_leaves_nothing_in_the_log(configured, monkeypatch):
    """When signing the checkpoint fails the decision entry is rolled back and the gate exits 3."""
    import audit.log

    url, _ = configured

    def broken(*args, **kwargs):
        raise OSError("signing device unplugged")

    monkeypatch.setattr(audit.log, "sign_note", broken)
    run = cli("gate", "card.yaml", "--to", "production")
    assert run.code == 3, run.err
    assert "signing device unplugged" in run.err
    assert _entries(url) == ([], None)  # neither the decision nor its policy bundle


def test_a_receipt_that_fails_after_the_commit_names_the_recorded_seq(configured, monkeypatch):
    """When the receipt cannot be read back the gate exits 3 saying at which seq the entry is."""
    from audit.errors import StorageError
    from audit.log import AuditLog

    url, _ = configured

    def gone(self, seq, size=None):
        raise StorageError(f"audit log at {url}: server closed the connection")

    monkeypatch.setattr(AuditLog, "inclusion_proof", gone)
    run = cli("gate", "card.yaml", "--to", "production")
    assert run.code == 3, run.err
    types, checkpoint = _entries(url)
    assert types == ["policy_bundle", "decision"]
    assert f"entry recorded at seq {types.index('decision')}" in run.err
    assert "receipt" in run.err and "do not record it again" in run.err
    assert checkpoint is not None and checkpoint.size == len(types)
