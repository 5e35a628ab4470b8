"""Start real servers for integration tests: ``policyengine serve`` and MLflow.

Each server is a subprocess on loopback with its own free port, logging to a
file in the test's directory; ``stop`` ends exactly the process started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from tests.service.conftest import GENERIC_SECRET, MLFLOW_SECRET, POLICY, TOKENS, write_key


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A started subprocess and where it listens."""

    proc: subprocess.Popen[bytes]
    url: str
    logfile: Path

    def stop(self) -> None:
        """Terminate the process group this server started, then wait."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)

    def tail(self) -> str:
        """The end of the server's log, for failure messages."""
        return self.logfile.read_text(errors="replace")[-3000:] if self.logfile.exists() else ""


def start(
    cmd: Sequence[str],
    env: Mapping[str, str],
    logfile: Path,
    url: str,
    ready_path: str,
    timeout: float = 90.0,
) -> Server:
    """Start ``cmd`` in its own process group and wait until ``ready_path`` answers 200."""
    out = logfile.open("wb")
    proc = subprocess.Popen(
        list(cmd),
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, **env},
        start_new_session=True,
    )
    server = Server(proc, url, logfile)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[2:4]} exited with {proc.returncode}:\n{server.tail()}")
        try:
            if httpx.get(url + ready_path, timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"{cmd[2:4]} not ready after {timeout} s:\n{server.tail()}")


def service_files(root: Path, *, mlflow_uri: str | None = None) -> list[str]:
    """Write policies, key and service config into ``root``; return the serve flags."""
    from policyengine.service import hash_token

    policies = root / "policies"
    policies.mkdir(exist_ok=True)
    (policies / "svc.yaml").write_text(POLICY)
    tokens = [
        {"id": f"{role}-1", "sha256": hash_token(t), "roles": [role]} for role, t in TOKENS.items()
    ]
    settings: dict[str, object] = {"tokens": tokens}
    if mlflow_uri:
        settings["mlflow"] = {"tracking_uri": mlflow_uri, "on_violation": "revert"}
    (root / "service.yaml").write_text(yaml.safe_dump(settings))
    return [
        "--signing-key",
        str(write_key(root)),
        "--policies",
        str(policies),
        "--service-config",
        str(root / "service.yaml"),
        "--allow-unsigned",
    ]


def start_service(
    root: Path,
    log_url: str,
    *,
    mlflow_uri: str | None = None,
    workers: int = 1,
    name: str = "service",
    log_level: str = "warning",
) -> Server:
    """``policyengine serve`` on a free loopback port over ``log_url``."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "policyengine",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log",
        log_url,
        "--workers",
        str(workers),
        "--log-level",
        log_level,
        *service_files(root, mlflow_uri=mlflow_uri),
    ]
    env = {
        "POLICYENGINE_MLFLOW_WEBHOOK_SECRET": MLFLOW_SECRET,
        "POLICYENGINE_WEBHOOK_SECRET": GENERIC_SECRET,
        "CI": "",
        "PYTHONUNBUFFERED": "1",
    }
    return start(cmd, env, root / f"{name}.log", f"http://127.0.0.1:{port}", "/readyz")


MLFLOW_ENV = {
    "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
    "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
}


def start_mlflow(root: Path) -> Server:
    """An MLflow 3 tracking server with a SQLite backend (webhooks need SQL) on loopback."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--default-artifact-root",
        str(root / "mlartifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    return start(
        cmd, MLFLOW_ENV, root / "mlflow.log", f"http://127.0.0.1:{port}", "/health", timeout=120
    )
