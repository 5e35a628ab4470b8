"""Audit log benchmarks: append rates, proof times and verification memory.

Prints figures next to a baseline measured in the same run (raw sqlite3 /
psycopg inserts of the same rows, plain hashlib over the same bytes) and the
goal from the issue. Not a test: run it by hand.

    python bench/bench_audit.py                 # full sizes (about 3-5 minutes)
    python bench/bench_audit.py --entries 100000 --single 1000 --batched 20000

PostgreSQL figures need POLICYENGINE_TEST_PG_URL (a server URL; a scratch
database is created and dropped); they are skipped with a message otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audit import merkle
from audit.keys import Signer, generate_key
from audit.log import AuditLog, NewEntry

TIME = datetime(2026, 1, 1, tzinfo=UTC)


def _payload(i: int) -> dict[str, object]:
    return {"decision": "allow" if i % 3 else "deny", "rules": ["fair-1", "slo-2"], "n": i}


def _entry(i: int) -> NewEntry:
    return NewEntry("decision", {"name": f"model-{i % 50}", "version": str(i % 7)}, "ci",
                    _payload(i), TIME)


def _line(label: str, value: float, unit: str, goal: float | None = None,
          baseline: float | None = None, lower_is_better: bool = False) -> None:
    text = f"{label:<52} {value:>12,.2f} {unit}"
    if baseline:
        text += f"   baseline {baseline:,.2f} (ratio {value / baseline:.2f})"
    if goal is not None:
        met = value <= goal if lower_is_better else value >= goal
        text += f"   goal {goal:,} {'MET' if met else 'NOT MET'}"
    print(text, flush=True)


# -- SQLite ---------------------------------------------------------------------------------


_Row = tuple[bytes, bytes]


def _timed_inserts(con: sqlite3.Connection, rows: list[_Row], batch: int, entry_sql: str,
                   entry: Callable[[int, bytes], tuple[object, ...]], payload_sql: str) -> float:
    """Rows/s of ``batch``-sized transactions inserting each (envelope, payload) row."""
    start = time.perf_counter()
    for lo in range(0, len(rows), batch):
        con.execute("BEGIN IMMEDIATE")
        chunk = rows[lo : lo + batch]
        con.executemany(entry_sql, [entry(lo + i, env) for i, (env, _) in enumerate(chunk)])
        con.executemany(payload_sql, [
            (lo + i, "sha256:" + hashlib.sha256(p).hexdigest(), p)
            for i, (_, p) in enumerate(chunk)])
        con.execute("COMMIT")
    elapsed = time.perf_counter() - start
    con.close()
    return len(rows) / elapsed


def _raw_sqlite(path: Path, rows: list[_Row], batch: int) -> float:
    """Baseline: the same entry + payload rows through bare sqlite3 (WAL, synchronous=FULL)."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE e (seq INTEGER PRIMARY KEY, leaf BLOB, env BLOB, type TEXT,"
                " name TEXT, version TEXT, actor TEXT, time TEXT)")
    con.execute("CREATE TABLE p (seq INTEGER PRIMARY KEY, digest TEXT, content BLOB)")
    return _timed_inserts(
        con, rows, batch, "INSERT INTO e VALUES (?,?,?,?,?,?,?,?)",
        lambda seq, env: (seq, merkle.leaf_hash(env), env, "decision", "m", "1", "ci", "t"),
        "INSERT INTO p VALUES (?,?,?)")


def _raw_log_tables(path: Path, rows: list[_Row], batch: int) -> float:
    """The same rows through bare sqlite3 into the log's own tables and indexes.

    Not a goal: the most any append path on this schema could reach (no
    envelope, Merkle nodes or head; same WAL and synchronous=FULL).
    """
    AuditLog.open(f"sqlite:///{path}").close()
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA synchronous=FULL")
    return _timed_inserts(
        con, rows, batch, "INSERT INTO audit_entries VALUES (?,?,?,?,?,?,?,?,?)",
        lambda seq, env: (seq, merkle.leaf_hash(env), env, "decision", f"model-{seq % 50}",
                          str(seq % 7), None, "ci", "t"),
        "INSERT INTO audit_payloads VALUES (?,?,?,0)")


def bench_sqlite(tmp: Path, single: int, batched: int, batch: int) -> None:
    print("\n== SQLite (WAL, synchronous=FULL: every acknowledged append is durable)")
    log = AuditLog.open(f"sqlite:///{tmp / 'single.db'}")
    for i in range(50):
        log.append("decision", {"name": "warm"}, "ci", _payload(i))
    start = time.perf_counter()
    for i in range(single):
        e = _entry(i)
        log.append(e.type, e.subject, e.actor, e.payload, time=e.time)
    rate = single / (time.perf_counter() - start)
    rows = [(log.get(s).envelope_bytes, json.dumps(_payload(s)).encode()) for s in range(200)]
    log.close()
    threaded, batches = _threads_rate(f"sqlite:///{tmp / 'threads.db'}", 8, single // 8, True)
    rows = (rows * (single // 200 + 1))[:single]
    base = _raw_sqlite(tmp / "raw-single.db", rows, 1)
    _line("single durable appends/s (AuditLog.append)", rate, "/s", 3000, base)
    floor = _raw_log_tables(tmp / "floor-single.db", rows, 1)
    _line("   bare inserts into the log's tables and indexes", floor, "/s", None, base)
    _line("signed appends/s, 8 threads, group commit", threaded, "/s", None, base)
    print(f"   ({single // 8 * 8} signed appends in {batches} group commits, one checkpoint each)")

    log = AuditLog.open(f"sqlite:///{tmp / 'batched.db'}")
    entries = [_entry(i) for i in range(batched)]
    start = time.perf_counter()
    for lo in range(0, batched, batch):
        log.append_many(entries[lo : lo + batch])
    rate = batched / (time.perf_counter() - start)
    rows = (rows * (batched // len(rows) + 1))[:batched]
    base = _raw_sqlite(tmp / "raw-batched.db", rows, batch)
    _line(f"batched appends/s (append_many of {batch})", rate, "/s", 20000, base)
    floor = _raw_log_tables(tmp / "floor-batched.db", rows, batch)
    _line("   bare inserts into the log's tables and indexes", floor, "/s", None, base)
    log.close()


# -- PostgreSQL -----------------------------------------------------------------------------


def _pg_writer(url: str, count: int, batch: int, go: object, out: object) -> None:
    log = AuditLog.open(url)
    go.wait()  # type: ignore[attr-defined]
    cpu = time.process_time()
    for lo in range(0, count, batch):
        if batch == 1:
            log.append("decision", {"name": "pg"}, "w", _payload(lo))
        else:
            log.append_many([_entry(lo + i) for i in range(batch)])
    out.put(time.process_time() - cpu)  # type: ignore[attr-defined]
    log.close()


def _pg_raw_writer(url: str, count: int, go: object, out: object) -> None:
    import psycopg

    con = psycopg.connect(url.replace("postgresql+psycopg", "postgresql"))
    env = b"x" * 330
    go.wait()  # type: ignore[attr-defined]
    cpu = time.process_time()
    for _ in range(count):
        con.execute("INSERT INTO raw_e (env) VALUES (%s)", (env,))
        con.commit()
    out.put(time.process_time() - cpu)  # type: ignore[attr-defined]
    con.close()


def _busy_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine so far, from /proc/stat (Linux)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


class _PgRun(NamedTuple):
    rate: float
    """Appends (or inserts) per second, all writers together."""
    writer_cpu_ms: float
    """CPU time of the writer processes per append (Python and the driver)."""
    machine_busy: float
    """Share of the machine's CPU time that was busy during the run (every process)."""


def _pg_run(target: Callable[..., None], args: tuple, writers: int, count: int) -> _PgRun:
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, go, out)) for _ in range(writers)]
    for p in procs:
        p.start()
    time.sleep(3.0)  # let every writer import and connect
    busy0, total0 = _busy_jiffies()
    start = time.perf_counter()
    go.set()
    cpu = sum(out.get(timeout=900) for _ in procs)
    elapsed = time.perf_counter() - start
    busy1, total1 = _busy_jiffies()
    for p in procs:
        p.join()
    return _PgRun(writers * count / elapsed, cpu / (writers * count) * 1000,
                  (busy1 - busy0) / max(1, total1 - total0))


def _threads_rate(url: str, writers: int, per_writer: int, signed: bool) -> tuple[float, int]:
    """Appends/s of ``writers`` threads sharing one AuditLog (group commit), and its batches."""
    import threading

    skey, _ = generate_key("bench.example/audit")
    log = AuditLog.open(url, signer=Signer.from_skey(skey))
    go = threading.Barrier(writers + 1)

    def writer(w: int) -> None:
        go.wait()
        for i in range(per_writer):
            if signed:
                log.append_signed("decision", {"name": "pg", "version": str(w)}, "w", _payload(i))
            else:
                log.append("decision", {"name": "pg", "version": str(w)}, "w", _payload(i))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    go.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    rate = writers * per_writer / (time.perf_counter() - start)
    group = log.signed_group if signed else log.plain_group
    log.close()
    return rate, group.batches


def bench_postgres(writers: int, per_writer: int) -> None:
    print(f"\n== PostgreSQL ({writers} writer processes, durable commits)")
    server = os.environ.get("POLICYENGINE_TEST_PG_URL")
    if not server:
        print("skipped: POLICYENGINE_TEST_PG_URL is not set (run .ci/start-postgres)")
        return
    import sqlalchemy as sa

    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = f"{server.rsplit('/', 1)[0]}/{name}"
    try:
        AuditLog.open(url).close()
        with sa.create_engine(url).begin() as conn:
            conn.execute(sa.text("CREATE TABLE raw_e (id bigserial PRIMARY KEY, env bytea)"))
        raw = _pg_run(_pg_raw_writer, (url, per_writer), writers, per_writer)
        base = raw.rate
        cores = os.cpu_count() or 1
        print(f"   bare inserts: {raw.rate:,.0f}/s, writer CPU {raw.writer_cpu_ms:.3f} ms "
              f"per insert, machine {raw.machine_busy:.0%} busy")
        for batch in (1, 10, 100):
            run = _pg_run(_pg_writer, (url, per_writer, batch), writers, per_writer)
            label = "single appends" if batch == 1 else f"append_many of {batch}"
            _line(f"appends/s, {writers} writers, {label}", run.rate, "/s", 2000, base)
            # Where the time goes: with W writers on C cores, the writers' own
            # CPU alone caps the rate at C / (CPU per append).
            print(f"   writer CPU {run.writer_cpu_ms:.3f} ms per append (cap from the "
                  f"writers alone on {cores} cores: {cores / run.writer_cpu_ms * 1000:,.0f}/s), "
                  f"machine {run.machine_busy:.0%} busy")
        for signed in (False, True):
            rate, batches = _threads_rate(url, writers, per_writer, signed)
            label = "signed appends (+checkpoint)" if signed else "single appends"
            _line(f"appends/s, {writers} threads, one process, {label}", rate, "/s", 2000, base)
            print(f"   ({writers * per_writer} appends in {batches} group commits)")
        print("   (baseline: the same writers inserting + committing bare rows, no log)")
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = :n"), {"n": name})
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


# -- one million entries --------------------------------------------------------------------


def build_big(path: Path, entries: int, signer: Signer) -> AuditLog:
    log = AuditLog.open(f"sqlite:///{path}", signer=signer)
    have = log.size()
    start = time.perf_counter()
    for lo in range(have, entries, 10000):
        log.append_many([_entry(i) for i in range(lo, min(entries, lo + 10000))])
    if entries > have:
        rate = (entries - have) / (time.perf_counter() - start)
        _line(f"build: append_many of 10,000 up to {entries:,}", rate, "/s", 20000)
    log.checkpoint()
    return log


def bench_proofs(log: AuditLog, samples: int) -> None:
    size = log.size()
    print(f"\n== Proofs from stored nodes at {size:,} entries ({samples} each, random)")
    rng = random.Random(7)
    cp = log.latest_checkpoint()
    assert cp is not None
    times = []
    for _ in range(samples):
        seq = rng.randrange(size)
        start = time.perf_counter()
        proof = log.inclusion_proof(seq, size)
        times.append(time.perf_counter() - start)
        merkle.verify_inclusion(bytes.fromhex(log.get(seq).leaf_hash), seq, size, proof, cp.root)
    _line("inclusion proof, median", statistics.median(times) * 1000, "ms", 5, None, True)
    _line("inclusion proof, p99", sorted(times)[int(samples * 0.99) - 1] * 1000, "ms", 5,
          None, True)
    times = []
    for _ in range(samples):
        old = rng.randrange(1, size)
        start = time.perf_counter()
        proof = log.consistency_proof(old, size)
        times.append(time.perf_counter() - start)
        merkle.verify_consistency(old, size, proof, log.root(old), cp.root)
    _line("consistency proof, median", statistics.median(times) * 1000, "ms", 5, None, True)
    _line("consistency proof, p99", sorted(times)[int(samples * 0.99) - 1] * 1000, "ms", 5,
          None, True)


_VERIFY_CHILD = """
import sys, time, hashlib
from audit.keys import NoteVerifier
from audit.log import AuditLog
from audit.verify import Verifier
log = AuditLog.open(sys.argv[1])


def verify():
    report = Verifier([NoteVerifier.from_vkey(sys.argv[2])], log.origin, None).verify(
        log.store.iter_entries(), log.store.iter_checkpoints())
    assert report.ok, report.message
    return report.entries_checked


def baseline():
    n = 0
    for _seq, envelope, _leaf, payload, _redacted in log.store.iter_entries().rows():
        hashlib.sha256(b"\\x00" + envelope).digest()
        if payload is not None:
            hashlib.sha256(payload).digest()
        n += 1
    return n


# Alternate the two and keep each one's best run (wall and CPU): on a shared
# machine other load only ever slows a run down.
best = {}
for _ in range(int(sys.argv[3])):
    for name, run in (("verify", verify), ("baseline", baseline)):
        wall, cpu = time.perf_counter(), time.process_time()
        n = run()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        old = best.get(name, (n, wall, cpu))
        best[name] = (n, min(wall, old[1]), min(cpu, old[2]))
# VmHWM is this process's own peak RSS; ru_maxrss would carry the parent's
# peak across fork + exec on Linux, so a large parent would hide ours.
with open("/proc/self/status") as status:
    hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(*best["verify"], *best["baseline"], hwm)
"""


def bench_verify(log: AuditLog, vkey: str, repeat: int) -> None:
    print(f"\n== Full verification of {log.size():,} entries (separate process, "
          f"best of {repeat})")
    root = str(Path(__file__).resolve().parent.parent)
    done = subprocess.run([sys.executable, "-c", _VERIFY_CHILD, log.store.url, vkey, str(repeat)],
                          capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": root})
    checked, wall, cpu, n, base_wall, base_cpu, hwm_kb = done.stdout.split()
    rate, base_rate = int(checked) / float(wall), int(n) / float(base_wall)
    _line("verification entries/s (Verifier over the store)", rate, "/s", 200000, base_rate)
    rate, base_rate = int(checked) / float(cpu), int(n) / float(base_cpu)
    _line("  the same per CPU second", rate, "/s", None, base_rate)
    print("   (baseline: reading the same rows as tuples and hashlib SHA-256 of leaf and payload)")
    _line("peak memory of the verifying process (VmHWM)", int(hwm_kb) / 1024, "MB", 200,
          None, True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=int, default=3000, help="single appends to time")
    parser.add_argument("--batched", type=int, default=100000, help="entries in batches")
    parser.add_argument("--batch", type=int, default=1000, help="batch size")
    parser.add_argument("--pg-writers", type=int, default=4)
    parser.add_argument("--pg-per-writer", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=1_000_000, help="size of the big log")
    parser.add_argument("--proofs", type=int, default=200, help="proofs to time")
    parser.add_argument("--verify-runs", type=int, default=3,
                        help="alternating verification and baseline runs (best counts)")
    parser.add_argument("--dir", help="keep the big log here (reused when it exists)")
    parser.add_argument("--skip", action="append", default=[],
                        choices=["sqlite", "postgres", "big"], help="skip a section")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"sqlite {sqlite3.sqlite_version}")
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as scratch:
        tmp = Path(scratch)
        if "sqlite" not in args.skip:
            bench_sqlite(tmp, args.single, args.batched, args.batch)
        if "postgres" not in args.skip:
            bench_postgres(args.pg_writers, args.pg_per_writer)
        if "big" not in args.skip:
            where = Path(args.dir) if args.dir else tmp
            where.mkdir(parents=True, exist_ok=True)
            skey, vkey = generate_key("bench.example/audit")
            key_file = where / "bench.key"
            if key_file.exists():
                skey = key_file.read_text().strip()
                vkey = Signer.from_skey(skey).vkey
            else:
                key_file.write_text(skey)
                key_file.chmod(0o600)
            print(f"\n== Log of {args.entries:,} entries at {where / 'big.db'}")
            log = build_big(where / "big.db", args.entries, Signer.from_skey(skey))
            bench_proofs(log, args.proofs)
            bench_verify(log, vkey, args.verify_runs)
    print(f"\nparent ru_maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
