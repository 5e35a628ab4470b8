"""``serve --workers N``: N worker processes, each prepared on its own, one chain in the log."""

from __future__ import annotations

import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from policyengine.cli import main
from tests.service.conftest import auth, example_card, verify_chain
from tests.service.servers import Server, service_files, start_service

DECISIONS = 40

pytestmark = pytest.mark.usefixtures("clean_serve_environment")


def _check(tmp_path: Path, flags: list[str], *extra: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["serve", "--check", "--log", f"sqlite:///{tmp_path / 'a.db'}", *flags, *extra],
                out=out, err=err)
    return code, err.getvalue()


def test_workers_below_one_are_refused(tmp_path: Path) -> None:
    """``--workers 0`` is a configuration error (exit 2) that names the flag."""
    code, err = _check(tmp_path, service_files(tmp_path), "--workers", "0")
    assert code == 2 and "--workers" in err and "Traceback" not in err


def test_workers_setting_below_one_is_refused(tmp_path: Path) -> None:
    """``workers: 0`` in the service settings is refused at start-up, naming the key."""
    flags = service_files(tmp_path)
    settings = Path(flags[flags.index("--service-config") + 1])
    settings.write_text(settings.read_text() + "workers: 0\n")
    code, err = _check(tmp_path, flags)
    assert code == 2 and "workers" in err


def _ready_workers(server: Server, want: int) -> set[int]:
    """Pids of the workers that logged ``worker_ready`` (waits until ``want`` did, or 60 s)."""
    pids: set[int] = set()
    deadline = time.monotonic() + 60
    while len(pids) < want and time.monotonic() < deadline:
        for line in server.logfile.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"worker_ready"' in line:
                pids.add(int(json.loads(line)["pid"]))
        time.sleep(0.2)
    return pids


def _decide(url: str, i: int) -> int:
    card = example_card(auc=0.9 if i % 2 else 0.5, version=f"w{i}", digest_seed=str(i))
    body = {"card": card, "event": {"type": "promote", "stage": "production"}}
    with httpx.Client(timeout=60) as http:  # a connection per request: either worker may take it
        return http.post(f"{url}/v1/decisions", json=body, headers=auth("evaluator")).status_code


def _two_workers_one_chain(tmp_path: Path, log_url: str) -> None:
    server = start_service(tmp_path, log_url, workers=2, log_level="info")
    try:
        assert len(_ready_workers(server, 2)) == 2, server.tail()
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda i: _decide(server.url, i), range(DECISIONS)))
        assert statuses == [200] * DECISIONS, server.tail()
        r = httpx.get(f"{server.url}/v1/audit/entries", params={"limit": 1000},
                      headers=auth("auditor"))
        entries = r.json()["entries"]
    finally:
        server.stop()
    seqs = [e["seq"] for e in entries]
    decisions = [e for e in entries if e["envelope"]["type"] == "decision"]
    assert seqs == list(range(len(seqs))) and len(decisions) == DECISIONS
    report = verify_chain(log_url, tmp_path / "signing.key")
    assert report.ok, report.message


@pytest.mark.slow
@pytest.mark.postgres
def test_two_workers_on_postgresql_keep_one_chain(tmp_path: Path, pg_url: str) -> None:
    """Two workers of one serve on PostgreSQL: every decision lands in one verified chain."""
    _two_workers_one_chain(tmp_path, pg_url)


@pytest.mark.slow
def test_two_workers_on_sqlite_keep_one_chain(tmp_path: Path) -> None:
    """Two workers of one serve on SQLite: the file lock keeps one verified chain."""
    _two_workers_one_chain(tmp_path, f"sqlite:///{tmp_path / 'audit.db'}")
