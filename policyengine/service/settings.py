"""Configuration of the HTTP service (what the gate's configuration lacks).

Owns the service's own settings: the bearer-token file, webhook secrets (read
from environment variables, never from the file), request limits, and the
MLflow integration (tracking URI, alias -> stage map, what to do with an alias
moved without an ``allow``, which tags or run artifact carry card fields).
Where the log lives, which key signs and which policies apply come from the
gate's :class:`policyengine.config.Config`, so the CLI and the service agree.

Read from the ``service:`` section of ``policyengine.yaml``, or from a file of
its own (``--service-config`` or ``POLICYENGINE_SERVICE_CONFIG``, which wins)
holding the same keys at top level or under ``service:``. The shape is
:class:`ServiceSection`: an unknown key at any depth is refused (exit 2 at
start-up) with the file, the key and a close valid key::

    tokens_file: tokens.yaml            # see policyengine.service.auth
    tokens: []                          # or token records inline (hashes, not tokens)
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
    admission:                          # POST /v1/admission/kubernetes
      stages: {ml-prod: production, ml-staging: staging}   # namespace -> stage
      stage_label: null                 # an object label naming the stage (off)
      model_label: policyengine.dev/governed   # marks a Deployment as a model ("true")
      kinds: [InferenceService, Deployment]    # the kinds the check enforces
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, PositiveInt, StringConstraints

from policyengine.errors import ConfigError
from policyengine.strict import StrictModel, validate_file

__all__ = [
    "AdmissionSettings",
    "LimitSettings",
    "MlflowSettings",
    "ServiceSection",
    "ServiceSettings",
    "load_service_settings",
]

_DEFAULT_ALIASES = {"production": "production", "staging": "staging", "champion": "production"}


class _LimitsSection(StrictModel):
    max_body_bytes: PositiveInt = 1_048_576
    max_json_depth: PositiveInt = 64


class _WebhooksSection(StrictModel):
    max_age_seconds: PositiveInt = 300
    generic_secret_env: str = "POLICYENGINE_WEBHOOK_SECRET"


class _MlflowSection(StrictModel):
    tracking_uri: str | None = None
    """Left out: ``MLFLOW_TRACKING_URI``; ``null``: no MLflow client."""
    secret_env: str = "POLICYENGINE_MLFLOW_WEBHOOK_SECRET"
    token_env: str = "MLFLOW_TRACKING_TOKEN"
    aliases: dict[str, str] | None = None
    on_violation: Literal["revert", "delete", "record"] = "revert"
    card_tag: str = "policyengine.card"
    card_artifact: str | None = "model_card.json"
    tag_fields: dict[str, str] = Field(default_factory=dict)


# A namespace name (RFC 1123 label) and a stage as the wire models accept it.
_Namespace = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
_Stage = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]
# A label key: optional DNS prefix, then a name (Kubernetes "Labels and Selectors").
_LABEL_KEY = (
    r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?"  # optional DNS subdomain prefix
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LabelKey = Annotated[str, StringConstraints(pattern=_LABEL_KEY)]


_Kind = Literal["InferenceService", "Deployment"]


def _all_kinds() -> list[_Kind]:
    return ["InferenceService", "Deployment"]


class _AdmissionSection(StrictModel):
    stages: dict[_Namespace, _Stage] = Field(default_factory=dict)
    stage_label: _LabelKey | None = None
    model_label: _LabelKey = "policyengine.dev/governed"
    kinds: list[_Kind] = Field(default_factory=lambda: _all_kinds())


class ServiceSection(StrictModel):
    """The shape of the service settings; any other key, at any depth, is refused."""

    tokens_file: str | None = None
    tokens: list[dict[str, Any]] = Field(default_factory=list)
    """Token records inline (checked by ``policyengine.service.auth``)."""
    limits: _LimitsSection = _LimitsSection()
    webhooks: _WebhooksSection = _WebhooksSection()
    mlflow: _MlflowSection = _MlflowSection()
    admission: _AdmissionSection = _AdmissionSection()


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
    aliases: Mapping[str, str] = field(default_factory=lambda: dict(_DEFAULT_ALIASES))
    on_violation: str = "revert"
    card_tag: str = "policyengine.card"
    card_artifact: str | None = "model_card.json"
    tag_fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AdmissionSettings:
    """How Kubernetes admission reviews map to models and stages (``service.admission``)."""

    stages: Mapping[str, str] = field(default_factory=dict)
    """Namespace -> stage; an enforced object in another namespace is denied."""
    stage_label: str | None = None
    """An object label whose value names the stage (must agree with the namespace's)."""
    model_label: str = "policyengine.dev/governed"
    """A Deployment with this label set to ``"true"`` is a model."""
    kinds: frozenset[str] = frozenset({"InferenceService", "Deployment"})
    """The kinds checked; others are admitted without a record."""


@dataclass(frozen=True)
class ServiceSettings:
    """Everything the service needs beyond the gate's configuration."""

    tokens_file: Path | None = None
    tokens: tuple[Mapping[str, Any], ...] = ()
    limits: LimitSettings = LimitSettings()
    webhook_max_age_s: int = 300
    generic_secret: str | None = field(default=None, repr=False)
    mlflow: MlflowSettings = MlflowSettings()
    admission: AdmissionSettings = AdmissionSettings()
    source: str = "(defaults)"
    """Where the settings were read from, for messages."""


def _mlflow(section: _MlflowSection, env: Mapping[str, str]) -> MlflowSettings:
    given = "tracking_uri" in section.model_fields_set
    return MlflowSettings(
        tracking_uri=section.tracking_uri if given else env.get("MLFLOW_TRACKING_URI"),
        secret=env.get(section.secret_env),
        token=env.get(section.token_env),
        aliases=dict(_DEFAULT_ALIASES if section.aliases is None else section.aliases),
        on_violation=section.on_violation,
        card_tag=section.card_tag,
        card_artifact=section.card_artifact,
        tag_fields=dict(section.tag_fields),
    )


def _read_yaml(path: Path) -> Any:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"service config {path}: cannot read: {exc}") from exc
    return {} if data is None else data


def _located(
    path: str | Path | None, data: Mapping[str, Any] | None, config_file: Path | None
) -> tuple[Any, str, str, Path]:
    """(document, source for messages, section prefix, base for relative paths)."""
    if data is not None:
        return data, "service config", "", Path.cwd()
    if path:
        doc = _read_yaml(Path(path))
        # A settings file holds the section's keys, at top level or under
        # `service:` exactly as in policyengine.yaml (the README's example).
        if isinstance(doc, Mapping) and set(doc) == {"service"}:
            return doc["service"] or {}, f"service config {path}", "service", _dir(path)
        return doc, f"service config {path}", "", _dir(path)
    if config_file is not None:
        doc = _read_yaml(config_file)
        section = doc.get("service") if isinstance(doc, Mapping) else None
        return section or {}, str(config_file), "service", _dir(config_file)
    return {}, "service config", "", Path.cwd()


def _dir(path: str | Path) -> Path:
    return Path(path).resolve().parent


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
        ConfigError: a file is unreadable, or a key or value is invalid (named,
            with the file).
    """
    env = dict(os.environ if env is None else env)
    path = path or env.get("POLICYENGINE_SERVICE_CONFIG")
    doc, source, prefix, base = _located(path, data, config_file)
    section = validate_file(ServiceSection, doc, source, prefix=prefix)
    tokens_file = section.tokens_file or env.get("POLICYENGINE_TOKENS_FILE")
    return ServiceSettings(
        tokens_file=(base / tokens_file).resolve() if tokens_file else None,
        tokens=tuple(section.tokens),
        limits=LimitSettings(
            max_body_bytes=section.limits.max_body_bytes,
            max_json_depth=section.limits.max_json_depth,
        ),
        webhook_max_age_s=section.webhooks.max_age_seconds,
        generic_secret=env.get(section.webhooks.generic_secret_env),
        mlflow=_mlflow(section.mlflow, env),
        admission=AdmissionSettings(
            stages=dict(section.admission.stages),
            stage_label=section.admission.stage_label,
            model_label=section.admission.model_label,
            kinds=frozenset(section.admission.kinds),
        ),
        source=source,
    )
