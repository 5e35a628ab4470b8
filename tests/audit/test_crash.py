"""Crash safety: SIGKILL an appending process at random moments; nothing acknowledged is lost."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from audit.keys import Signer
from audit.log import AuditLog
from audit.receipt import verify_receipt
from audit.verify import Verifier

KILLS = 22
GROUPED_KILLS = 20
"""Processes killed amid concurrent grouped appends, one after another on one log."""

# Appends forever, printing "seq leaf_hash" after each append returned
# (acknowledged = durable), and signs a checkpoint every 25 entries.
_WORKER = """
import os, sys
from audit.keys import Signer
from audit.log import AuditLog
log = AuditLog.open(sys.argv[1], signer=Signer.from_skey(os.environ["CRASH_SKEY"]))
sys.stdout.write("ready\\n")
sys.stdout.flush()
n = 0
while True:
    r = log.append("decision", {"name": "crash", "version": sys.argv[2]}, "worker", {"n": n})
    sys.stdout.write(f"{r.seq} {r.leaf_hash}\\n")
    sys.stdout.flush()
    n += 1
    if n % 25 == 0:
        log.checkpoint()
"""


def _run_and_kill(url: str, run: int, env: dict[str, str], rng: random.Random) -> list[str]:
    proc = subprocess.Popen([sys.executable, "-c", _WORKER, url, str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    # Every fourth run dies while starting (opening the log, creating tables);
    # the others once the log is open, at a random point of the append loop.
    if run % 4 == 0:
        time.sleep(rng.uniform(0.0, 0.5))
    else:
        proc.stdout.readline()
        time.sleep(rng.uniform(0.01, 0.4))
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    lines = [ln for ln in out.decode().split("\n")[:-1] if ln != "ready"]
    return lines  # the last piece (dropped) may be a half-written line


def test_sigkill_never_loses_an_acknowledged_append(tmp_path: Path,
                                                    key_pair: tuple[str, str]) -> None:
    """After 20+ SIGKILLs the log verifies and every printed seq is present with its hash."""
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    env = {**os.environ, "CRASH_SKEY": key_pair[0],
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    rng = random.Random(20261126)
    acknowledged: dict[int, str] = {}
    for run in range(KILLS):
        for line in _run_and_kill(url, run, env, rng):
            seq, leaf = line.split()
            assert acknowledged.setdefault(int(seq), leaf) == leaf
    assert len(acknowledged) > 100, "the worker barely ran; the test proves nothing"
    log = AuditLog.open(url)
    stored = {e.seq: e.leaf_hash.hex() for e in log.store.iter_entries()}
    for seq, leaf in acknowledged.items():
        assert stored.get(seq) == leaf, f"acknowledged append {seq} lost or changed"
    assert sorted(stored) == list(range(log.size()))
    verifier = Verifier([Signer.from_skey(key_pair[0]).verifier()], log.origin, None)
    report = verifier.verify(log.store.iter_entries(), log.store.iter_checkpoints())
    assert report.ok, report.message


# Eight threads appending signed entries forever through group commit; each
# acknowledged append prints its seq, leaf hash and receipt (on the checkpoint
# of its batch).
_GROUPED_WORKER = """
import json, os, sys, threading
from audit.keys import Signer
from audit.log import AuditLog
from audit.receipt import build_receipt
log = AuditLog.open(sys.argv[1], signer=Signer.from_skey(os.environ["CRASH_SKEY"]))
out = threading.Lock()
sys.stdout.write("ready\\n"); sys.stdout.flush()
def run(w):
    n = 0
    while True:
        s = log.append_signed("decision", {"name": "crash", "version": str(w)}, "w", {"n": n})
        a, cp = s.appended, s.checkpoint
        r = build_receipt(a.envelope, a.seq, cp.size, log.inclusion_proof(a.seq, cp.size),
                          cp.note)
        with out:
            sys.stdout.write(json.dumps({"seq": a.seq, "leaf": a.leaf_hash, "receipt": r}) + "\\n")
            sys.stdout.flush()
        n += 1
for w in range(8):
    threading.Thread(target=run, args=(w,), daemon=True).start()
threading.Event().wait()
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_sigkill_during_grouped_signed_appends_loses_nothing_acknowledged(
        request: pytest.FixtureRequest, tmp_path: Path, key_pair: tuple[str, str],
        backend: str) -> None:
    """SIGKILL amid 8 threads of signed appends: every acknowledged entry and receipt stands."""
    import json

    url = (f"sqlite:///{tmp_path / 'crash.db'}" if backend == "sqlite"
           else request.getfixturevalue("pg_url"))
    env = {**os.environ, "CRASH_SKEY": key_pair[0],
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    rng = random.Random(20261201)
    acked: dict[int, dict[str, Any]] = {}
    for _ in range(GROUPED_KILLS):
        proc = subprocess.Popen([sys.executable, "-c", _GROUPED_WORKER, url],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        # Killed after a random number of acknowledgements, not after a time:
        # the other threads are somewhere inside their batches by then.
        lines = [proc.stdout.readline() for _ in range(rng.randint(5, 40))]
        proc.send_signal(signal.SIGKILL)
        # Read the rest through the same buffered reader (communicate() would
        # read the descriptor and skip what readline() buffered).
        lines += proc.stdout.read().split(b"\n")[:-1]  # the last piece may be cut short
        err = proc.stderr.read()
        assert proc.wait(timeout=30) == -signal.SIGKILL, err.decode()[-2000:]
        for line in lines:
            item = json.loads(line)
            acked[item["seq"]] = item
    signer = Signer.from_skey(key_pair[0])
    log = AuditLog.open(url)
    try:
        stored = {e.seq: e.leaf_hash.hex() for e in log.store.iter_entries()}
        assert sorted(stored) == list(range(log.size()))
        for seq, item in acked.items():
            assert stored.get(seq) == item["leaf"], f"acknowledged append {seq} lost or changed"
            verify_receipt(item["receipt"], [signer.verifier()])
        report = Verifier([signer.verifier()], log.origin, None).verify(
            log.store.iter_entries(), log.store.iter_checkpoints())
        assert report.ok, report.message
    finally:
        log.close()
