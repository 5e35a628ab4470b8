"""Whole-process wall time of `policyengine gate` beside `python3 -c pass`, measured in one run.

Prints the median of several runs of each, and their ratio. The gate run is
the real thing: a fresh process reads the example card, loads and compiles the
built-in packs, reads the model's history from a SQLite log, evaluates,
appends the decision, signs a checkpoint and writes the receipt. One warm-up
run creates the log and the development key first, so the timed runs measure
the steady state of a CI job that reuses its log. Python's bytecode cache is
on for the timed runs, as in any normal installation: an environment that
sets PYTHONDONTWRITEBYTECODE would recompile every module of an editable
install on every run (about 0.2 s more here). Goal: 0.35 s on the reference
machine. Not a timed test: it prints figures.

``--against DIR`` also times the gate of another checkout (say, ``git worktree
add /tmp/before REV``) with this venv, interleaved, in its own directory, and
prints its median and the ratio: a before/after comparison that holds when the
machine's speed drifts.

Usage: python bench/bench_gate.py [--runs N] [--against DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CARD = REPO / "examples" / "cards" / "credit-risk-scorer.yaml"
GOAL_S = 0.35


def _time(cmd: list[str], cwd: Path, env: dict[str, str], expect: int) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != expect:
        raise SystemExit(
            f"{' '.join(cmd)}: expected exit {expect}, got {proc.returncode}: "
            f"{proc.stderr.decode()[-500:]}"
        )
    return elapsed


def _gate_command() -> list[str]:
    script = Path(sys.executable).parent / "policyengine"
    return [str(script)] if script.exists() else [sys.executable, "-m", "policyengine"]


def _work(gate: list[str], env: dict[str, str]) -> Path:
    """A fresh directory with the example card, warmed up: its log, its key, bytecode."""
    work = Path(tempfile.mkdtemp(prefix="bench-gate-"))
    shutil.copy(CARD, work / "card.yaml")
    _time(gate, work, env, 0)
    return work


def main() -> int:
    """Measure and print; exit 0 (figures, not a pass/fail check)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--against", type=Path, metavar="DIR",
                        help="also time the gate of this checkout (another revision)")
    args = parser.parse_args()
    skip = ("CI", "PYTHONDONTWRITEBYTECODE", "PYTHONPATH")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("POLICYENGINE_") and k not in skip
    }
    argv = ["gate", "card.yaml", "--to", "staging", "--receipt", "r.json"]
    gate = [*_gate_command(), *argv]
    other = [sys.executable, "-m", "policyengine", *argv]
    other_env = {**env, "PYTHONPATH": str(args.against.resolve())} if args.against else env
    dirs = [_work(gate, env)] + ([_work(other, other_env)] if args.against else [])
    baseline: list[float] = []
    gated: list[float] = []
    against: list[float] = []
    try:
        for _ in range(args.runs):  # interleaved, so load changes hit all alike
            baseline.append(_time([sys.executable, "-c", "pass"], dirs[0], env, 0))
            gated.append(_time(gate, dirs[0], env, 0))
            if args.against:
                against.append(_time(other, dirs[1], other_env, 0))
    finally:
        for work in dirs:
            shutil.rmtree(work, ignore_errors=True)
    base, med = statistics.median(baseline), statistics.median(gated)
    print(f"python3 -c pass       median {base * 1000:7.1f} ms  ({args.runs} runs)")
    print(
        f"policyengine gate     median {med * 1000:7.1f} ms  ({args.runs} runs, "
        f"min {min(gated) * 1000:.1f} ms, max {max(gated) * 1000:.1f} ms)"
    )
    print(f"ratio gate / python   {med / base:7.1f}x")
    if against:
        then = statistics.median(against)
        print(f"gate of {args.against}  median {then * 1000:7.1f} ms; "
              f"ratio this / that {med / then:5.2f}")
    print(
        f"goal {GOAL_S:.2f} s: {'met' if med <= GOAL_S else 'not met'} "
        f"(gate minus interpreter start "
        f"{(med - base) * 1000:.1f} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
