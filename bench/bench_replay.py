"""Replays per second: ``replay_all`` over a log of N real gate decisions.

Builds the log through the library (the test log builder's ``build_batched``:
each decision evaluated and recorded as ``gate`` does, on distinct versions,
staging allows and production denies, written in signed batches), then times
``replay_all`` (payload and history digests re-hashed, bundle found and
compiled once, evaluate, whole-Decision compare) against a baseline
measured in the same run: plain ``evaluate`` of the same recorded inputs
under the same compiled set. Goal: 1,000 replays/s with the fast
evaluation path (``POLICYENGINE_ENGINE=fast``, the default here). Not a
test: run it by hand.

    python bench/bench_replay.py                  # N = 10,000
    python bench/bench_replay.py --decisions 2000 --engine reference
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GOAL = 1000.0
"""Replays per second wanted with the fast path."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=10_000)
    parser.add_argument("--engine", choices=("fast", "reference"), default="fast")
    args = parser.parse_args()
    os.environ["POLICYENGINE_ENGINE"] = args.engine

    from policyengine.bundles import compile_bundle, find_bundle, replay_inputs
    from policyengine.policy import Context, evaluate
    from policyengine.replay import replay_all
    from tests.policyengine.replaylog import build_batched, open_engine

    with tempfile.TemporaryDirectory() as tmp:
        engine = open_engine(Path(tmp))
        started = time.perf_counter()
        build_batched(engine, args.decisions)
        built = time.perf_counter() - started
        print(f"built {args.decisions} decisions in {built:.1f}s "
              f"({args.decisions / built:.0f} decisions/s, engine {args.engine})")
        log = engine.log

        started = time.perf_counter()
        results = list(replay_all(log))
        replay_s = time.perf_counter() - started
        faults = sum(1 for r in results if not r.reproduced)

        decisions = list(log.query(types=["decision"]))
        inputs = [replay_inputs(e.payload) for e in decisions]
        digest = inputs[0].decision["bundle_digest"]
        compiled = compile_bundle(find_bundle(log, digest).payload)
        started = time.perf_counter()
        for item in inputs:
            evaluate(compiled, Context(item.card, item.event, item.history), item.now)
        baseline_s = time.perf_counter() - started
        engine.close()

    rate, base = len(results) / replay_s, len(inputs) / baseline_s
    print(f"replay_all:        {rate:8.0f} replays/s  ({len(results)} decisions, "
          f"{faults} not reproduced)")
    print(f"baseline evaluate: {base:8.0f} evaluations/s (same inputs, same compiled set)")
    print(f"replay / evaluate: {rate / base:.2f}x")
    met = "met" if rate >= GOAL else "not met"
    print(f"goal {GOAL:.0f} replays/s with engine {args.engine}: {met}")
    return 0 if faults == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
