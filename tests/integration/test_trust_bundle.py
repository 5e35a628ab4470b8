"""One log, end to end: gates, a key rotation, two witness processes and a TSA on loopback,
then an exported bundle that a stranger verifies with the first key and the witness keys alone."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.audit.tsa import Tsa, running_tsa
from tests.integration.gatecli import REPO, cli, environ, gate

ORIGIN = "policyengine.local/audit"  # the default origin of a configured log


class _Witnesses:
    """Witness processes (`policyengine witness serve`) on loopback, restartable with new keys."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[subprocess.Popen[str]] = []
        self.urls: list[str] = []
        self.vkeys: list[str] = []
        for i in (1, 2):
            assert cli("keys", "generate", f"witness{i}.example", "--out", str(root)).code == 0
            vkey = cli("witness", "vkey", "--key", str(self._key(i)))
            assert vkey.code == 0, vkey.err
            self.vkeys.append(vkey.out.strip())
            (root / f"witness{i}.vkey").write_text(vkey.out)

    def _key(self, i: int) -> Path:
        return self.root / f"witness{i}.example.key"

    def start(self, *log_keys: str) -> None:
        """(Re)start both witnesses trusting ``log_keys`` for the origin; state files persist."""
        self.stop()
        for i in (1, 2):
            flags = [a for k in log_keys for a in ("--log-key", f"{ORIGIN}={k}")]
            proc = subprocess.Popen(
                [sys.executable, "-m", "policyengine", "witness", "serve", "--key",
                 str(self._key(i)), *flags, "--state", str(self.root / f"state{i}.json"),
                 "--listen", "127.0.0.1:0"],
                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env=environ(PYTHONPATH=str(REPO)))
            self.procs.append(proc)
            line = proc.stdout.readline()  # type: ignore[union-attr]
            assert line.startswith("listening on "), proc.stderr.read()  # type: ignore[union-attr]
            self.urls.append(line.split()[-1])

    def stop(self) -> None:
        """Stop the witness processes this object started."""
        for proc in self.procs:
            proc.terminate()
            proc.wait(timeout=30)
        self.procs, self.urls = [], []


@pytest.fixture
def witnessed(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, object]]:
    """A log key (keys/log.key, keys/first.pub), two witnesses and a TSA, not yet configured."""
    assert cli("keys", "generate", "log.example/audit", "--out", "keys").code == 0
    shutil.move(workdir / "keys" / "log.example_audit.key", workdir / "keys" / "log.key")
    shutil.move(workdir / "keys" / "log.example_audit.pub", workdir / "keys" / "first.pub")
    monkeypatch.setenv("POLICYENGINE_SIGNING_KEY", str(workdir / "keys" / "log.key"))
    witnesses = _Witnesses(workdir / "witnesses")
    try:
        with running_tsa(workdir / "tsa") as tsa:
            yield {"witnesses": witnesses, "tsa": tsa}
    finally:
        witnesses.stop()


def _configure(workdir: Path, witnesses: _Witnesses, tsa: Tsa) -> None:
    """policyengine.yaml: both witnesses must cosign every checkpoint; the TSA stamps it."""
    lines = ["witnessing:", "  witnesses:"]
    for url, vkey in zip(witnesses.urls, witnesses.vkeys, strict=True):
        lines += [f"    - url: {url}", f"      vkey: {vkey}"]
    lines += ["  min_witnesses: 2", f"  timestamp_url: {tsa.url}", "  timeout_seconds: 30"]
    (workdir / "policyengine.yaml").write_text("\n".join(lines) + "\n")


def _offline(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`policyengine audit verify --bundle bundle ARGS` run in ``directory`` by a stranger."""
    return subprocess.run(
        [sys.executable, "-m", "policyengine", "audit", "verify", "--bundle", "bundle", *args],
        cwd=directory, capture_output=True, text=True, timeout=300,
        env=environ(PYTHONPATH=str(REPO)))


def _strip_cosignatures(bundle: Path, witness_name: str) -> None:
    """Drop one witness's cosignatures from the bundle and rewrite the manifest to match."""
    path = bundle / "checkpoints.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    for line in lines:
        line["cosignatures"] = [c for c in line["cosignatures"] if f" {witness_name} " not in c]
    data = "".join(json.dumps(x, separators=(",", ":"), sort_keys=True) + "\n" for x in lines)
    path.write_text(data)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["checkpoints.jsonl"] = "sha256:" + hashlib.sha256(data.encode()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def test_rotated_witnessed_timestamped_bundle_verifies_offline(
        workdir: Path, witnessed: dict[str, object], tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The bundle verifies with the first key and two witness keys, naming the transition, the
    cosignatures and the timestamps; a missing witness or a stripped cosignature fails closed."""
    witnesses: _Witnesses = witnessed["witnesses"]  # type: ignore[assignment]
    tsa: Tsa = witnessed["tsa"]  # type: ignore[assignment]
    first = (workdir / "keys" / "first.pub").read_text().strip()
    witnesses.start(first)
    _configure(workdir, witnesses, tsa)
    assert gate().code == 1  # a deny: recorded, cosigned by both witnesses, timestamped

    rotated = cli("keys", "rotate")
    assert rotated.code == 0, rotated.err
    new = rotated.out.strip()
    # The witnesses' operators add the log's new key (tlog-witness: keys are configured).
    witnesses.start(first, new)
    _configure(workdir, witnesses, tsa)
    second = gate()
    assert second.code == 1, second.err

    online = cli("audit", "verify", "--key", "keys/first.pub",
                 "--witness", "witnesses/witness1.vkey", "--witness", "witnesses/witness2.vkey",
                 "--min-witnesses", "2", "--tsa-cert", str(tsa.cert_path))
    assert online.code == 0, online.out + online.err
    assert cli("audit", "export", "--out", "bundle").code == 0
    transitions = (workdir / "bundle" / "transitions.jsonl").read_text().splitlines()
    assert len(transitions) == 1
    checkpoints = [json.loads(x) for x in
                   (workdir / "bundle" / "checkpoints.jsonl").read_text().splitlines()]
    assert len(checkpoints) == 3  # first gate, rotation, second gate
    assert all(len(c["cosignatures"]) == 2 and base64.b64decode(c["timestamp"])
               for c in checkpoints)

    stranger = tmp_path_factory.mktemp("auditor")
    shutil.copytree(workdir / "bundle", stranger / "bundle")
    shutil.copy(workdir / "keys" / "first.pub", stranger / "first.pub")
    for i in (1, 2):
        shutil.copy(workdir / "witnesses" / f"witness{i}.vkey", stranger / f"witness{i}.vkey")
    shutil.copy(tsa.cert_path, stranger / "tsa.pem")
    anchors = ["--key", "first.pub", "--witness", "witness1.vkey",
               "--witness", "witness2.vkey", "--min-witnesses", "2"]

    alone = _offline(stranger, *anchors)
    assert alone.returncode == 0, alone.stdout + alone.stderr
    first_id = first.split("+")[1]
    new_id = new.split("+")[1]
    assert "ok: " in alone.stdout and "3 checkpoints verified" in alone.stdout
    assert f"key chain: first key log.example/audit+{first_id}" in alone.stdout
    assert f"-> log.example/audit+{new_id}" in alone.stdout
    assert "witness1.example 3/3, witness2.example 3/3 (required 2 per checkpoint)" in alone.stdout
    assert "timestamps: 3 present, not checked" in alone.stdout

    stamped = _offline(stranger, *anchors, "--tsa-cert", "tsa.pem")
    assert stamped.returncode == 0, stamped.stdout + stamped.stderr
    assert "timestamps: 3 verified" in stamped.stdout

    one_key = _offline(stranger, "--key", "first.pub", "--witness", "witness1.vkey",
                       "--min-witnesses", "2")
    assert one_key.returncode == 2, one_key.stdout + one_key.stderr
    assert "--min-witnesses" in one_key.stderr and "Traceback" not in one_key.stderr

    assert cli("keys", "generate", "witness3.example", "--out", str(stranger)).code == 0
    other = cli("witness", "vkey", "--key", str(stranger / "witness3.example.key")).out
    (stranger / "witness3.vkey").write_text(other)
    wrong = _offline(stranger, "--key", "first.pub", "--witness", "witness1.vkey",
                     "--witness", "witness3.vkey", "--min-witnesses", "2")
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert "TAMPERED: missing_witness" in wrong.stdout

    _strip_cosignatures(stranger / "bundle", "witness2.example")
    stripped = _offline(stranger, *anchors)
    assert stripped.returncode == 1, stripped.stdout + stripped.stderr
    assert "TAMPERED: missing_witness" in stripped.stdout
    assert "1 valid witness cosignature(s), expected at least 2" in stripped.stdout
    assert _offline(stranger, "--key", "first.pub", "--witness", "witness1.vkey").returncode == 0



def test_export_witnesses_the_checkpoint_it_signs(
        workdir: Path, witnessed: dict[str, object]) -> None:
    """Entries the service appended unsigned get their checkpoint from `audit export`: that one is
    cosigned and timestamped too (the bundle verifies with 2 witnesses); no witness: exit 3."""
    from audit.log import AuditLog

    witnesses: _Witnesses = witnessed["witnesses"]  # type: ignore[assignment]
    tsa: Tsa = witnessed["tsa"]  # type: ignore[assignment]
    witnesses.start((workdir / "keys" / "first.pub").read_text().strip())
    _configure(workdir, witnesses, tsa)
    assert gate().code == 1
    log = AuditLog.open(f"sqlite:///{workdir / '.policyengine' / 'audit.db'}")
    log.append("webhook_received", {"name": "m", "version": "1"}, "registry", {"n": 1})
    assert cli("audit", "export", "--out", "bundle").code == 0
    checkpoints = (workdir / "bundle" / "checkpoints.jsonl").read_text().splitlines()
    assert [json.loads(c)["size"] for c in checkpoints] == [2, 3]
    verified = cli("audit", "verify", "--bundle", "bundle", "--key", "keys/first.pub",
                   "--witness", "witnesses/witness1.vkey", "--witness", "witnesses/witness2.vkey",
                   "--tsa-cert", str(tsa.cert_path))
    assert verified.code == 0, verified.out + verified.err
    assert "witness2.example 2/2" in verified.out and "timestamps: 2 verified" in verified.out

    witnesses.stop()
    log.append("webhook_received", {"name": "m", "version": "1"}, "registry", {"n": 2})
    refused = cli("audit", "export", "--out", "later")
    assert refused.code == 3, refused.out + refused.err
    assert "cosigned by 0 witness(es), expected at least 2" in refused.err
    assert not (workdir / "later").exists()
