"""Configuration of the gate: one file, environment variables, command-line flags.

Owns where the audit log lives, which key signs checkpoints, which policies
and trust file apply, per-environment parameter overrides and the promotion
freshness limit. Precedence, highest first: command-line flags, environment
variables (``POLICYENGINE_LOG_URL``, ``POLICYENGINE_SIGNING_KEY``,
``POLICYENGINE_POLICIES``, ``POLICYENGINE_ENV``, ``POLICYENGINE_CONFIG``), the
file ``policyengine.yaml``, built-in defaults.

The defaults make a first run work with nothing configured: a SQLite log at
``.policyengine/audit.db`` and a development signing key generated on first
use at ``.policyengine/dev-signing.key`` (mode 600), announced on stderr. When
``CI=true`` and no key is configured the development key is never used: the
caller gets :class:`KeyUnavailableError` (exit 3) saying how to configure one.

Not handled here: opening the log, evaluating policies (see ``gate.py``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeAlias

from policyengine.errors import ConfigError, KeyUnavailableError

if TYPE_CHECKING:
    from audit.keys import Signer
    from policyengine.config_file import ConfigFile, Witnessing

    _FileData: TypeAlias = "ConfigFile | _NoFile"

__all__ = [
    "CONFIG_FILE",
    "DEV_KEY_NAME",
    "Config",
    "ConfigError",
    "ConfigFile",
    "KeyUnavailableError",
    "builtin_policies_dir",
    "load_config",
    "parse_duration",
]

CONFIG_FILE = "policyengine.yaml"
STATE_DIR = ".policyengine"
DEV_KEY_NAME = "policyengine-dev"
DEFAULT_ORIGIN = "policyengine.local/audit"
DEFAULT_FRESHNESS = timedelta(hours=24)
_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class _NoPromotion:
    max_decision_age: str | int | None = None


@dataclass(frozen=True)
class _NoFile:
    """The defaults of :class:`ConfigFile` when there is no file, without pydantic.

    A gate with nothing configured never imports the file's validator;
    ``tests/policyengine/test_config.py`` proves these equal an empty file validated.
    """

    log: str | None = None
    origin: str | None = None
    signing_key: str | None = None
    log_keys: list[str] = field(default_factory=list)
    policies: str | list[str] | None = None
    trust_file: str | None = None
    allow_unsigned_approvals: bool = False
    environment: str | None = None
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    environments: dict[str, Any] = field(default_factory=dict)
    promotion: _NoPromotion = _NoPromotion()
    witnessing: Witnessing | None = None
    service: dict[str, Any] | None = None


def __getattr__(name: str) -> Any:
    if name in ("ConfigFile", "Witnessing"):  # the file's models, loaded on first use
        from policyengine import config_file

        return getattr(config_file, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parse_duration(text: str | int | None, *, what: str = "duration") -> timedelta:
    """Parse ``90s``, ``30m``, ``24h``, ``7d``, ``2w`` (or a number of seconds).

    Raises:
        ConfigError: the text is not a duration.
    """
    if isinstance(text, bool) or text is None:
        raise ConfigError(f"{what}: expected a duration like 24h or 7d, got {text!r}")
    if isinstance(text, int):
        return timedelta(seconds=text)
    match = _DURATION.match(str(text).strip())
    if not match:
        raise ConfigError(f"{what}: expected a duration like 24h or 7d, got {text!r}")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def builtin_policies_dir() -> Path:
    """The built-in packs: package data in an installed copy, else the checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_data" / "policies", here.parent / "policies"):
        if candidate.is_dir():
            return candidate
    return here.parent / "policies"


@dataclass(frozen=True)
class Config:
    """Resolved configuration; every path is absolute."""

    log_url: str
    """SQLAlchemy URL of the audit log (``sqlite:///...`` or ``postgresql+psycopg://...``)."""
    origin: str
    """Log origin line of checkpoints (C2SP tlog-checkpoint)."""
    policies: tuple[Path, ...]
    """Policy files or directories to load."""
    state_dir: Path
    """Directory for the default log and the development key."""
    signing_key: str | None = None
    """Path to the checkpoint signing key, or None (env var, then development key)."""
    log_keys: tuple[str, ...] = ()
    """Extra verifier keys (vkey text or file paths) trusted for checkpoints."""
    trust_file: Path | None = None
    """Approvers with roles and public keys (``approvers.yaml``)."""
    allow_unsigned_approvals: bool = False
    """Accept unsigned approvals and waivers (local demos only); they are marked unsigned."""
    environment: str | None = None
    """Environment whose parameter overrides apply."""
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Parameter overrides per policy name, for the selected environment."""
    environments: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """All environment sections of the file, for ``params_for``."""
    freshness: timedelta = DEFAULT_FRESHNESS
    """Oldest `allow` decision that ``promote`` accepts."""
    ci: bool = False
    """True when running under CI (``CI=true``): the development key is refused."""
    config_file: Path | None = None
    """The file that was read, if any."""
    witnessing: Witnessing | None = None
    """Witnesses and timestamp authority asked to vouch for each new checkpoint."""
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    """The environment variables the config was resolved from."""

    def params_for(self, stage: str | None = None) -> dict[str, dict[str, Any]]:
        """Parameter overrides: file-wide, then the environment (or the stage's section)."""
        merged: dict[str, dict[str, Any]] = {k: dict(v) for k, v in self.params.items()}
        name = self.environment or stage
        section = self.environments.get(name or "", {}) if name else {}
        for policy, values in (section.get("params") or {}).items():
            merged.setdefault(policy, {}).update(values)
        return merged

    def signer(self, err: TextIO | None = None) -> Signer:
        """The checkpoint signer: configured key, else the development key.

        Raises:
            KeyUnavailableError: the configured key cannot be loaded, or none is
                configured under CI.
        """
        from audit.errors import AuditError
        from audit.keys import load_signer

        try:
            if self.signing_key:
                return load_signer(self.signing_key)
            if self.env.get("POLICYENGINE_SIGNING_KEY"):
                return _load_signer_from_env(self.env)
        except (AuditError, OSError, ValueError) as exc:
            raise KeyUnavailableError(f"signing key unavailable: {exc}") from exc
        if self.ci:
            raise KeyUnavailableError(
                "no signing key configured and CI=true: the development key is never used in CI; "
                "set POLICYENGINE_SIGNING_KEY to a key file (create one with "
                "`policyengine keys generate NAME`) or `signing_key:` in policyengine.yaml"
            )
        return _dev_signer(self.state_dir, err)


def _load_signer_from_env(env: Mapping[str, str]) -> Signer:
    """Load the key named by POLICYENGINE_SIGNING_KEY (a file path or the key text)."""
    from audit.keys import Signer, load_signer

    value = env["POLICYENGINE_SIGNING_KEY"].strip()
    if value.startswith("PRIVATE+KEY+"):
        return Signer.from_skey(value)
    if value.startswith("-----BEGIN"):
        return Signer.from_pem(value.encode())
    return load_signer(value)


def _dev_signer(state_dir: Path, err: TextIO | None) -> Signer:
    """Load or create the local development key (mode 600) and announce it."""
    import sys

    from audit.errors import AuditError
    from audit.keys import Signer, generate_key

    path = state_dir / "dev-signing.key"
    created = False
    if not path.exists():
        skey, vkey = generate_key(DEV_KEY_NAME)
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(skey + "\n")
        (state_dir / "dev-signing.pub").write_text(vkey + "\n")
        created = True
    try:
        signer = Signer.from_skey(path.read_text().strip())
    except (AuditError, OSError, ValueError) as exc:
        raise KeyUnavailableError(f"development key {path} unreadable: {exc}") from exc
    stream = err or sys.stderr
    verb = "generated" if created else "using"
    stream.write(
        f"policyengine: {verb} DEVELOPMENT signing key {path} "
        f"(public key {path.with_suffix('.pub')});"
        " not for CI or production: set POLICYENGINE_SIGNING_KEY\n"
    )
    return signer


def load_config(
    flags: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Config:
    """Resolve the configuration: flags over environment over file over defaults.

    Args:
        flags: values given on the command line (``None`` values are ignored):
            config, log, origin, signing_key, policies, trust_file, env,
            allow_unsigned, freshness.
        env: environment variables (default ``os.environ``).
        cwd: directory relative paths and the default state dir are resolved in.

    Raises:
        ConfigError: the file is unreadable or malformed, or a value is invalid.
    """
    flags = {k: v for k, v in (flags or {}).items() if v not in (None, [], ())}
    env = dict(os.environ if env is None else env)
    cwd = (cwd or Path.cwd()).resolve()
    path = _config_path(flags, env, cwd)
    data: _FileData = _read_file(path) if path else _NoFile()
    base = path.parent if path else cwd
    state_dir = cwd / STATE_DIR

    return Config(
        log_url=_log_url(flags, env, data, base, cwd, state_dir),
        origin=str(flags.get("origin") or data.origin or DEFAULT_ORIGIN),
        policies=_policies(flags, env, data, base, cwd),
        state_dir=state_dir,
        signing_key=_signing_key(flags, data, base, cwd),
        log_keys=tuple(data.log_keys),
        trust_file=_trust_file(flags, data, base, cwd),
        allow_unsigned_approvals=bool(flags.get("allow_unsigned")) or data.allow_unsigned_approvals,
        environment=_environment(flags, env, data, path),
        params=data.params,
        environments={name: {"params": e.params} for name, e in data.environments.items()},
        freshness=_freshness(flags, data),
        ci=env.get("CI", "").lower() in ("true", "1", "yes"),
        config_file=path,
        witnessing=data.witnessing,
        env=env,
    )


def _environment(
    flags: Mapping[str, Any], env: Mapping[str, str], data: _FileData, path: Path | None
) -> str | None:
    """The selected environment, which must be defined under ``environments:``.

    A name that selects nothing is a mistake (``prodution``), not a request for
    no overrides: the gate would decide under the wrong parameters.

    Raises:
        ConfigError: the name is not a key of ``environments:``.
    """
    named = [
        (source, str(name))
        for source, name in (
            ("--env", flags.get("env")),
            ("POLICYENGINE_ENV", env.get("POLICYENGINE_ENV")),
            (f"{path}: environment", data.environment),
        )
        if name
    ]
    known = sorted(data.environments)
    for source, name in named:  # every name given is checked, not only the winning one
        if name not in known:
            from policyengine.strict import did_you_mean

            where = f"in {path}" if path else f"(no {CONFIG_FILE} found)"
            raise ConfigError(
                f"{source}: unknown environment {name!r}: not defined under environments: "
                f"{where}" + did_you_mean(name, known)
            )
    return named[0][1] if named else None


def _config_path(flags: Mapping[str, Any], env: Mapping[str, str], cwd: Path) -> Path | None:
    explicit = flags.get("config") or env.get("POLICYENGINE_CONFIG")
    if explicit:
        path = (cwd / str(explicit)).resolve()
        if not path.is_file():
            raise ConfigError(f"config file {path} not found; fix --config or POLICYENGINE_CONFIG")
        return path
    default = cwd / CONFIG_FILE
    return default if default.is_file() else None


def _read_file(path: Path) -> ConfigFile:
    """Parse and validate ``policyengine.yaml``.

    Raises:
        ConfigError: unreadable, not YAML, or a key or value the model refuses.
    """
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    from policyengine.config_file import ConfigFile
    from policyengine.strict import validate_file

    return validate_file(ConfigFile, {} if data is None else data, str(path))


def _log_url(
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    data: _FileData,
    base: Path,
    cwd: Path,
    state_dir: Path,
) -> str:
    """Flag, then variable (relative to cwd), then file (relative to the file), then default."""
    if flags.get("log") is not None and not str(flags["log"]).strip():
        # An empty --log is a mistake (an unset variable in a CI script), not a
        # request for the default log: the default would gate on another log.
        raise ConfigError(
            "--log is empty: give a log URL (a SQLite path or postgresql+psycopg://...) "
            "or leave the flag out to use the configured log"
        )
    explicit = flags.get("log") or env.get("POLICYENGINE_LOG_URL")
    if explicit:
        return _normalise_log_url(str(explicit), cwd)
    if data.log:
        return _normalise_log_url(data.log, base)
    return f"sqlite:///{state_dir / 'audit.db'}"


def _normalise_log_url(value: str, base: Path) -> str:
    """A plain path means a SQLite file; relative paths resolve against ``base``."""
    if "://" in value:
        if value.startswith("sqlite:///") and not value.startswith("sqlite:////"):
            rel = value[len("sqlite:///") :]
            if rel and not rel.startswith(":memory:"):
                return f"sqlite:///{(base / rel).resolve()}"
        return value
    return f"sqlite:///{(base / value).resolve()}"


def _policies(
    flags: Mapping[str, Any], env: Mapping[str, str], data: _FileData, base: Path, cwd: Path
) -> tuple[Path, ...]:
    if flags.get("policies"):
        return tuple((cwd / str(p)).resolve() for p in flags["policies"])
    if env.get("POLICYENGINE_POLICIES"):
        return tuple(
            (cwd / p).resolve() for p in env["POLICYENGINE_POLICIES"].split(os.pathsep) if p
        )
    if data.policies:
        items = [data.policies] if isinstance(data.policies, str) else data.policies
        return tuple((base / p).resolve() for p in items)
    return (builtin_policies_dir(),)


def _signing_key(
    flags: Mapping[str, Any], data: _FileData, base: Path, cwd: Path
) -> str | None:
    if flags.get("signing_key"):
        return str((cwd / str(flags["signing_key"])).resolve())
    if data.signing_key:
        return str((base / data.signing_key).resolve())
    return None


def _trust_file(
    flags: Mapping[str, Any], data: _FileData, base: Path, cwd: Path
) -> Path | None:
    """Flag, then file, then ``approvers.yaml`` or ``policies/approvers.yaml`` in cwd."""
    if flags.get("trust_file"):
        return (cwd / str(flags["trust_file"])).resolve()
    if data.trust_file:
        return (base / data.trust_file).resolve()
    for candidate in (cwd / "approvers.yaml", cwd / "policies" / "approvers.yaml"):
        if candidate.is_file():
            return candidate
    return None


def _freshness(flags: Mapping[str, Any], data: _FileData) -> timedelta:
    if flags.get("freshness"):
        return parse_duration(flags["freshness"], what="--max-age")
    if data.promotion.max_decision_age is not None:
        return parse_duration(data.promotion.max_decision_age, what="promotion.max_decision_age")
    return DEFAULT_FRESHNESS
