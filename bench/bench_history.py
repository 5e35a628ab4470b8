"""Cost of building a gate decision's history at 10 to 100,000 earlier entries of its model.

The earlier entries are decisions of the same model version (what piles up
when a pipeline gates one version again and again), plus the few signed
approvals, a waiver, evidence and a registered event every version has. Each
figure is the median of ``--repeat`` builds of the history the built-in
packs read (what ``policyengine gate`` builds, ``CompiledPolicySet.history_reads``),
measured in rounds over every size, and printed beside the same run's cost
at the smallest size (the baseline); the goal is a ratio of at most 1.5 at
100,000. The history of every list (what
a policy reading ``history.decisions`` gets) is shown for comparison: that
one must grow, since it returns every decision.

Usage: python bench/bench_history.py [--sizes 10 1000 10000 100000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Collection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audit.keys import Signer, generate_key
from audit.log import AuditLog, NewEntry
from policyengine.approvals import (
    approval_statement,
    load_trust,
    sign_statement,
    waiver_statement,
)
from policyengine.history import build_history
from policyengine.policy import compile_policies, load_policies
from policyengine.trust import TrustStore

REPO = Path(__file__).resolve().parent.parent
MODEL, VERSION = "credit-risk-scorer", "2.3.0"
SUBJECT = {"name": MODEL, "version": VERSION, "digest": "sha256:" + "3e" * 32}
GOAL = 1.5
_BATCH = 5000


def _trust(folder: Path) -> tuple[TrustStore, dict[str, Signer]]:
    keys = {who: generate_key(who) for who in ("bob", "carol")}
    path = folder / "approvers.yaml"
    path.write_text("approvers:\n" + "".join(
        f"  - {{id: {who}, roles: [{role}], keys: ['{keys[who][1]}']}}\n"
        for who, role in (("bob", "model-risk"), ("carol", "domain-owner"))))
    return load_trust(path), {who: Signer.from_skey(k[0]) for who, k in keys.items()}


def _fixed(signers: dict[str, Signer]) -> list[NewEntry]:
    """The entries every version has, whatever its number of decisions."""
    fixed = [NewEntry("registered", SUBJECT, "mlflow", {"type": "registered"})]
    for who, role in (("bob", "model-risk"), ("carol", "domain-owner")):
        st = approval_statement(model=MODEL, version=VERSION, digest=SUBJECT["digest"],
                                role=role, approver=who, time="2026-11-26T15:00:00Z",
                                expires=None)
        fixed.append(NewEntry("approval", SUBJECT, who, {
            "statement": st, "signature": sign_statement(st, signers[who])}))
    st = waiver_statement(waiver_id="w-1", rules=["slo/latency-p95"], model=MODEL, version=None,
                          versions=None, reason="r", ticket="T", approver="carol",
                          time="2026-11-26T15:00:00Z", expires="2099-01-01T00:00:00Z")
    fixed.append(NewEntry("waiver", {"name": MODEL}, "carol", {
        "statement": st, "signature": sign_statement(st, signers["carol"])}))
    fixed.append(NewEntry("evidence", SUBJECT, "ci", {"kind": "drift", "drift": {"share": 0.1}}))
    return fixed


def _build(path: Path, decisions: int, fixed: list[NewEntry]) -> AuditLog:
    log = AuditLog.open(f"sqlite:///{path}")
    log.append_many(fixed)
    card = {"model": {"name": MODEL, "version": VERSION}, "pad": "x" * 2000}
    for lo in range(0, decisions, _BATCH):
        log.append_many([
            NewEntry("decision", SUBJECT, "ci", {
                "decision": {"id": f"d{i}", "allow": i % 2 == 0, "bundle_digest": "sha256:00"},
                "event": {"stage": "staging"}, "card": card})
            for i in range(lo, min(decisions, lo + _BATCH))])
    return log


def _once_ms(log: AuditLog, trust: TrustStore, reads: Collection[str] | None) -> float:
    start = time.perf_counter()
    build_history(log, model=MODEL, version=VERSION, trust=trust, reads=reads)
    return (time.perf_counter() - start) * 1000


def main() -> int:
    """Measure and print; exit 0 (figures), 1 when the packs' ratio misses the goal."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1000, 10000, 100000])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    packs = compile_policies(load_policies([REPO / "policies"])).history_reads
    print(f"built-in packs read: {sorted(packs)}")
    missed = False
    with tempfile.TemporaryDirectory(prefix="bench-history-") as scratch:
        trust, signers = _trust(Path(scratch))
        fixed = _fixed(signers)
        logs = {size: _build(Path(scratch) / f"h{size}.db", size, fixed) for size in args.sizes}
        for label, reads, repeat in (("packs' lists", packs, args.repeat),
                                     ("every list", None, max(3, args.repeat // 10))):
            # Rounds over every size in turn, so a machine that slows down or
            # speeds up mid-run moves every size's figures alike.
            times: dict[int, list[float]] = {size: [] for size in args.sizes}
            for _ in range(repeat):
                for size, log in logs.items():
                    times[size].append(_once_ms(log, trust, reads))
            base = statistics.median(times[args.sizes[0]])
            for size in args.sizes:
                ms = statistics.median(times[size])
                ratio = ms / base
                line = (f"{size:>7,} earlier decisions, {label:<13} median {ms:9.2f} ms"
                        f"   baseline ({args.sizes[0]:,}) {base:.2f} ms, ratio {ratio:.2f}")
                if reads is not None:
                    met = ratio <= GOAL
                    missed |= not met
                    line += f"   goal <= {GOAL}x {'MET' if met else 'NOT MET'}"
                print(line, flush=True)
        for log in logs.values():
            log.close()
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
