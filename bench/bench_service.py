"""Load test of ``POST /v1/decisions`` on loopback.

Starts ``policyengine serve`` (built-in policy packs, the credit-risk example
card, a fresh SQLite log unless ``--log`` names another), then drives it at a
fixed concurrency with ``wrk`` (Debian package ``wrk``; bounded by
``--seconds``) or, when wrk is absent, a bounded asyncio/httpx generator
(``--seconds`` and ``--max-requests``). Each request decides a new model
version, as a CI pipeline would. Prints decisions/s, p50 and p99 latency, and
the same run's baseline: ``GET /healthz`` through the same stack, so the ratio
shows what a decision costs over an empty request.

Goal: 500 decisions/s with p99 under 50 ms. The service runs as deployed:
log level info (one access line per request), its default engine, and the
clock starts once every worker has compiled its policies and one decision
has warmed the log. Also printed: how many appends shared one commit
(``policyengine_log_commits`` of the worker answering ``/metrics``).

    python bench/bench_service.py [--seconds 10] [--concurrency 16] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent
TOKEN = "bench-evaluator-token"
_LUA = """
counter = 0
template = [==[%s]==]
request = function()
  counter = counter + 1
  local version = tostring(counter) .. "-" .. tostring(math.random(1, 1000000000))
  local body = string.gsub(template, "__VERSION__", version)
  return wrk.format("POST", "/v1/decisions", {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer %s"}, body)
end
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _setup(root: Path, policies: str) -> list[str]:
    from audit.keys import generate_key
    from policyengine.service import hash_token

    skey, _ = generate_key("pe-bench")
    key = root / "signing.key"
    key.write_text(skey + "\n")
    key.chmod(0o600)
    tokens = [{"id": "bench", "sha256": hash_token(TOKEN), "roles": ["evaluator", "auditor"]}]
    (root / "service.yaml").write_text(yaml.safe_dump({"tokens": tokens}))
    return [
        "--signing-key",
        str(key),
        "--service-config",
        str(root / "service.yaml"),
        "--policies",
        policies,
    ]


def _start(
    root: Path, log_url: str, workers: int, policies: str
) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "policyengine",
        "serve",
        "--port",
        str(port),
        "--log",
        log_url,
        "--workers",
        str(workers),
        "--log-level",
        "info",  # as deployed: one access line per request (and worker_ready, awaited below)
        *_setup(root, policies),
    ]
    env = {**os.environ, "CI": ""}
    logfile = (root / "service.log").open("wb")
    proc = subprocess.Popen(
        cmd, stdout=logfile, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        # Every worker compiles its policies before serving, holding a core for a
        # second or more: the clock starts once all of them said worker_ready.
        ready = (root / "service.log").read_text(errors="replace").count('"worker_ready"')
        try:
            if ready >= workers and httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit(f"service did not start:\n{(root / 'service.log').read_text()[-2000:]}")


def _cpu_seconds(group: int) -> float | None:
    """CPU seconds (user + system) used so far by the live processes of process group
    ``group`` (the service and its workers), from /proc; None where there is no /proc.

    On a shared machine the rate depends on what else runs; CPU per decision
    says what a decision costs the service whatever the neighbours do.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[2]) == group:  # pgrp; utime and stime follow at 11 and 12
            total += int(fields[11]) + int(fields[12])
    return total / tick


def _commits(url: str) -> tuple[float, float]:
    """(appends timed, append transactions) of the worker that answers ``/metrics``."""
    text = httpx.get(url + "/metrics", timeout=10).text
    found = dict.fromkeys(("policyengine_log_append_seconds_count", "policyengine_log_commits"),
                          0.0)
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in found:
            found[name] = float(value)
    return found["policyengine_log_append_seconds_count"], found["policyengine_log_commits"]


def _warm_up(url: str) -> None:
    """One decision first, so the policies are compiled before the clock starts."""
    body = json.loads(json.dumps(_body()).replace("__VERSION__", "warm-up"))
    r = httpx.post(
        url + "/v1/decisions", json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120
    )
    if r.status_code != 200:
        raise SystemExit(f"warm-up decision failed: {r.status_code} {r.text[:500]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the service's process group; SIGKILL it if requests still hold it after 10 s."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _body() -> dict[str, Any]:
    card = yaml.safe_load((REPO / "examples" / "cards" / "credit-risk-scorer.yaml").read_text())
    card["model"]["version"] = "__VERSION__"
    return {"card": card, "event": {"type": "promote", "stage": "staging"}}


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"latency: expected a number with us/ms/s, got {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _wrk(
    url: str, path: str, seconds: int, concurrency: int, script: Path | None
) -> dict[str, float]:
    threads = str(min(concurrency, os.cpu_count() or 1))
    cmd = [
        "wrk",
        "-t",
        threads,
        "-c",
        str(concurrency),
        "-d",
        f"{seconds}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    if script:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url + path], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rate": rate,
        "p50": p50,
        "p99": p99,
        "requests": total,
        "errors": int(bad.group(1)) if bad else 0,
    }


async def _python_load(
    url: str, path: str, seconds: int, concurrency: int, limit: int, body: dict[str, Any] | None
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    sent = 0
    deadline = time.perf_counter() + seconds
    template = json.dumps(body) if body else None

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors, sent
        while time.perf_counter() < deadline and sent < limit:
            sent += 1
            start = time.perf_counter()
            if template is None:
                r = await client.get(url + path)
            else:
                content = template.replace("__VERSION__", f"{sent}-{os.getpid()}")
                r = await client.post(
                    url + path,
                    content=content,
                    headers={
                        "Authorization": f"Bearer {TOKEN}",
                        "Content-Type": "application/json",
                    },
                )
            latencies.append((time.perf_counter() - start) * 1000)
            errors += r.status_code >= 300

    began = time.perf_counter()
    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    q = statistics.quantiles(latencies, n=100)
    return {
        "rate": len(latencies) / elapsed,
        "p50": q[49],
        "p99": q[98],
        "requests": len(latencies),
        "errors": errors,
    }


def _measure(
    args: argparse.Namespace,
    url: str,
    root: Path,
    path: str,
    body: dict[str, Any] | None,
    seconds: int,
) -> dict[str, float]:
    if args.generator == "wrk":
        script = None
        if body is not None:
            script = root / "decide.lua"
            script.write_text(_LUA % (json.dumps(body), TOKEN))
        return _wrk(url, path, seconds, args.concurrency, script)
    return asyncio.run(_python_load(url, path, seconds, args.concurrency, args.max_requests, body))


def main(argv: list[str] | None = None) -> int:
    """Run the load test and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="duration of the decision run")
    parser.add_argument("--concurrency", type=int, default=16, help="connections kept busy")
    parser.add_argument("--workers", type=int, default=1, help="service worker processes")
    parser.add_argument("--log", help="log URL (default: a fresh SQLite file)")
    parser.add_argument(
        "--max-requests", type=int, default=20000, help="bound for the Python generator"
    )
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument(
        "--policies",
        default=str(REPO / "policies"),
        help="policy files or directory (default: the built-in packs)",
    )
    args = parser.parse_args(argv)
    if args.generator == "auto":
        args.generator = "wrk" if shutil.which("wrk") else "python"
    root = Path(tempfile.mkdtemp(prefix="pe-bench-"))
    proc, url = _start(
        root, args.log or f"sqlite:///{root / 'audit.db'}", args.workers, args.policies
    )
    try:
        base = _measure(args, url, root, "/healthz", None, max(2, args.seconds // 3))
        _warm_up(url)
        cpu_before = _cpu_seconds(proc.pid)
        dec = _measure(args, url, root, "/v1/decisions", _body(), args.seconds)
        cpu_after = _cpu_seconds(proc.pid)
        appends, commits = _commits(url)
    finally:
        _stop(proc)
        shutil.rmtree(root, ignore_errors=True)
    log_kind = args.log.split(":")[0] if args.log else "sqlite"
    print(
        f"generator {args.generator}, concurrency {args.concurrency}, workers {args.workers}, "
        f"{args.seconds} s, policies {Path(args.policies).name}, log {log_kind}"
    )
    print(
        f"baseline GET /healthz:  {base['rate']:8.1f} req/s  "
        f"p50 {base['p50']:7.2f} ms  p99 {base['p99']:7.2f} ms"
    )
    print(
        f"POST /v1/decisions:     {dec['rate']:8.1f} dec/s  "
        f"p50 {dec['p50']:7.2f} ms  p99 {dec['p99']:7.2f} ms"
        f"  ({int(dec['requests'])} requests, {int(dec['errors'])} non-2xx)"
    )
    if cpu_before is not None and cpu_after is not None and dec["requests"]:
        used = cpu_after - cpu_before
        print(f"service CPU: {used:.1f} s over the run, {used / dec['requests'] * 1000:.1f} ms "
              f"per decision ({os.cpu_count()} cores on this machine, shared with what else runs)")
    if commits:
        print(f"group commit (one worker's /metrics): {appends:.0f} appends in {commits:.0f} "
              f"transactions, {appends / commits:.2f} per commit")
    print(
        f"ratio decisions/healthz: {dec['rate'] / base['rate']:.3f}; "
        "goal 500 dec/s with p99 < 50 ms: "
        f"{'met' if dec['rate'] >= 500 and dec['p99'] < 50 else 'not met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
