"""Typed models of the model card and the lifecycle event, at the edges.

This module owns the pydantic v2 mirrors of ``schemas/model-card.schema.json``
and ``schemas/lifecycle-event.schema.json``. The JSON Schemas are the public
contract; these models are the same contract in Python, and
``tests/policyengine/test_models_schema_agree.py`` proves the two do not drift
(every property, type and requiredness on one side exists on the other).

Validation with JSON paths for users lives in ``policyengine.cards.validate``;
the evaluation path works on plain dicts and never needs these classes.
"""

from __future__ import annotations

import datetime as _dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "CardSource",
    "ChangeLogEntry",
    "Dataset",
    "Documentation",
    "EventSubject",
    "EventType",
    "Explainability",
    "FairnessResult",
    "FeatureImportance",
    "HumanOversight",
    "IntendedUse",
    "LifecycleEvent",
    "Metric",
    "ModelCard",
    "ModelIdentity",
    "Owner",
    "Retention",
    "RiskTier",
    "Security",
    "Slo",
    "SloObservations",
    "SloTargets",
]

_DIGEST = r"^sha256:[0-9a-f]{64}$"
_DATETIME = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})$"
)
_SCHEMA_VERSION = r"^1\.[0-9]+$"

Digest = Annotated[str, Field(pattern=_DIGEST)]
"""``sha256:`` followed by 64 lower-case hex digits."""
DateTime = Annotated[str, Field(pattern=_DATETIME)]
"""RFC 3339 date-time with an explicit offset, kept as the string written."""


def _calendar_date(value: str) -> str:
    """A real calendar day, as the schema's ``format: date`` checks (RFC 3339 full-date)."""
    _dt.date.fromisoformat(value)
    return value


Date = Annotated[
    str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"), AfterValidator(_calendar_date)
]
"""RFC 3339 full-date (YYYY-MM-DD), kept as the string written."""
Text = Annotated[str, Field(min_length=1)]
"""A non-empty string."""
Days = Annotated[int, Field(ge=0)]
"""A whole number of days."""
NonNegative = Annotated[float, Field(ge=0)]
"""A number >= 0 (latency, throughput)."""
Rate = Annotated[float, Field(ge=0, le=1)]
"""A fraction in [0, 1] (error rate, availability)."""
RiskTier = Literal["high", "medium", "low", "minimal"]
"""Risk classification policies match on."""
EventType = Literal[
    "registered",
    "evaluated",
    "approved",
    "rejected",
    "promoted",
    "rolled_back",
    "retired",
    "drift_detected",
    "incident",
    "waiver_granted",
    "waiver_revoked",
]
"""What happened to a model version (past tense, as logged)."""


class _Strict(BaseModel):
    """Base: strict types, unknown keys rejected (schema additionalProperties false)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        """Reject explicit nulls: the schema has no null type; an absent field is omitted."""
        if isinstance(data, dict):
            nulls = sorted(str(k) for k, v in data.items() if v is None)
            if nulls:
                raise ValueError(f"expected a value or no key, got null for {', '.join(nulls)}")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Validate a plain dict (as loaded from JSON or YAML) into the model."""
        return cls.model_validate(data)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict, omitting fields that were not set."""
        return self.model_dump(mode="json", exclude_none=True)


class ModelIdentity(_Strict):
    """Identity of a model version; the digest binds approvals to exact bytes."""

    name: Annotated[
        str, Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/@:-]*$")
    ]
    version: Annotated[str, Field(min_length=1, max_length=128)]
    artifact_digest: Digest
    artifact_uri: Text | None = None
    framework: str | None = None
    task: str | None = None
    description: str | None = None
    license: str | None = None
    base_model: str | None = None
    created: DateTime | None = None


class Owner(_Strict):
    """Team accountable for the model in production."""

    team: Text
    contact: Text | None = None


class IntendedUse(_Strict):
    """Intended purpose and its boundaries (EU AI Act Annex IV 1(a))."""

    purpose: Text | None = None
    primary_uses: list[Text] | None = None
    users: list[Text] | None = None
    out_of_scope: list[Text] | None = None
    deployment_context: str | None = None


class Dataset(_Strict):
    """A dataset with provenance, PII flags and retention."""

    name: Text
    source: str | None = None
    uri: str | None = None
    version: str | None = None
    digest: Digest | None = None
    lineage: str | None = None
    collection_method: str | None = None
    preprocessing: str | None = None
    size: Annotated[int, Field(ge=0)] | None = None
    license: str | None = None
    contains_pii: bool | None = None
    pii_categories: list[Text] | None = None
    legal_basis: str | None = None
    retention_days: Days | None = None


class Metric(_Strict):
    """One performance metric on a dataset (and optionally a slice)."""

    name: Text
    value: float
    dataset: str | None = None
    slice: str | None = None
    split: str | None = None
    threshold: float | None = None
    ci_lower: float | None = None
    ci_upper: float | None = None


class FairnessResult(_Strict):
    """One fairness metric for one protected attribute."""

    metric: Text
    value: float
    protected_attribute: Text
    groups: list[Text] | None = None
    reference_group: str | None = None
    dataset: str | None = None


class SloTargets(_Strict):
    """Service-level targets a release must meet."""

    latency_p50_ms: NonNegative | None = None
    latency_p95_ms: NonNegative | None = None
    latency_p99_ms: NonNegative | None = None
    error_rate: Rate | None = None
    availability: Rate | None = None
    canary_error_rate_delta: Rate | None = None
    throughput_rps: NonNegative | None = None


class SloObservations(_Strict):
    """Latest observed service levels, including canary and baseline error rates."""

    latency_p50_ms: NonNegative | None = None
    latency_p95_ms: NonNegative | None = None
    latency_p99_ms: NonNegative | None = None
    error_rate: Rate | None = None
    availability: Rate | None = None
    canary_error_rate: Rate | None = None
    baseline_error_rate: Rate | None = None
    throughput_rps: NonNegative | None = None
    window: str | None = None
    observed_at: DateTime | None = None
    source: str | None = None


class Slo(_Strict):
    """Targets and observations side by side."""

    targets: SloTargets | None = None
    observations: SloObservations | None = None


class FeatureImportance(_Strict):
    """Global importance of one input feature."""

    feature: Text
    value: float


class Explainability(_Strict):
    """How the model's outputs can be explained."""

    methods: list[Text] | None = None
    feature_importance: list[FeatureImportance] | None = None
    report_uri: str | None = None
    notes: str | None = None


class Security(_Strict):
    """Security testing and controls."""

    threat_model: str | None = None
    adversarial_testing: bool | None = None
    vulnerability_scan_passed: bool | None = None
    artifact_signed: bool | None = None
    access_control: str | None = None
    notes: str | None = None


class Retention(_Strict):
    """Retention periods in days."""

    artifact_days: Days | None = None
    data_days: Days | None = None
    pii_data_days: Days | None = None
    audit_log_days: Days | None = None


class ChangeLogEntry(_Strict):
    """A relevant change over the lifecycle (Annex IV 6)."""

    version: Text
    date: Date | None = None
    change: Text


class Documentation(_Strict):
    """Technical-file fields (EU AI Act Art. 11, Annex IV) held nowhere else."""

    technical_file_uri: str | None = None
    system_description: str | None = None
    architecture: str | None = None
    compute_resources: str | None = None
    validation_procedure: str | None = None
    risk_management: str | None = None
    post_market_monitoring: str | None = None
    instructions_for_use: str | None = None
    standards_applied: list[Text] | None = None
    change_log: list[ChangeLogEntry] | None = None


class HumanOversight(_Strict):
    """Human oversight measures (EU AI Act Art. 14)."""

    measures: list[Text] | None = None
    reviewer_role: str | None = None
    can_override: bool | None = None
    escalation: str | None = None


class CardSource(_Strict):
    """Where an imported card came from: format, file name, SHA-256 of the file's bytes."""

    format: Literal["huggingface", "mct", "sagemaker", "mlflow"]
    file: Text | None = None
    digest: Digest


class ModelCard(_Strict):
    """The canonical model card (schemas/model-card.schema.json)."""

    schema_version: Annotated[str, Field(pattern=_SCHEMA_VERSION)]
    model: ModelIdentity
    owner: Owner | None = None
    author: Text | None = None
    risk_tier: RiskTier
    intended_use: IntendedUse | None = None
    limitations: list[Text] | None = None
    training_data: list[Dataset] | None = None
    evaluation_data: list[Dataset] | None = None
    metrics: list[Metric] | None = None
    fairness: list[FairnessResult] | None = None
    slo: Slo | None = None
    explainability: Explainability | None = None
    security: Security | None = None
    retention: Retention | None = None
    documentation: Documentation | None = None
    human_oversight: HumanOversight | None = None
    source: CardSource | None = None
    extensions: dict[str, Any] | None = None


class EventSubject(_Strict):
    """The model version an event is about."""

    model: Annotated[str, Field(min_length=1, max_length=256)]
    version: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    digest: Digest | None = None


class LifecycleEvent(_Strict):
    """A lifecycle event as logged (schemas/lifecycle-event.schema.json)."""

    schema_version: Annotated[str, Field(pattern=_SCHEMA_VERSION)] | None = None
    id: Text | None = None
    type: EventType
    subject: EventSubject
    stage: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")] | None = None
    actor: Text
    time: DateTime
    data: dict[str, Any] | None = None
