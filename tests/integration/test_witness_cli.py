"""Two witnesses as real processes on loopback cosign an honest log and refuse a split view."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from audit.cli import main as audit_main
from audit.export import export_bundle
from audit.keys import Signer, generate_key
from audit.log import AuditLog
from audit.publish import Publisher, WitnessEndpoint, WitnessError
from audit.witness import CosignatureVerifier, encode_add_checkpoint, witness_vkey
from tests.audit.tsa import Tsa, running_tsa

REPO = Path(__file__).resolve().parents[2]
ORIGIN = "policyengine.local/audit"


def _key(path: Path, name: str) -> str:
    skey, _vkey = generate_key(name)
    path.write_text(skey + "\n")
    path.chmod(0o600)
    return skey


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """A log key, a loopback TSA and two witness processes trusting the log key."""
    d = tmp_path_factory.mktemp("witnessing")
    signer = Signer.from_skey(_key(d / "log.key", "example.com/log"))
    procs, endpoints = [], []
    try:
        for i in (1, 2):
            _key(d / f"w{i}.key", f"witness{i}.example")
            proc = subprocess.Popen(
                [sys.executable, "-m", "policyengine", "witness", "serve", "--key",
                 str(d / f"w{i}.key"), "--log-key", f"{ORIGIN}={signer.vkey}",
                 "--state", str(d / f"w{i}.json"), "--listen", "127.0.0.1:0"],
                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env={**os.environ, "PYTHONPATH": str(REPO)})
            procs.append(proc)
            line = proc.stdout.readline()  # type: ignore[union-attr]
            assert line.startswith("listening on "), proc.stderr.read()  # type: ignore[union-attr]
            vkey = proc.stderr.readline().split()[-1]  # type: ignore[union-attr]
            endpoints.append(WitnessEndpoint(line.split()[-1], CosignatureVerifier.from_vkey(vkey)))
        with running_tsa(d / "tsa") as tsa:
            yield {"dir": d, "signer": signer, "endpoints": endpoints, "tsa": tsa}
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


def _open(path: Path, setup: dict[str, object], *, tsa: bool = True,
          minimum: int = 2) -> AuditLog:
    log = AuditLog.open(f"sqlite:///{path}", signer=setup["signer"])  # type: ignore[arg-type]
    t: Tsa = setup["tsa"]  # type: ignore[assignment]
    log.publishers.append(Publisher(setup["endpoints"], min_witnesses=minimum,  # type: ignore[arg-type]
                                    tsa_url=t.url if tsa else None, timeout=10))
    return log


def _append(log: AuditLog, n: int, name: str = "model") -> None:
    for i in range(n):
        log.append_signed("decision", {"name": name}, "ci", {"i": i})


def _verify(*args: str) -> tuple[int, str]:
    import io

    out, err = io.StringIO(), io.StringIO()
    code = audit_main(["verify", *args], stdout=out, stderr=err)
    return code, out.getvalue() + err.getvalue()


def _witness_flags(setup: dict[str, object], minimum: int = 2) -> list[str]:
    flags = []
    for e in setup["endpoints"]:  # type: ignore[attr-defined]
        flags += ["--witness", e.key.vkey]
    return [*flags, "--min-witnesses", str(minimum)]


def _post(url: str, body: bytes) -> tuple[int, str]:
    req = urllib.request.Request(url.rstrip("/") + "/add-checkpoint", data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_honest_log_is_cosigned_timestamped_and_verifies(setup: dict[str, object]) -> None:
    """Both witnesses cosign every checkpoint; verify with --min-witnesses 2 and the TSA passes."""
    d: Path = setup["dir"]  # type: ignore[assignment]
    tsa: Tsa = setup["tsa"]  # type: ignore[assignment]
    signer: Signer = setup["signer"]  # type: ignore[assignment]
    log = _open(d / "honest.db", setup)
    _append(log, 4)
    url = f"sqlite:///{d / 'honest.db'}"
    code, text = _verify("--log", url, "--key", signer.vkey, *_witness_flags(setup),
                         "--tsa-cert", str(tsa.cert_path))
    assert code == 0, text
    assert "witness1.example 4/4" in text and "witness2.example 4/4" in text
    assert "timestamps: 4 verified" in text
    export_bundle(log, d / "bundle")
    lines = [json.loads(x) for x in (d / "bundle" / "checkpoints.jsonl").read_text().splitlines()]
    assert all(len(x["cosignatures"]) == 2 and x["timestamp"] for x in lines)
    code, text = _verify("--bundle", str(d / "bundle"), "--key", signer.vkey,
                         *_witness_flags(setup))
    assert code == 0 and "witness2.example 4/4" in text, text
    code, text = _verify("--bundle", str(d / "bundle"), "--key", signer.vkey,
                         "--tsa-cert", str(tsa.cert_path))
    assert code == 0 and "timestamps: 4 verified" in text, text


def test_split_view_is_refused_by_witnesses_and_detected(setup: dict[str, object]) -> None:
    """A second history of one size gets 409, a longer inconsistent one 422; verify finds both."""
    d: Path = setup["dir"]  # type: ignore[assignment]
    signer: Signer = setup["signer"]  # type: ignore[assignment]
    endpoints: list[WitnessEndpoint] = setup["endpoints"]  # type: ignore[assignment]
    honest = AuditLog.open(f"sqlite:///{d / 'honest.db'}")
    size = honest.size()
    assert size > 0
    fork = AuditLog.open(f"sqlite:///{d / 'fork.db'}", signer=signer)
    for i in range(size):
        fork.append("decision", {"name": "forged"}, "mallory", {"i": i})
    same_size = fork.checkpoint()
    for e in endpoints:  # two roots for one size
        status, text = _post(e.url, encode_add_checkpoint(size, [], same_size.note))
        assert status == 409 and text.strip() == str(size)
    fork.append("decision", {"name": "forged"}, "mallory", {"i": size})
    longer = fork.checkpoint()
    proof = fork.consistency_proof(size, longer.size)
    for e in endpoints:  # a checkpoint not consistent with the witnessed one
        status, text = _post(e.url, encode_add_checkpoint(size, proof, longer.note))
        assert status == 422, text
    with pytest.raises(WitnessError, match="by 0 witness"):
        Publisher(endpoints, min_witnesses=2)(fork, longer)
    code, text = _verify("--log", f"sqlite:///{d / 'fork.db'}", "--key", signer.vkey,
                         *_witness_flags(setup))
    assert code == 1 and "missing_witness" in text, text


def test_log_the_witnesses_do_not_know_is_not_witnessed(setup: dict[str, object]) -> None:
    """Witnesses answer 404 to an unknown origin; the append goes on, verification fails."""
    d: Path = setup["dir"]  # type: ignore[assignment]
    signer: Signer = setup["signer"]  # type: ignore[assignment]
    endpoints: list[WitnessEndpoint] = setup["endpoints"]  # type: ignore[assignment]
    log = AuditLog.open(f"sqlite:///{d / 'one.db'}", signer=signer, origin="example.com/one")
    log.publishers.append(Publisher(endpoints, min_witnesses=0, timeout=10))
    log.append_signed("decision", {"name": "m"}, "ci", {})
    code, text = _verify("--log", f"sqlite:///{d / 'one.db'}", "--key", signer.vkey,
                         *_witness_flags(setup, 1))
    assert code == 1 and "0 valid witness cosignature(s), expected at least 1" in text, text


def test_witness_serve_refuses_bad_flags(tmp_path: Path) -> None:
    """A missing key file is one line and exit 3, not a traceback."""
    run = subprocess.run(
        [sys.executable, "-m", "policyengine", "witness", "serve", "--key",
         str(tmp_path / "nope.key"), "--log-key", "x", "--state", str(tmp_path / "s.json")],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60)
    assert run.returncode == 3 and "Traceback" not in run.stderr, run.stderr


def test_readme_witnessing_section_loads_and_attaches_a_publisher(tmp_path: Path) -> None:
    """The README's witnessing: example loads, and the opened log asks those witnesses."""
    import re

    from policyengine.config import load_config
    from policyengine.ledger import open_log

    readme = (REPO / "README.md").read_text()
    (block,) = [b for b in re.findall(r"^```yaml\n(.*?)^```", readme, re.M | re.S)
                if b.startswith("witnessing:")]
    skey, _ = generate_key("witness1.example")
    vkey = witness_vkey(Signer.from_skey(skey))
    (tmp_path / "policyengine.yaml").write_text(block.replace("<witness vkey>", vkey))
    config = load_config(env={}, cwd=tmp_path)
    log = open_log(config)
    (publisher,) = log.publishers
    assert isinstance(publisher, Publisher) and publisher.witnesses[0].key.vkey == vkey


def test_misspelled_witnessing_key_is_refused(tmp_path: Path) -> None:
    """A misspelled key under witnessing: is a configuration error, never ignored."""
    from policyengine.config import load_config
    from policyengine.errors import ConfigError

    (tmp_path / "policyengine.yaml").write_text("witnessing:\n  min_witness: 1\n")
    with pytest.raises(ConfigError, match="min_witness"):
        load_config(env={}, cwd=tmp_path)
