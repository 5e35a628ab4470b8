"""Tests for audit/cli.py: exit codes and output of every subcommand."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import pytest

from audit.cli import main
from audit.keys import Signer
from audit.log import AuditLog
from audit.receipt import dumps_receipt

from .conftest import fill


def run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the CLI with captured streams."""
    out, err = io.StringIO(), io.StringIO()
    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        code = main(list(argv), stdout=out, stderr=err)
    finally:
        os.environ.clear()
        os.environ.update(old)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def filled(log: AuditLog) -> AuditLog:
    """A log of 12 entries with one checkpoint at 10."""
    fill(log, 10)
    log.checkpoint()
    fill(log, 2, start=10)
    return log


def _url(log: AuditLog) -> str:
    return log.store.url


def test_verify_ok(filled: AuditLog, signer: Signer) -> None:
    """verify exits 0 and reports counts on an untouched log."""
    code, out, _ = run("verify", "--log", _url(filled), "--key", signer.vkey)
    assert code == 0, out
    assert out.startswith("ok: 12 entries, 1 checkpoints")


def test_verify_tampered_names_class_and_seq(filled: AuditLog, signer: Signer) -> None:
    """A rewritten envelope makes verify exit 1 naming 'modified' and the seq."""
    with filled.store.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE audit_entries SET envelope = replace(envelope, '\"ci\"', '\"xx\"') "
            "WHERE seq = 4")
    code, out, _ = run("verify", "--log", _url(filled), "--key", signer.vkey)
    assert code == 1
    assert "modified" in out and "seq 4" in out


def test_verify_without_key_is_an_error(filled: AuditLog) -> None:
    """verify of a log without --key exits 2 and says what to pass."""
    code, _, err = run("verify", "--log", _url(filled))
    assert code == 2 and "--key" in err


def test_verify_unreachable_log_exits_3(tmp_path: Path, signer: Signer) -> None:
    """verify maps an unavailable log to exit 3, as export and the gate do."""
    code, _, err = run("verify", "--log", "mysql://x/y", "--key", signer.vkey)
    assert code == 3 and "audit log unavailable at" in err
    code, _, err = run("export", "--out", str(tmp_path / "b"), "--log", "mysql://x/y")
    assert code == 3 and "audit log unavailable at" in err


def test_verify_accepts_a_plain_sqlite_path(filled: AuditLog, signer: Signer,
                                            tmp_path: Path) -> None:
    """--log given as a plain file path means sqlite:///path."""
    path = _url(filled).removeprefix("sqlite:///")
    code, out, _ = run("verify", "--log", path, "--key", signer.vkey)
    assert code == 0 and out.startswith("ok:"), out
    code, _, err = run("verify", "--log", str(tmp_path / "missing.db"), "--key", signer.vkey)
    assert code == 3 and "no log file" in err


def test_verify_trusted_checkpoint_catches_truncation(filled: AuditLog, signer: Signer,
                                                      tmp_path: Path) -> None:
    """A trusted checkpoint larger than the log yields exit 1 (truncated)."""
    fill(filled, 3, start=12)
    trusted = tmp_path / "trusted.note"
    trusted.write_text(filled.checkpoint().note)
    with filled.store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_entries WHERE seq >= 13")
        conn.exec_driver_sql("DELETE FROM audit_payloads WHERE seq >= 13")
        conn.exec_driver_sql("DELETE FROM audit_checkpoints WHERE size = 15")
    code, out, _ = run("verify", "--log", _url(filled), "--key", signer.vkey,
                       "--trusted-checkpoint", str(trusted))
    assert code == 1 and "truncated" in out


def test_show_prints_entry(filled: AuditLog) -> None:
    """show SEQ prints the envelope and payload as JSON."""
    code, out, _ = run("show", "3", "--log", _url(filled))
    assert code == 0
    shown = json.loads(out)
    assert shown["envelope"]["seq"] == 3 and shown["payload"] == {"i": 3, "allow": False}


def test_show_missing_seq_exits_2(filled: AuditLog) -> None:
    """show of an unknown seq is bad input (exit 2)."""
    code, _, err = run("show", "99", "--log", _url(filled))
    assert code == 2 and "no entry 99" in err


def test_checkpoint_needs_key_and_signs(filled: AuditLog, key_pair: tuple[str, str]) -> None:
    """checkpoint without a key exits 3; with POLICYENGINE_SIGNING_KEY it prints a note."""
    code, _, err = run("checkpoint", "--log", _url(filled),
                       env={"POLICYENGINE_SIGNING_KEY": ""})
    assert code == 3 and "signing key" in err
    code, out, _ = run("checkpoint", "--log", _url(filled),
                       env={"POLICYENGINE_SIGNING_KEY": key_pair[0]})
    assert code == 0
    assert out.splitlines()[:2] == [filled.origin, "12"]


def test_proofs_print_hex(filled: AuditLog) -> None:
    """proof inclusion/consistency print JSON proofs that match the library."""
    code, out, _ = run("proof", "inclusion", "5", "--size", "10", "--log", _url(filled))
    assert code == 0
    assert json.loads(out)["proof"] == [p.hex() for p in filled.inclusion_proof(5, 10)]
    code, out, _ = run("proof", "consistency", "3", "12", "--log", _url(filled))
    assert code == 0
    assert json.loads(out)["proof"] == [p.hex() for p in filled.consistency_proof(3, 12)]


def test_export_then_verify_bundle(filled: AuditLog, signer: Signer, tmp_path: Path) -> None:
    """export writes a bundle that verify --bundle accepts (full and filtered)."""
    code, out, _ = run("export", "--out", str(tmp_path / "full"), "--log", _url(filled))
    assert code == 0 and "exported 12 entries" in out
    code, out, _ = run("verify", "--bundle", str(tmp_path / "full"), "--key", signer.vkey)
    assert code == 0, out
    code, _, _ = run("export", "--out", str(tmp_path / "part"), "--name", "model",
                     "--version", "2", "--since", "2026-01-01T00:00:00Z", "--log", _url(filled))
    assert code == 0
    code, out, _ = run("verify", "--bundle", str(tmp_path / "part"), "--key", signer.vkey)
    assert code == 0 and "inclusion proofs" in out, out


def test_bundle_without_anchor_is_refused(filled: AuditLog, tmp_path: Path) -> None:
    """verify --bundle without --key exits 2 and names what to pass; the unsafe flag warns."""
    run("export", "--out", str(tmp_path / "b"), "--log", _url(filled))
    code, out, err = run("verify", "--bundle", str(tmp_path / "b"))
    assert code == 2 and "--key" in err and "--trust-bundle-keys" in err and not out
    code, out, err = run("verify", "--bundle", str(tmp_path / "b"), "--trust-bundle-keys")
    assert code == 0 and "trusting the keys shipped in the bundle" in err


def test_tampered_bundle_file_fails(filled: AuditLog, signer: Signer, tmp_path: Path) -> None:
    """A bundle whose checkpoints file changed fails verification (exit 1)."""
    run("export", "--out", str(tmp_path / "b"), "--log", _url(filled))
    with (tmp_path / "b" / "checkpoints.jsonl").open("a") as fh:
        fh.write("\n")
    code, out, _ = run("verify", "--bundle", str(tmp_path / "b"), "--key", signer.vkey)
    assert code == 1 and "manifest" in out


def test_receipt_verify(filled: AuditLog, signer: Signer, tmp_path: Path) -> None:
    """receipt verify exits 0 for a good receipt and 1 for a changed one."""
    path = tmp_path / "r.json"
    path.write_bytes(dumps_receipt(filled.receipt(2)))
    assert run("receipt", "verify", str(path), "--key", signer.vkey)[0] == 0
    data = json.loads(path.read_text())
    data["leaf_index"] = 3
    path.write_text(json.dumps(data))
    assert run("receipt", "verify", str(path), "--key", signer.vkey)[0] == 1


def test_keys_generate_writes_private_key_mode_600(tmp_path: Path) -> None:
    """keys generate writes the skey with mode 600 and prints the vkey."""
    target = tmp_path / "k.key"
    code, out, _ = run("keys", "generate", "example.com/audit", "--out", str(target))
    assert code == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert out.startswith("example.com/audit+")
    assert Signer.from_skey(target.read_text()).vkey == out.strip()
    assert run("keys", "generate", "example.com/audit", "--out", str(target))[0] == 2


def test_default_log_url_from_env(filled: AuditLog) -> None:
    """Without --log the POLICYENGINE_LOG_URL variable chooses the log."""
    code, out, _ = run("show", "0", env={"POLICYENGINE_LOG_URL": _url(filled)})
    assert code == 0 and json.loads(out)["seq"] == 0


def test_usage_error_exits_2() -> None:
    """An unknown subcommand is a usage error (exit 2)."""
    assert run("frobnicate")[0] == 2


def test_progress_is_silent_when_not_a_tty(filled: AuditLog, signer: Signer) -> None:
    """verify writes no progress line to a non-terminal stderr."""
    _, _, err = run("verify", "--log", _url(filled), "--key", signer.vkey)
    assert "\r" not in err


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_on_a_terminal_unless_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """The progress line appears on a TTY and stays quiet when CI is set."""
    from audit.cli import _Progress

    monkeypatch.delenv("CI", raising=False)
    tty = _Tty()
    bar = _Progress(tty, "verify", 10000)
    bar(5000)
    bar.close()
    assert "\rverify 5000/10000 50%" in tty.getvalue()
    monkeypatch.setenv("CI", "true")
    quiet = _Tty()
    bar = _Progress(quiet, "verify", 10000)
    bar(5000)
    bar.close()
    assert quiet.getvalue() == ""


def test_read_commands_do_not_create_a_log(tmp_path: Path, signer: Signer) -> None:
    """verify/show of a missing log fail (exit 3) and create no file."""
    url = f"sqlite:///{tmp_path / 'missing' / 'audit.db'}"
    code, _, err = run("verify", "--log", url, "--key", signer.vkey)
    assert code == 3 and "no log file" in err
    assert run("show", "0", "--log", url)[0] == 3
    assert not (tmp_path / "missing").exists()
