"""Crash safety: SIGKILL an appending process at random moments; nothing acknowledged is lost."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from audit.keys import Signer
from audit.log import AuditLog
from audit.verify import Verifier

KILLS = 22

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
