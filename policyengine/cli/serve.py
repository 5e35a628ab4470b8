"""`policyengine serve`: run the HTTP service (FastAPI on uvicorn).

Resolves and checks the configuration first (a bad file, log, key or policy
fails here with exit 2 or 3, not in a worker), then hands the same flags to
every uvicorn worker through the environment (``POLICYENGINE_SERVE_FLAGS``,
``POLICYENGINE_ENGINE``, ``POLICYENGINE_LOG_LEVEL``), so all workers agree.
``--check`` stops after those checks. Each worker opens its own log handle,
key and compiled policies (``service.app.create_app_from_env``).

Several workers on one PostgreSQL log: each groups its own concurrent appends
(``audit._group``), the database's head row lock sequences the groups of all
workers into one chain. Several workers on one SQLite log are allowed too: the
file lock of ``audit._sqlite.AppendQueue`` and ``BEGIN IMMEDIATE`` take their
transactions one at a time, each reading the head it extends inside its own
transaction, so the chain never forks (tests/audit/test_concurrency.py runs four
writer processes on one file); evaluation and history reads run in parallel,
appends do not. Several hosts need PostgreSQL (a SQLite file lock is local).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any, TextIO

from policyengine.cli import EXIT_OK
from policyengine.cli._common import add_config_options, guarded

_ENGINES = ("reference", "fast", "shadow")  # policy.compile.ENGINES, without importing it
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
        default=None,
        metavar="N",
        help="worker processes (default: workers: in the service settings, else 1); they "
        "share one log: PostgreSQL sequences their appends; on SQLite a file lock takes "
        "them one at a time",
    )
    parser.add_argument(
        "--engine",
        choices=_ENGINES,
        default=None,
        help="CEL runtime: fast (native where a rule is proven to decide alike, else "
        "the reference), reference (cel-python only) or shadow (both, compared); "
        "default $POLICYENGINE_ENGINE, else engine: in the service settings, else fast",
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
    if getattr(args, "engine", None):  # the flag wins over the variable, as for gate and eval
        env["POLICYENGINE_ENGINE"] = args.engine
    if getattr(args, "log_level", None):
        env["POLICYENGINE_LOG_LEVEL"] = args.log_level
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
    workers = _workers(args.workers, settings.workers)
    service = open_service(config, settings, err=err)  # fail fast: log, key, tokens usable
    try:
        service.prepare()  # fail fast: policies compile for every stage the settings name
    finally:
        service.close()
    open_tracing(settings.tracing).shutdown()  # fail fast: tracing configured without the extra
    if args.check:
        out.write(f"policyengine serve: configuration ok (log {_masked(config.log_url)}, "
                  f"engine {_engine_text(settings.engine)})\n")
        return EXIT_OK
    if workers > 1 and config.log_url.startswith("sqlite"):
        err.write(
            f"policyengine serve: note: {workers} workers share the SQLite log: evaluations run "
            "in parallel, appends one at a time under its file lock; a PostgreSQL log "
            "(--log postgresql+psycopg://...) sequences them in the database\n"
        )
    out.write(
        f"policyengine serve: http://{args.host}:{args.port} log {_masked(config.log_url)} "
        f"workers {workers} engine {_engine_text(settings.engine)}\n"
    )
    out.flush()
    uvicorn.run(
        "policyengine.service.app:create_app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=workers,
        log_level=args.log_level,
        access_log=False,  # the service logs one structured line per request itself
    )
    return EXIT_OK


def _workers(flag: int | None, configured: int) -> int:
    """``--workers``, else the settings' ``workers:``.

    Raises:
        ConfigError: ``--workers`` is below 1.
    """
    from policyengine.errors import ConfigError

    if flag is None:
        return configured
    if flag < 1:
        raise ConfigError(f"--workers: expected a number of worker processes of at least 1, "
                          f"got {flag}")
    return flag


def _engine_text(engine: str) -> str:
    """The engine, and whether the native runtime behind the fast path is installed."""
    from policyengine.policy.cel_native import AVAILABLE

    if engine == "reference":
        return engine
    if AVAILABLE:
        return f"{engine} (native runtime cel-expr-python)"
    return f"{engine} (cel-expr-python not installed: every rule runs on the reference)"


def _masked(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url
