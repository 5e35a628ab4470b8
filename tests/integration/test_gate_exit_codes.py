"""`policyengine gate` exit codes: 2 bad input or configuration, 3 log or key unavailable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.integration.gatecli import cli, environ, gate, log_size


def test_invalid_card_exits_2(workdir):
    """A card that does not match the schema exits 2 with the JSON path."""
    (workdir / "bad.yaml").write_text("schema_version: '1.0'\nrisk_tier: high\n")
    run = cli("gate", "bad.yaml", "--to", "production")
    assert run.code == 2 and "$.model" in run.err


def test_missing_card_exits_2(workdir):
    """A card file that does not exist exits 2."""
    assert cli("gate", "nope.yaml", "--to", "production").code == 2


def test_bad_config_exits_2(workdir):
    """A malformed policyengine.yaml exits 2 naming the key."""
    (workdir / "policyengine.yaml").write_text("lgo: x\n")
    run = gate()
    assert run.code == 2 and "unknown key" in run.err


def test_bad_policies_exit_2(workdir):
    """A policy path with no policies exits 2."""
    (workdir / "empty").mkdir()
    assert gate("--policies", "empty").code == 2


def test_bad_trust_file_exits_2(workdir):
    """A malformed trust file exits 2 and writes nothing."""
    (workdir / "approvers.yaml").write_text("approvers: 3\n")
    run = gate()
    assert run.code == 2 and "approvers" in run.err
    assert not (workdir / ".policyengine" / "audit.db").exists()


@pytest.mark.parametrize("url", ["nosuchdb://host/x", "postgresql+psycopg://u@127.0.0.1:1/none"])
def test_bad_log_url_exits_3(workdir, url):
    """A log URL that cannot be opened exits 3."""
    run = gate("--log", url)
    assert run.code == 3, run.err
    assert "unavailable" in run.err


def test_log_in_missing_directory_exits_3(workdir):
    """A SQLite log in a directory that does not exist exits 3 (no silent new log elsewhere)."""
    assert gate("--log", "no/such/dir/audit.db").code == 3


def test_log_not_a_database_exits_3(workdir):
    """A log file that is not a database (unreadable as a log) exits 3."""
    (workdir / "garbage.db").write_bytes(b"this is not sqlite" * 100)
    run = gate("--log", "garbage.db")
    assert run.code == 3, run.err


def test_log_path_is_directory_exits_3(workdir):
    """A log path that is a directory exits 3."""
    (workdir / "adir").mkdir()
    assert gate("--log", "adir").code == 3


def test_unreadable_signing_key_exits_3(workdir):
    """A configured signing key that cannot be loaded exits 3 before anything is written."""
    run = gate("--signing-key", "missing.key")
    assert run.code == 3 and "signing key" in run.err
    assert not (workdir / ".policyengine" / "audit.db").exists()


def _process(args, cwd, **env):
    return subprocess.run(
        [sys.executable, "-m", "policyengine", *args],
        cwd=cwd,
        env=environ(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ci_without_key_exits_3_in_a_real_process(workdir):
    """Under CI=true with no key configured the real process exits 3 saying how to fix it."""
    proc = _process(["gate", "card.yaml", "--to", "production"], workdir, CI="true")
    assert proc.returncode == 3, proc.stderr
    assert "POLICYENGINE_SIGNING_KEY" in proc.stderr
    assert not (workdir / ".policyengine" / "dev-signing.key").exists()


def test_ci_with_key_works_in_a_real_process(workdir):
    """Under CI=true with POLICYENGINE_SIGNING_KEY the real process decides (deny here: exit 1)."""
    assert cli("keys", "generate", "ci-log", "--out", "k").code == 0
    proc = _process(
        ["gate", "card.yaml", "--to", "production"],
        workdir,
        CI="true",
        POLICYENGINE_SIGNING_KEY=str(workdir / "k" / "ci-log.key"),
    )
    assert proc.returncode == 1, proc.stderr
    assert "DEVELOPMENT" not in proc.stderr


def test_unreachable_log_exits_3_in_a_real_process(workdir):
    """The real process exits 3, not 0, when the log server is unreachable."""
    proc = _process(
        [
            "gate",
            "card.yaml",
            "--to",
            "production",
            "--log",
            "postgresql+psycopg://u@127.0.0.1:1/none",
        ],
        workdir,
    )
    assert proc.returncode == 3, proc.stderr


def test_usage_error_exits_2(workdir):
    """A missing required option exits 2."""
    assert cli("gate", "card.yaml").code == 2


def test_unloggable_card_exits_2_and_writes_nothing(workdir):
    """A card value the log cannot hash (integer beyond 2**53-1) is bad input: exit 2, no entry."""
    assert gate().code == 1
    before = log_size(workdir)
    text = (workdir / "card.yaml").read_text(encoding="utf-8")
    (workdir / "big.yaml").write_text(text + "x_big: {n: 123456789012345678901234567890}\n")
    run = cli("gate", "big.yaml", "--to", "production")
    assert run.code == 2 and "2**53-1" in run.err, run.err
    assert log_size(workdir) == before


def _without_file_permission_bypass() -> list[str]:
    """A command prefix under which file permissions apply (root bypasses them)."""
    import os
    import shutil

    if os.geteuid() != 0:
        return []
    if shutil.which("capsh") is None:
        pytest.skip("running as root without capsh: file permissions cannot be enforced")
    return ["capsh", "--drop=cap_dac_override,cap_dac_read_search", "--"]


@pytest.mark.parametrize("mode", [0o000, 0o444])
def test_permission_denied_log_exits_3(workdir, mode):
    """A log file that cannot be read (0o000) or written (0o444) exits 3 in a real process."""
    import shlex

    assert gate().code == 1
    db = workdir / ".policyengine" / "audit.db"
    prefix = _without_file_permission_bypass()
    command = [sys.executable, "-m", "policyengine", "gate", "card.yaml", "--to", "production"]
    if prefix:
        command = [*prefix, "-c", shlex.join(command)]
    db.chmod(mode)
    try:
        proc = subprocess.run(
            command, cwd=workdir, env=environ(), capture_output=True, text=True, timeout=120
        )
    finally:
        db.chmod(0o600)
    assert proc.returncode == 3, proc.stderr
    assert "unavailable" in proc.stderr


def test_unreachable_log_message_hides_the_password(workdir):
    """The exit-3 message names the log URL once, with its password masked."""
    run = gate("--log", "postgresql+psycopg://u:s3cret-pw@127.0.0.1:1/none")
    assert run.code == 3, run.err
    assert "s3cret-pw" not in run.err and "u:***@127.0.0.1:1" in run.err
    assert run.err.count("unavailable") == 1
