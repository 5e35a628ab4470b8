"""Configuration of the HTTP service (what the gate's configuration lacks).

Owns the service's own settings: the bearer-token file, webhook secrets (read
from environment variables, never from the file), request limits, and the
MLflow integration (tracking URI, alias -> stage map, what to do with an alias
moved without an ``allow``, which tags or run artifact carry card fields).
Where the log lives, which key signs and which policies apply come from the
gate's :class:`policyengine.config.Config`, so the CLI and the service agree.

Read from the ``service:`` section of ``policyengine.yaml``, or from a file of
its own (``--service-config`` or ``POLICYENGINE_SERVICE_CONFIG``, which wins)::

    tokens_file: tokens.yaml            # see policyengine.service.auth
    limits: {max_body_bytes: 1048576, max_json_depth: 64}
    webhooks:
      max_age_seconds: 300
      generic_secret_env: POLICYENGINE_WEBHOOK_SECRET
    mlflow:
      tracking_uri: http://127.0.0.1:5000
      secret_env: POLICYENGINE_MLFLOW_WEBHOOK_SECRET
      aliases: {production: production, staging: staging, champion: production}
      on_violation: revert             # revert (else delete) | delete | record
      card_tag: policyengine.card       # tag holding a whole card as JSON
      card_artifact: model_card.json    # run artifact holding a card
      tag_fields: {risk_tier: risk_tier, owner: owner.team}
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from policyengine.errors import ConfigError

__all__ = ["LimitSettings", "MlflowSettings", "ServiceSettings", "load_service_settings"]

_VIOLATION_ACTIONS = ("revert", "delete", "record")


@dataclass(frozen=True)
class LimitSettings:
    """Request limits applied before any handler logic."""

    max_body_bytes: int = 1_048_576
    max_json_depth: int = 64


@dataclass(frozen=True)
class MlflowSettings:
    """How MLflow registry webhooks are verified and acted on."""

    tracking_uri: str | None = None
    secret: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    aliases: Mapping[str, str] = field(
        default_factory=lambda: {
            "production": "production",
            "staging": "staging",
            "champion": "production",
        }
    )
    on_violation: str = "revert"
    card_tag: str = "policyengine.card"
    card_artifact: str | None = "model_card.json"
    tag_fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceSettings:
    """Everything the service needs beyond the gate's configuration."""

    tokens_file: Path | None = None
    tokens: tuple[Mapping[str, Any], ...] = ()
    limits: LimitSettings = LimitSettings()
    webhook_max_age_s: int = 300
    generic_secret: str | None = field(default=None, repr=False)
    mlflow: MlflowSettings = MlflowSettings()


def _section(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"service config: {key}: expected a mapping, got {type(value).__name__}")
    return value


def _int(data: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(
            f"service config: {where}.{key}: expected a positive integer, got {value!r}"
        )
    return value


def _mlflow(data: Mapping[str, Any], env: Mapping[str, str]) -> MlflowSettings:
    section = _section(data, "mlflow")
    action = section.get("on_violation", "revert")
    if action not in _VIOLATION_ACTIONS:
        raise ConfigError(
            f"service config: mlflow.on_violation: expected one of {_VIOLATION_ACTIONS}, "
            f"got {action!r}"
        )
    defaults = MlflowSettings()
    return MlflowSettings(
        tracking_uri=env.get("MLFLOW_TRACKING_URI")
        if "tracking_uri" not in section
        else section["tracking_uri"],
        secret=env.get(str(section.get("secret_env", "POLICYENGINE_MLFLOW_WEBHOOK_SECRET"))),
        token=env.get(str(section.get("token_env", "MLFLOW_TRACKING_TOKEN"))),
        aliases={str(k): str(v) for k, v in (section.get("aliases") or defaults.aliases).items()},
        on_violation=action,
        card_tag=str(section.get("card_tag", defaults.card_tag)),
        card_artifact=section.get("card_artifact", defaults.card_artifact),
        tag_fields={str(k): str(v) for k, v in (section.get("tag_fields") or {}).items()},
    )


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"service config {path}: cannot read: {exc}") from exc


def load_service_settings(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    data: Mapping[str, Any] | None = None,
    config_file: Path | None = None,
) -> ServiceSettings:
    """Read the service settings and the secrets they name from the environment.

    Args:
        path: a service settings file; else ``POLICYENGINE_SERVICE_CONFIG``.
        env: environment variables (default ``os.environ``).
        data: the settings as a mapping (tests); wins over files.
        config_file: ``policyengine.yaml``, whose ``service:`` section is used
            when no settings file is named.

    Raises:
        ConfigError: a file is unreadable or a value is invalid.
    """
    env = dict(os.environ if env is None else env)
    path = path or env.get("POLICYENGINE_SERVICE_CONFIG")
    base = Path.cwd()
    if data is None and path:
        base = Path(path).resolve().parent
        data = _read_yaml(Path(path))
    elif data is None and config_file is not None:
        base = config_file.resolve().parent
        data = (_read_yaml(config_file) or {}).get("service") or {}
    data = dict(data or {})
    if not isinstance(data, dict):
        raise ConfigError(f"service config {path or config_file}: expected a mapping")
    tokens_file = data.get("tokens_file") or env.get("POLICYENGINE_TOKENS_FILE")
    limits = _section(data, "limits")
    webhooks = _section(data, "webhooks")
    return ServiceSettings(
        tokens_file=(base / str(tokens_file)).resolve() if tokens_file else None,
        tokens=tuple(data.get("tokens") or ()),
        limits=LimitSettings(
            max_body_bytes=_int(limits, "max_body_bytes", 1_048_576, "limits"),
            max_json_depth=_int(limits, "max_json_depth", 64, "limits"),
        ),
        webhook_max_age_s=_int(webhooks, "max_age_seconds", 300, "webhooks"),
        generic_secret=env.get(
            str(webhooks.get("generic_secret_env", "POLICYENGINE_WEBHOOK_SECRET"))
        ),
        mlflow=_mlflow(data, env),
    )
