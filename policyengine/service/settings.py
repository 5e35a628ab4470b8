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

    engine: fast                        # CEL runtime: fast | reference | shadow
    workers: 1                          # worker processes (``serve --workers`` wins)
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
    tracing:                            # OpenTelemetry traces (off unless an endpoint is set)
      endpoint: http://collector:4318   # else OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT
    notifications:                      # signed JSON on violations, denials, failed checks
      secret_env: POLICYENGINE_NOTIFY_SECRET
      events: [violation, decision_denied, verification_failed]
      endpoints:
        - {url: https://hooks.example/pe}
        - {url_env: SLACK_WEBHOOK_URL, format: slack, events: [violation]}
      max_attempts: 5                   # then counted as failed
      backoff_seconds: 1.0              # doubles per attempt, capped at max_backoff_seconds
      max_backoff_seconds: 60.0
      timeout_seconds: 5.0
      queue_size: 1000                  # full: the notification is dropped (and counted)
    admission:                          # POST /v1/admission/kubernetes
      stages: {ml-prod: production, ml-staging: staging}   # namespace -> stage
      stage_label: null                 # an object label naming the stage (off)
      model_label: policyengine.dev/governed   # marks a Deployment as a model ("true")
      kinds: [InferenceService, Deployment]    # the kinds the check enforces
    pages:                              # the auditor's web pages (/pages)
      whatif_candidate: policies-next/  # a policy file or directory the what-if page
                                        # can try beside the configured policies (off)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import Field, PositiveFloat, PositiveInt, StringConstraints

from policyengine.errors import ConfigError
from policyengine.strict import StrictModel, validate_file

__all__ = [
    "ENGINE_DEFAULT",
    "NOTIFY_EVENTS",
    "AdmissionSettings",
    "LimitSettings",
    "MlflowSettings",
    "NotificationSettings",
    "NotifyEndpoint",
    "PagesSettings",
    "ServiceSection",
    "ServiceSettings",
    "TracingSettings",
    "load_service_settings",
]

ENGINE_DEFAULT = "fast"
"""The service's CEL runtime unless configured: the fast path decides exactly as the
reference (tests/policyengine/policy prove it rule by rule, and any rule or input
it cannot prove runs on the reference), and a long-running process pays its
start-up once. The command line keeps the reference by default."""
_Engine = Literal["reference", "fast", "shadow"]  # policy.compile.ENGINES
_DEFAULT_ALIASES = {"production": "production", "staging": "staging", "champion": "production"}
NotifyEvent = Literal["violation", "decision_denied", "verification_failed"]
NOTIFY_EVENTS: tuple[NotifyEvent, ...] = ("violation", "decision_denied", "verification_failed")
"""What the service notifies about (a closed set: metric labels and filters)."""


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


class _TracingSection(StrictModel):
    endpoint: str | None = None
    """OTLP/HTTP base URL (``/v1/traces`` is appended); else the ``OTEL_*`` variables."""
    service_name: str | None = None
    """Else ``OTEL_SERVICE_NAME``, else ``policyengine``."""


class _EndpointSection(StrictModel):
    url: str | None = None
    url_env: str | None = None
    """A variable holding the URL (chat webhook URLs are secrets)."""
    format: Literal["json", "slack"] = "json"
    events: list[NotifyEvent] | None = None
    """Left out: the section's ``events``."""


class _NotificationsSection(StrictModel):
    secret_env: str = "POLICYENGINE_NOTIFY_SECRET"
    events: list[NotifyEvent] = Field(default_factory=lambda: list(NOTIFY_EVENTS))
    endpoints: list[_EndpointSection] = Field(default_factory=list)
    max_attempts: PositiveInt = 5
    backoff_seconds: PositiveFloat = 1.0
    max_backoff_seconds: PositiveFloat = 60.0
    timeout_seconds: PositiveFloat = 5.0
    queue_size: PositiveInt = 1000
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


class _PagesSection(StrictModel):
    whatif_candidate: str | None = None
    """Policies the what-if page may try; named here only, never by a request."""


class ServiceSection(StrictModel):
    """The shape of the service settings; any other key, at any depth, is refused."""

    engine: _Engine | None = None
    """Left out: ``POLICYENGINE_ENGINE``, else :data:`ENGINE_DEFAULT`."""
    workers: PositiveInt = 1
    tokens_file: str | None = None
    tokens: list[dict[str, Any]] = Field(default_factory=list)
    """Token records inline (checked by ``policyengine.service.auth``)."""
    limits: _LimitsSection = _LimitsSection()
    webhooks: _WebhooksSection = _WebhooksSection()
    mlflow: _MlflowSection = _MlflowSection()
    tracing: _TracingSection = _TracingSection()
    notifications: _NotificationsSection = _NotificationsSection()
    admission: _AdmissionSection = _AdmissionSection()
    pages: _PagesSection = _PagesSection()


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
class TracingSettings:
    """Where spans go: an OTLP/HTTP endpoint, or nowhere (tracing off)."""

    endpoint: str | None = None
    """The traces URL (``.../v1/traces``); None: tracing is off."""
    service_name: str = "policyengine"


@dataclass(frozen=True)
class NotifyEndpoint:
    """One receiver of notifications."""

    url: str = field(repr=False)
    format: str = "json"
    events: frozenset[str] = frozenset(NOTIFY_EVENTS)


@dataclass(frozen=True)
class NotificationSettings:
    """Signed notifications: receivers, the HMAC secret and the retry schedule."""

    endpoints: tuple[NotifyEndpoint, ...] = ()
    secret: str | None = field(default=None, repr=False)
    max_attempts: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    timeout_s: float = 5.0
    queue_size: int = 1000


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
class PagesSettings:
    """What the auditor's pages may read beyond the log (``service.pages``)."""

    whatif_candidate: Path | None = None
    """A policy file or directory the what-if page tries as "candidate"; None: only the
    configured policies. Server-side only, so a request can never name a path."""


@dataclass(frozen=True)
class ServiceSettings:
    """Everything the service needs beyond the gate's configuration."""

    engine: str = ENGINE_DEFAULT
    """The CEL runtime every policy set of the service compiles for."""
    workers: int = 1
    """Worker processes ``policyengine serve`` starts (its ``--workers`` wins)."""
    tokens_file: Path | None = None
    tokens: tuple[Mapping[str, Any], ...] = ()
    limits: LimitSettings = LimitSettings()
    webhook_max_age_s: int = 300
    generic_secret: str | None = field(default=None, repr=False)
    mlflow: MlflowSettings = MlflowSettings()
    tracing: TracingSettings = TracingSettings()
    notifications: NotificationSettings = NotificationSettings()
    admission: AdmissionSettings = AdmissionSettings()
    pages: PagesSettings = PagesSettings()
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


def _tracing(section: _TracingSection, env: Mapping[str, str]) -> TracingSettings:
    """Off unless an endpoint is configured; OTEL_SDK_DISABLED turns it off (OTel spec)."""
    name = section.service_name or env.get("OTEL_SERVICE_NAME") or "policyengine"
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return TracingSettings(None, name)
    if section.endpoint:
        return TracingSettings(section.endpoint.rstrip("/") + "/v1/traces", name)
    if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):  # used as given (OTLP exporter spec)
        return TracingSettings(env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"], name)
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return TracingSettings(env["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces", name)
    return TracingSettings(None, name)


def _notifications(
    section: _NotificationsSection, env: Mapping[str, str], source: str
) -> NotificationSettings:
    where = f"{source}: notifications"
    endpoints = []
    for i, ep in enumerate(section.endpoints):
        if (ep.url is None) == (ep.url_env is None):
            raise ConfigError(f"{where}.endpoints[{i}]: expected one of url or url_env")
        url = ep.url or env.get(str(ep.url_env))
        if not url:
            raise ConfigError(f"{where}.endpoints[{i}]: ${ep.url_env} is not set")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}.endpoints[{i}]: expected an http(s) URL")
        events = section.events if ep.events is None else ep.events
        endpoints.append(NotifyEndpoint(url, ep.format, frozenset(events)))
    secret = env.get(section.secret_env)
    if endpoints and not secret:
        # Fail closed: receivers cannot tell our notifications from forgeries without it.
        raise ConfigError(
            f"{where}: endpoints are configured but ${section.secret_env} (the signing "
            "secret) is not set; set it or remove the endpoints"
        )
    return NotificationSettings(
        endpoints=tuple(endpoints),
        secret=secret,
        max_attempts=section.max_attempts,
        backoff_s=section.backoff_seconds,
        max_backoff_s=section.max_backoff_seconds,
        timeout_s=section.timeout_seconds,
        queue_size=section.queue_size,
    )


def _pages(section: _PagesSection, base: Path, source: str) -> PagesSettings:
    """The candidate path resolved against the settings file; it must exist at start-up."""
    if not section.whatif_candidate:
        return PagesSettings()
    path = (base / section.whatif_candidate).resolve()
    if not path.exists():
        raise ConfigError(f"{source}: pages.whatif_candidate: {path} does not exist; "
                          "name a policy file or directory, or remove the key")
    return PagesSettings(whatif_candidate=path)


def _engine(given: str | None, env: Mapping[str, str]) -> str:
    """``POLICYENGINE_ENGINE`` (serve's ``--engine`` sets it for its workers), else
    the file's ``engine:``, else :data:`ENGINE_DEFAULT`: flags over environment over
    file, as in ``policyengine.config``.

    Raises:
        ConfigError: the variable names no engine.
    """
    named = env.get("POLICYENGINE_ENGINE")
    if named:
        if named not in get_args(_Engine):
            raise ConfigError(f"POLICYENGINE_ENGINE={named!r}: expected one of "
                              f"{', '.join(get_args(_Engine))}; the service's default is "
                              f"{ENGINE_DEFAULT}")
        return named
    return given or ENGINE_DEFAULT


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
        engine=_engine(section.engine, env),
        workers=section.workers,
        tokens_file=(base / tokens_file).resolve() if tokens_file else None,
        tokens=tuple(section.tokens),
        limits=LimitSettings(
            max_body_bytes=section.limits.max_body_bytes,
            max_json_depth=section.limits.max_json_depth,
        ),
        webhook_max_age_s=section.webhooks.max_age_seconds,
        generic_secret=env.get(section.webhooks.generic_secret_env),
        mlflow=_mlflow(section.mlflow, env),
        tracing=_tracing(section.tracing, env),
        notifications=_notifications(section.notifications, env, source),
        admission=AdmissionSettings(
            stages=dict(section.admission.stages),
            stage_label=section.admission.stage_label,
            model_label=section.admission.model_label,
            kinds=frozenset(section.admission.kinds),
        ),
        pages=_pages(section.pages, base, source),
        source=source,
    )
