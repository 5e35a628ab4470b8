"""`policyengine serve`: run the HTTP service (FastAPI on uvicorn).

Resolves and checks the configuration first (a bad file, log or key fails
here with exit 2 or 3, not in a worker), then hands the same flags to every
uvicorn worker through the environment (``POLICYENGINE_SERVE_FLAGS``), so all
workers agree. ``--check`` stops after those checks. Several workers may share
a SQLite log (SQLite's file lock serialises their appends, so the chain never
forks) and get a warning that they gain nothing for writes; several hosts need
a PostgreSQL log.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any, TextIO

from policyengine.cli import EXIT_OK
from policyengine.cli._common import add_config_options, guarded

_FLAG_KEYS = ("config", "log", "signing_key", "trust_file", "env", "allow_unsigned", "policies")


def register(subparsers: Any) -> None:
    """Add the ``serve`` command."""
    parser = subparsers.add_parser(
        "serve",
        help="run the policy service (REST API, webhooks, audit queries, metrics)",
        description="Serve the REST API on HOST:PORT. "
        "Exit 2 bad configuration, 3 log or key unavailable.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes; on a SQLite log they share one file lock (allowed, with a "
        "warning: appends do not get faster); several hosts need a PostgreSQL log",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="check the configuration, service settings, tokens, log and key, then exit "
        "(0 ok, 2 bad configuration, 3 log or key unavailable) without serving",
    )
    parser.add_argument(
        "--service-config",
        metavar="FILE",
        help="service settings: tokens, webhook secrets, MLflow (env POLICYENGINE_SERVICE_CONFIG)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    add_config_options(parser)
    parser.set_defaults(func=guarded(_run))


def serve_environment(args: argparse.Namespace) -> dict[str, str]:
    """Environment variables that make every worker resolve this configuration."""
    flags = {k: getattr(args, k, None) for k in _FLAG_KEYS}
    for key in ("config", "log", "signing_key", "trust_file"):
        value = flags.get(key)
        if value and "://" not in str(value):
            flags[key] = os.path.abspath(str(value))
    policies = flags.get("policies") or []
    if policies:
        flags["policies"] = [os.path.abspath(str(p)) for p in policies]
    env = {
        "POLICYENGINE_SERVE_FLAGS": json.dumps({k: v for k, v in flags.items() if v is not None})
    }
    if args.service_config:
        env["POLICYENGINE_SERVICE_CONFIG"] = os.path.abspath(args.service_config)
    return env


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import uvicorn

    from policyengine.config import load_config
    from policyengine.service.runtime import open_service
    from policyengine.service.settings import load_service_settings
    from policyengine.service.tracing import open_tracing

    os.environ.update(serve_environment(args))
    flags = json.loads(os.environ["POLICYENGINE_SERVE_FLAGS"])
    config = load_config(flags)
    settings = load_service_settings(config_file=config.config_file)
    open_service(config, settings, err=err).close()  # fail fast: log, key, tokens usable
    open_tracing(settings.tracing).shutdown()  # fail fast: tracing configured without the extra
    if args.check:
        out.write(f"policyengine serve: configuration ok (log {_masked(config.log_url)})\n")
        return EXIT_OK
    if args.workers > 1 and config.log_url.startswith("sqlite"):
        err.write(
            "policyengine serve: warning: several workers on a SQLite log serialise on one "
            "file lock; "
            "use a PostgreSQL log (--log postgresql+psycopg://...) for more than one writer\n"
        )
    out.write(
        f"policyengine serve: http://{args.host}:{args.port} log {_masked(config.log_url)} "
        f"workers {args.workers}\n"
    )
    out.flush()
    uvicorn.run(
        "policyengine.service.app:create_app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=False,  # the service logs one structured line per request itself
    )
    return EXIT_OK


def _masked(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url
