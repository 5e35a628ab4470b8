"""The service's wire models: every request and response body, versioned.

Owns the JSON shapes of ``policyengine serve`` (pydantic v2, ``extra="forbid"``,
names ending in ``V1``) and how the published OpenAPI document describes each
operation: its request body (:func:`json_body`), its responses and error
statuses (:func:`responses`). The handlers parse and answer with these same
models, so ``/openapi.json`` is what the service does. Field patterns bound
every identifier a statement signs (no control characters, no empty ids).

It does not parse bytes (``limits``, through the bounded reader, which also
refuses a key given twice: RFC 8259 s4 leaves its meaning to the parser, and
a signed body must mean one thing to every reader), authenticate (``auth``)
or decide anything (``operations``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "AdmissionRequestV1",
    "AdmissionResponseV1",
    "AdmissionReviewResponseV1",
    "AdmissionReviewV1",
    "AdmissionStatusV1",
    "ApprovalRequestV1",
    "CheckpointV1",
    "ConsistencyProofV1",
    "DecisionRequestV1",
    "DecisionResponseV1",
    "DeliveryResultV1",
    "EntriesPageV1",
    "EntryV1",
    "ErrorItem",
    "ErrorV1",
    "EventRequestV1",
    "EventV1",
    "GenericEventV1",
    "GroupVersionKindV1",
    "HealthV1",
    "HoldRequestV1",
    "InclusionProofV1",
    "MlflowEnvelopeV1",
    "PromotionRequestV1",
    "ReadyV1",
    "ReceiptV1",
    "RecordedV1",
    "RedactionRequestV1",
    "ReleaseRequestV1",
    "RetentionRecordedV1",
    "SignatureV1",
    "StatementRecordedV1",
    "WaiverRequestV1",
    "json_body",
    "request_models",
    "responses",
]

NAME = r"^[A-Za-z0-9][A-Za-z0-9._/@:+-]{0,199}$"
VERSION = r"^[A-Za-z0-9._+-]{1,100}$"
DIGEST = r"^sha256:[0-9a-f]{64}$"
STAGE = r"^[a-z][a-z0-9_-]{0,63}$"
# A trust-file role: printable, no spaces or control characters (they would be
# signed and logged, and could never match a role the trust file grants).
ROLE = r"^[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,99}$"
# A rule id, bare or qualified by its policy (schemas/policy.schema.json $defs/name).
RULE = r"^([a-z0-9][a-z0-9._-]{0,62}/)?[a-z0-9][a-z0-9._-]{0,62}$"
_HEX = r"^[0-9a-f]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors -------------------------------------------------------------------


class ErrorItem(_Strict):
    """One problem in a request, located by a JSON path such as ``$.card.model``."""

    path: str
    message: str


class ErrorV1(_Strict):
    """The body of every error response: a stable ``code``, one line, located errors."""

    code: str
    message: str
    errors: list[ErrorItem] = []
    seq: int | None = None
    """Set only when the request's entry is in the log although the request failed."""


# -- requests -----------------------------------------------------------------


class EventV1(_Strict):
    """The intent evaluated: an event type and the target stage."""

    type: str = Field(default="promote", pattern=r"^(promote|register|rollback|retire)$")
    stage: str = Field(pattern=STAGE)


class DecisionRequestV1(_Strict):
    """``POST /v1/decisions``: a model card and the event to decide."""

    card: dict[str, Any]
    event: EventV1


class SignatureV1(_Strict):
    """An Ed25519 signature over the statement's RFC 8785 bytes (see approvals.py)."""

    key_id: str = Field(pattern=r"^[0-9a-f]{8}$")
    sig: str = Field(pattern=r"^[A-Za-z0-9+/]+={0,2}$", min_length=8, max_length=200)


_WHEN = "RFC 3339 date-time with offset (2025-01-31T12:00:00Z)"
_EXPIRES = "duration (30d), date (2025-12-31) or RFC 3339 date-time; absolute when signed"


class ApprovalRequestV1(_Strict):
    """``POST /v1/approvals``: approval of one artifact in one role by the caller."""

    model: str = Field(pattern=NAME)
    version: str = Field(pattern=VERSION)
    digest: str = Field(pattern=DIGEST)
    role: str = Field(pattern=ROLE)
    expires: str | None = Field(default=None, min_length=1, max_length=64, description=_EXPIRES)
    time: str | None = Field(
        default=None, max_length=64, description=f"statement time, {_WHEN}; required when signed"
    )
    signature: SignatureV1 | None = None
    note: str | None = Field(default=None, max_length=2000)


class WaiverRequestV1(_Strict):
    """``POST /v1/waivers``: a waiver of rules for a model (version or range)."""

    rules: list[Annotated[str, StringConstraints(pattern=RULE)]] = Field(
        min_length=1, max_length=100
    )
    model: str = Field(pattern=NAME)
    version: str | None = Field(default=None, pattern=VERSION)
    versions: str | None = Field(default=None, min_length=1, max_length=100)
    reason: str = Field(min_length=1, max_length=2000)
    ticket: str = Field(min_length=1, max_length=200)
    expires: str = Field(min_length=1, max_length=64, description=_EXPIRES)
    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    time: str | None = Field(default=None, max_length=64, description=_WHEN)
    signature: SignatureV1 | None = None


class PromotionRequestV1(_Strict):
    """``POST /v1/promotions``: record a promotion the log justifies."""

    model: str = Field(pattern=NAME)
    version: str = Field(pattern=VERSION)
    digest: str = Field(pattern=DIGEST)
    stage: str = Field(pattern=STAGE)


class EventRequestV1(_Strict):
    """``POST /v1/events``: a lifecycle event (registered, rolled_back, ...)."""

    # promote.RECORDABLE_EVENTS; a test keeps the two equal.
    type: Literal["registered", "rolled_back", "retired", "drift_detected", "incident"]
    model: str = Field(pattern=NAME)
    version: str | None = Field(default=None, pattern=VERSION)
    digest: str | None = Field(default=None, pattern=DIGEST)
    stage: str | None = Field(default=None, pattern=STAGE)
    data: dict[str, Any] = {}


# -- webhook bodies -------------------------------------------------------------


class GenericEventV1(_Strict):
    """The JSON body of a generic webhook delivery (see ``webhooks_generic``)."""

    type: str = Field(pattern=r"^[a-z][a-z_]{0,63}$")
    model: str = Field(pattern=NAME)
    version: str | None = Field(default=None, pattern=VERSION)
    digest: str | None = Field(default=None, pattern=DIGEST)
    stage: str | None = Field(default=None, pattern=STAGE)
    card: dict[str, Any] | None = None
    actor: str | None = Field(default=None, max_length=200)
    data: dict[str, Any] = {}


class MlflowEnvelopeV1(BaseModel):
    """An MLflow 3 registry webhook body; MLflow owns the format, so unknown keys pass."""

    model_config = ConfigDict(extra="allow")

    entity: str
    action: str
    timestamp: Any = None
    data: dict[str, Any]


# -- responses ----------------------------------------------------------------


class ReceiptV1(_Strict):
    """An offline-verifiable receipt (``audit receipt verify``; see audit/receipt.py)."""

    v: int
    envelope: dict[str, Any]
    envelope_b64: str
    payload_digest: str
    leaf_index: int = Field(ge=0)
    inclusion_proof: list[str]
    checkpoint: str = Field(description="C2SP signed note of the covering checkpoint")
    verdict: Literal["allow", "deny"] | None = Field(
        default=None, description="decision entries: allow or deny (a view, not in the proof)")


class DecisionResponseV1(_Strict):
    """The logged decision, where it sits in the log, and its receipt."""

    allow: bool
    decision: dict[str, Any] = Field(description="the Decision (schemas/decision.schema.json)")
    seq: int = Field(ge=0)
    checkpoint_size: int | None
    receipt: ReceiptV1


class RecordedV1(_Strict):
    """A recorded promotion or lifecycle event."""

    seq: int = Field(ge=0)
    checkpoint_size: int
    receipt: ReceiptV1
    decision_seq: int | None = Field(description="promotions: the allow that justified it")


class StatementRecordedV1(_Strict):
    """A recorded approval or waiver: only statements that count are recorded."""

    seq: int = Field(ge=0)
    checkpoint_size: int
    statement: dict[str, Any] = Field(description="the statement as signed and logged")
    counts: bool
    reason: str | None


class EntryV1(_Strict):
    """One log entry; ``payload`` only when one entry is asked for (null when redacted)."""

    seq: int = Field(ge=0)
    leaf_hash: str
    envelope: dict[str, Any]
    redacted: bool
    payload: Any = None


class EntriesPageV1(_Strict):
    """One page of entries; pass ``next_cursor`` back as ``cursor`` for the next."""

    entries: list[EntryV1]
    next_cursor: str | None


class CheckpointV1(_Strict):
    """The signed checkpoint of the current tree."""

    size: int = Field(ge=0)
    root: str = Field(pattern=_HEX)
    note: str = Field(description="C2SP signed note")


class InclusionProofV1(_Strict):
    """RFC 9162 inclusion proof of entry ``seq`` in the tree of ``size`` (hex hashes)."""

    seq: int = Field(ge=0)
    size: int = Field(ge=0)
    leaf_hash: str
    proof: list[str]
    root: str = Field(pattern=_HEX)


class ConsistencyProofV1(_Strict):
    """RFC 9162 consistency proof between two tree sizes (hex hashes)."""

    old: int = Field(ge=0)
    new: int = Field(ge=0)
    proof: list[str]
    old_root: str = Field(pattern=_HEX)
    new_root: str = Field(pattern=_HEX)


class DeliveryResultV1(_Strict):
    """What a webhook delivery did: recorded, evaluated, kept or a violation."""

    delivery_id: str
    result: str
    seqs: list[int]
    decision: Literal["allow", "deny"] | None = None
    allowed: bool | None = None
    action: Literal["revert"] | None = None
    stage: str | None = None


class HealthV1(_Strict):
    """Liveness."""

    status: Literal["ok"]


class ReadyV1(_Strict):
    """Readiness: the log answers and the signing key signs."""

    status: Literal["ready", "not_ready"]
    reason: str | None


# -- retention (admin) ---------------------------------------------------------

_REASON = "why (an erasure request id, a litigation reference); recorded in the log"


class RedactionRequestV1(_Strict):
    """``POST /v1/admin/redactions``: delete one entry's payload, leaving a tombstone."""

    seq: int = Field(ge=0)
    reason: str = Field(min_length=1, max_length=2000, description=_REASON)


class HoldRequestV1(_Strict):
    """``POST /v1/admin/holds``: a legal hold on a model (or one version), or an entry's subject."""

    model: str | None = Field(default=None, pattern=NAME)
    version: str | None = Field(default=None, pattern=VERSION)
    seq: int | None = Field(default=None, ge=0, description="hold the subject of this entry")
    reason: str = Field(min_length=1, max_length=2000, description=_REASON)


class ReleaseRequestV1(_Strict):
    """``POST /v1/admin/releases``: release legal hold ``hold_id`` (its ``legal_hold`` seq)."""

    hold_id: int = Field(ge=0)
    reason: str = Field(min_length=1, max_length=2000, description=_REASON)


class RetentionRecordedV1(_Strict):
    """The ``redaction`` / ``legal_hold`` / ``legal_hold_release`` entry written."""

    seq: int = Field(ge=0)
    type: Literal["redaction", "legal_hold", "legal_hold_release"]
    subject: dict[str, str]
    checkpoint_size: int = Field(ge=0)
    holds: list[int] = Field(description="releases: the hold ids released")


# -- OpenAPI description ----------------------------------------------------------

_REQUEST_MODELS: list[type[BaseModel]] = []
_WHY = {
    400: "Malformed request (bad JSON, cursor or sizes)",
    401: "Missing or unknown bearer token (webhooks: bad or missing signature)",
    403: "The token lacks the role this operation needs",
    404: "No such entry or checkpoint",
    409: "Conflict: no matching allow in the log, a replayed delivery, or a retention "
    "refusal (inside the floor, under legal hold)",
    413: "Body too large or JSON nested too deep",
    422: "The request does not match its schema or cannot count; errors name the fields",
    502: "MLflow could not be reached",
    503: "The log or the signing key is unavailable, or the webhook secret is not configured",
}


def request_models() -> list[type[BaseModel]]:
    """Every model named by :func:`json_body`, for the document's components."""
    return list(_REQUEST_MODELS)


def json_body(model: type[BaseModel], *, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """``openapi_extra`` naming ``model`` as the required JSON request body.

    The handler reads the body itself (size, depth and duplicate-key limits
    before validation) with this same model. ``headers`` are required header
    parameters (name -> description).
    """
    if model not in _REQUEST_MODELS:
        _REQUEST_MODELS.append(model)
    extra: dict[str, Any] = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        }
    }
    if headers:
        extra["parameters"] = [
            {
                "name": n,
                "in": "header",
                "required": True,
                "schema": {"type": "string", "pattern": "^[!-~]{1,200}$"},  # blank = missing
                "description": d,
            }
            for n, d in headers.items()
        ]
    return extra


def responses(*statuses: int, text: str | None = None) -> dict[int | str, dict[str, Any]]:
    """The documented error statuses (each an ``ErrorV1``), plus a text/plain 200 note."""
    out: dict[int | str, dict[str, Any]] = {
        s: {"model": ErrorV1, "description": _WHY[s]} for s in statuses
    }
    if text:
        out[200] = {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": text}
    return out


# -- Kubernetes admission (admission.k8s.io/v1) ------------------------------------
# Kubernetes owns these shapes, so unknown keys pass on the request side (as
# for MLflow); the response carries only the fields the API server reads.


class _K8s(BaseModel):
    model_config = ConfigDict(extra="allow")


class GroupVersionKindV1(_K8s):
    """``request.kind``: the object's API group, version and kind."""

    group: str = Field(max_length=253)
    version: str = Field(max_length=63)
    kind: str = Field(max_length=63)


class AdmissionRequestV1(_K8s):
    """``request`` of an AdmissionReview: what the API server is about to persist."""

    uid: str = Field(min_length=1, max_length=128)
    kind: GroupVersionKindV1
    operation: Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
    namespace: str | None = Field(default=None, max_length=63)
    name: str | None = Field(default=None, max_length=253)
    object: dict[str, Any] | None = None
    oldObject: dict[str, Any] | None = None
    dryRun: bool = False
    userInfo: dict[str, Any] = {}


class AdmissionReviewV1(_K8s):
    """``POST /v1/admission/kubernetes``: an ``admission.k8s.io/v1`` AdmissionReview."""

    apiVersion: Literal["admission.k8s.io/v1"]
    kind: Literal["AdmissionReview"]
    request: AdmissionRequestV1


class AdmissionStatusV1(_Strict):
    """Why a request was refused (a ``metav1.Status``; ``message`` is shown to the user)."""

    code: int
    message: str


class AdmissionResponseV1(_Strict):
    """The verdict: the request's ``uid``, ``allowed``, and the reasons when refused."""

    uid: str
    allowed: bool
    status: AdmissionStatusV1 | None = None


class AdmissionReviewResponseV1(_Strict):
    """The answer to every admission review, even a malformed one (HTTP 200)."""

    apiVersion: Literal["admission.k8s.io/v1"] = "admission.k8s.io/v1"
    kind: Literal["AdmissionReview"] = "AdmissionReview"
    response: AdmissionResponseV1
