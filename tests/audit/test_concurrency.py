"""Concurrency: 4 processes appending to one log produce one verified chain of 8,000."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from audit.keys import Signer, generate_key
from audit.log import AuditLog
from audit.verify import Verifier

WRITERS = 4
PER_WRITER = 2000

# Single appends (one transaction each) so the writers really interleave.
_WRITER = """
import sys
from audit.log import AuditLog
log = AuditLog.open(sys.argv[1])
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.readline()
for i in range(int(sys.argv[3])):
    log.append("event", {"name": "w" + sys.argv[2]}, "writer", {"w": int(sys.argv[2]), "i": i})
"""


def _run_writers(url: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    AuditLog.open(url).close()  # create the schema once before the race
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, url, str(w), str(PER_WRITER)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        for w in range(WRITERS)
    ]
    for p in procs:  # start them together once all have imported and connected
        assert p.stdout is not None and p.stdout.readline() == b"ready\n"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(b"go\n")
        p.stdin.flush()
    for p in procs:
        assert p.wait(timeout=900) == 0  # a hang guard only: generous on a loaded machine


def _check_one_chain(url: str) -> None:
    log = AuditLog.open(url)
    total = WRITERS * PER_WRITER
    assert log.size() == total
    seen: dict[int, list[int]] = {w: [] for w in range(WRITERS)}
    seqs = []
    switches = 0
    last_writer = None
    for entry in log.store.iter_entries():
        seqs.append(entry.seq)
        payload = json.loads(entry.payload or b"null")
        seen[payload["w"]].append(payload["i"])
        switches += payload["w"] != last_writer
        last_writer = payload["w"]
    assert seqs == list(range(total))
    for w in range(WRITERS):
        assert seen[w] == list(range(PER_WRITER)), f"writer {w} lost or reordered entries"
    assert switches > WRITERS, "writers did not interleave"
    some_key = Signer.from_skey(generate_key("test.example/unused")[0]).verifier()
    report = Verifier([some_key], log.origin, None).verify(log.store.iter_entries(), [])
    assert report.ok, report.message


def test_four_sqlite_writers_one_chain(tmp_path: Path) -> None:
    """4 processes x 2,000 single appends on SQLite: seq 0..7999 once each, verified."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    _run_writers(url)
    _check_one_chain(url)


def test_four_postgres_writers_one_chain(pg_url: str) -> None:
    """4 processes x 2,000 single appends on PostgreSQL: one verified chain of 8,000."""
    _run_writers(pg_url)
    _check_one_chain(pg_url)
