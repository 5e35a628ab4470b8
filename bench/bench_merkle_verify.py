"""Full verification throughput against a plain SHA-256 baseline, measured in one run.

Generates N entries in memory exactly as the log stores them (canonical
envelope, leaf hash, payload, prev chain) with a signed checkpoint every
10,000 entries, then times :class:`audit.verify.Verifier` over them and,
as the baseline, plain ``hashlib.sha256`` over the same envelope and
payload bytes. Prints entries/s for both and their ratio.

    python bench/bench_merkle_verify.py [N] [--rounds R]   # default 200,000; goal 200,000/s
"""

from __future__ import annotations

import argparse
import hashlib
import time
import tracemalloc
from collections.abc import Iterator

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.canonical import dumps, dumps_envelope
from audit.keys import Signer
from audit.merkle import CompactRange
from audit.note import Checkpoint, sign_note
from audit.records import StoredCheckpoint, StoredEntry
from audit.verify import Verifier

ORIGIN = "bench.example/audit"
CHECKPOINT_EVERY = 10_000
GOAL = 200_000


def build(n: int, signer: Signer) -> tuple[list[StoredEntry], list[StoredCheckpoint]]:
    """Return ``n`` stored entries and the signed checkpoints over them."""
    entries: list[StoredEntry] = []
    checkpoints: list[StoredCheckpoint] = []
    cr = CompactRange()
    prev = "0" * 64
    for seq in range(n):
        payload = dumps(
            {
                "decision": "allow" if seq % 7 else "deny",
                "rules": seq % 13,
                "model": "credit-risk",
                "stage": "production",
            }
        )
        env = dumps_envelope(
            {
                "v": 1,
                "log": ORIGIN,
                "seq": seq,
                "time": "2026-11-26T15:00:00.123456Z",
                "type": "decision",
                "actor": "ci@example.org",
                "subject": {
                    "name": "credit-risk",
                    "version": str(seq % 50),
                    "digest": "sha256:" + "ab" * 32,
                },
                "payload_digest": "sha256:" + hashlib.sha256(payload).hexdigest(),
                "prev": prev,
            }
        )
        leaf = hashlib.sha256(b"\x00" + env).digest()
        entries.append(StoredEntry(seq, env, leaf, payload, False))
        cr.append(leaf)
        prev = leaf.hex()
        if (seq + 1) % CHECKPOINT_EVERY == 0 or seq + 1 == n:
            body = Checkpoint(ORIGIN, seq + 1, cr.root()).body()
            checkpoints.append(StoredCheckpoint(seq + 1, sign_note(body, [signer])))
    return entries, checkpoints


def baseline(entries: list[StoredEntry]) -> float:
    """Seconds to SHA-256 every envelope and payload once (the floor)."""
    sha = hashlib.sha256
    start = time.perf_counter()
    for e in entries:
        sha(e.envelope).digest()
        sha(e.payload or b"").digest()
    return time.perf_counter() - start


def streamed(entries: list[StoredEntry]) -> Iterator[StoredEntry]:
    """Hand entries over one by one, as a store cursor would."""
    yield from entries


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=200_000, help="entries to verify")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (best is kept)")
    args = parser.parse_args(argv)
    signer = Signer(ORIGIN, Ed25519PrivateKey.generate())
    entries, checkpoints = build(args.n, signer)
    verifier = Verifier([signer.verifier()], ORIGIN)
    # Alternate baseline and verification rounds so load changes hit both alike.
    base = best = float("inf")
    for _ in range(args.rounds):
        base = min(base, baseline(entries))
        start = time.perf_counter()
        report = verifier.verify(streamed(entries), iter(checkpoints))
        best = min(best, time.perf_counter() - start)
        assert report.ok, report.message
    tracemalloc.start()
    verifier.verify(streamed(entries), iter(checkpoints))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    n = args.n
    print(f"entries:                      {n:,} ({len(checkpoints)} signed checkpoints), "
          f"best of {args.rounds} rounds")
    print(f"baseline sha256 (env+payload): {n / base:12,.0f} entries/s")
    print(
        f"full verification:             {n / best:12,.0f} entries/s "
        f"(goal {GOAL:,}: {'met' if n / best >= GOAL else 'not met'})"
    )
    print(f"ratio verification/baseline:   {base / best:12.3f}")
    print(f"verifier peak traced memory:   {peak / 1024:12,.1f} KiB (entries already in memory)")


if __name__ == "__main__":
    main()
