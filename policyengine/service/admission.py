"""``POST /v1/admission/kubernetes``: a Kubernetes validating admission webhook.

Checks at the point of deployment what the MLflow and generic webhooks check
in a registry: a model version reaches a stage only when the log holds an
``allow`` for exactly its artifact digest and that stage (``policyengine
promote``'s rule, through :func:`policyengine.registry.moved`).

The API server sends an ``admission.k8s.io/v1`` AdmissionReview for KServe
``InferenceService`` objects (``serving.kserve.io``) and ``apps/v1``
Deployments. Which model an object deploys is read from its annotations:

- ``policyengine.dev/model``: the model name (required);
- ``policyengine.dev/version``: the model version (required);
- ``policyengine.dev/digest``: the artifact digest, ``sha256:<64 hex>``;
  may be left out when the predictor's ``storageUri`` pins the artifact
  (``oci://...@sha256:<64 hex>``); when both are given they must agree.

A Deployment is a model when its label ``service.admission.model_label``
(default ``policyengine.dev/governed``) is ``"true"`` or it carries the
``policyengine.dev/model`` annotation; other Deployments pass unrecorded.
The stage is the namespace's (``service.admission.stages``), or the value of
the object label ``service.admission.stage_label`` when that is configured
(the two must agree when both name one).

Outcomes. An allow in the log: admitted, ``promoted`` recorded. No allow:
denied, ``violation`` recorded (kind ``admission_without_allow``), the reason
in ``response.status.message``. Fail closed, always HTTP 200 with an
AdmissionReview echoing the request's ``uid`` (``""`` when none could be
read): a malformed review, a missing or invalid annotation, an unmapped
namespace, a digest mismatch, or an unreachable log is denied, and writes
nothing (bad input never reaches the log). Admitted without a record: DELETE
and CONNECT, kinds not enforced, objects that are not models, objects being
deleted, and UPDATEs that change neither the annotations above, the stage,
nor what is deployed (``spec`` of an InferenceService, ``spec.template`` of a
Deployment), so controllers adding finalizers or status are never blocked.
``request.dryRun``: the same verdict, nothing recorded (``sideEffects:
NoneOnDryRun``).

Authentication: the API server presents a bearer token (its admission
kubeconfig) of a token with the ``admission`` or ``evaluator`` role; 401/403
otherwise, which ``failurePolicy: Fail`` turns into a refusal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from policyengine import registry
from policyengine.service.auth import AuthError, Principal, require
from policyengine.service.limits import BodyTooLargeError, InputError, loads_limited
from policyengine.service.operations import serialised
from policyengine.service.runtime import Service
from policyengine.service.settings import AdmissionSettings
from policyengine.service.wire import (
    DIGEST,
    NAME,
    VERSION,
    AdmissionRequestV1,
    AdmissionResponseV1,
    AdmissionReviewResponseV1,
    AdmissionReviewV1,
    AdmissionStatusV1,
    json_body,
    responses,
)

__all__ = [
    "ANNOTATION_DIGEST",
    "ANNOTATION_MODEL",
    "ANNOTATION_VERSION",
    "Check",
    "Pass",
    "Refuse",
    "assess",
    "judge",
    "router",
    "storage_uri",
]

router = APIRouter(tags=["admission"])
_log = structlog.get_logger("policyengine.service")
_SOURCE = "kubernetes"

ANNOTATION_MODEL = "policyengine.dev/model"
ANNOTATION_VERSION = "policyengine.dev/version"
ANNOTATION_DIGEST = "policyengine.dev/digest"
_ANNOTATIONS = (ANNOTATION_MODEL, ANNOTATION_VERSION, ANNOTATION_DIGEST)
_KINDS = {("serving.kserve.io", "InferenceService"), ("apps", "Deployment")}
_PINNED = re.compile(r"@(sha256:[0-9a-f]{64})$")
_FIELD_LIMIT = 200
_LOG_CODES = frozenset({"log_unavailable", "audit_log_unavailable", "audit_storage_error"})


@dataclass(frozen=True)
class Pass:
    """Admit without a record: nothing governed is being deployed."""

    why: str


@dataclass(frozen=True)
class Refuse:
    """Deny without a record: the review cannot be judged (bad input or configuration)."""

    why: str
    code: int = 400


@dataclass(frozen=True)
class Check:
    """Judge by the log: this version is about to run at this stage."""

    model: str
    version: str
    digest: str
    stage: str
    details: Mapping[str, Any] = field(default_factory=dict)


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _meta(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """``metadata.labels`` or ``metadata.annotations`` (string values only)."""
    found = _map(_map(obj.get("metadata")).get(key))
    return {k: v for k, v in found.items() if isinstance(v, str)}


def storage_uri(obj: Mapping[str, Any]) -> str | None:
    """The predictor's ``storageUri``: ``spec.predictor.model`` or a framework key."""
    predictor = _map(_map(obj.get("spec")).get("predictor"))
    for key in ("model", *sorted(predictor)):
        uri = _map(predictor.get(key)).get("storageUri")
        if isinstance(uri, str):
            return uri
    return None


def _deployed(kind: str, obj: Mapping[str, Any], settings: AdmissionSettings) -> str:
    """What an UPDATE must leave alone to need no check: identity, stage, workload."""
    spec = _map(obj.get("spec"))
    workload = spec if kind == "InferenceService" else spec.get("template")
    labels = _meta(obj, "labels")
    found = {
        "annotations": {k: _meta(obj, "annotations").get(k) for k in _ANNOTATIONS},
        "stage_label": labels.get(settings.stage_label) if settings.stage_label else None,
        "workload": workload,
    }
    return json.dumps(found, sort_keys=True, default=str)


def _is_model(kind: str, obj: Mapping[str, Any], settings: AdmissionSettings) -> bool:
    if kind == "InferenceService":
        return True
    return (
        _meta(obj, "labels").get(settings.model_label) == "true"
        or ANNOTATION_MODEL in _meta(obj, "annotations")
    )


def _stage(req: AdmissionRequestV1, obj: Mapping[str, Any], settings: AdmissionSettings) -> str:
    """The stage of the namespace or of the stage label.

    Raises:
        ValueError: no stage, or the two disagree (the review is refused).
    """
    namespace = req.namespace or _map(obj.get("metadata")).get("namespace") or ""
    by_namespace = settings.stages.get(str(namespace))
    by_label = _meta(obj, "labels").get(settings.stage_label) if settings.stage_label else None
    if by_namespace and by_label and by_namespace != by_label:
        raise ValueError(
            f"label {settings.stage_label}={by_label} disagrees with namespace "
            f"{namespace!r}, which is stage {by_namespace!r}"
        )
    stage = by_namespace or by_label
    if not stage:
        raise ValueError(
            f"namespace {namespace!r} maps to no stage; add it to service.admission.stages"
        )
    if not re.match(r"^[a-z][a-z0-9_-]{0,63}$", stage):
        raise ValueError(f"stage {stage!r} from label {settings.stage_label} is not a stage name")
    return stage


def _annotation(annotations: Mapping[str, Any], key: str, pattern: str) -> str:
    value = annotations.get(key)
    if value is None:
        raise ValueError(f"annotation {key} is missing; set it on the object's metadata")
    if not re.match(pattern, value):
        raise ValueError(f"annotation {key}: {value[:80]!r} does not match {pattern}")
    return value


def _digest(annotations: Mapping[str, Any], uri: str | None) -> str:
    pinned = _PINNED.search(uri or "")
    given = annotations.get(ANNOTATION_DIGEST)
    if given is None and pinned is None:
        raise ValueError(
            f"annotation {ANNOTATION_DIGEST} is missing and storageUri pins no digest; "
            "set it to the artifact's sha256:<64 hex>"
        )
    if given is not None:
        given = _annotation(annotations, ANNOTATION_DIGEST, DIGEST)
    if pinned and given and pinned.group(1) != given:
        raise ValueError(
            f"storageUri pins {pinned.group(1)} but annotation {ANNOTATION_DIGEST} is {given}"
        )
    return given or pinned.group(1)  # type: ignore[union-attr]


def _details(req: AdmissionRequestV1, kind: str, uri: str | None) -> dict[str, Any]:
    """What the ``violation`` records about the request (bounded strings only)."""
    user = req.userInfo.get("username")

    def cut(value: Any) -> str | None:
        return str(value)[:_FIELD_LIMIT] if value is not None else None

    return {
        "source": _SOURCE,
        "uid": cut(req.uid),
        "kind": kind,
        "operation": req.operation,
        "namespace": cut(req.namespace),
        "name": cut(req.name),
        "reported_user": cut(user),
        "storage_uri": cut(uri),
    }


def assess(req: AdmissionRequestV1, settings: AdmissionSettings) -> Pass | Refuse | Check:
    """Decide what a review needs: nothing, a refusal, or the log's judgement.

    Pure: reads only the review and the settings.
    """
    gk = (req.kind.group, req.kind.kind)
    if gk not in _KINDS or req.kind.kind not in settings.kinds:
        return Pass(f"{req.kind.kind} is not an enforced kind")
    if req.operation not in ("CREATE", "UPDATE"):
        return Pass(f"{req.operation} deploys nothing")
    obj = req.object
    if not isinstance(obj, dict):
        return Refuse(f"request.object: expected the {req.kind.kind} being admitted")
    kind = req.kind.kind
    if not _is_model(kind, obj, settings):
        return Pass(f"the {kind} is not labelled {settings.model_label}=true")
    if _map(obj.get("metadata")).get("deletionTimestamp"):
        return Pass(f"the {kind} is being deleted")
    if req.operation == "UPDATE" and isinstance(req.oldObject, dict) and (
        _deployed(kind, req.oldObject, settings) == _deployed(kind, obj, settings)
    ):
        return Pass("the update changes neither the model, the stage nor the workload")
    annotations = _meta(obj, "annotations")
    uri = storage_uri(obj) if kind == "InferenceService" else None
    try:
        stage = _stage(req, obj, settings)
        model = _annotation(annotations, ANNOTATION_MODEL, NAME)
        version = _annotation(annotations, ANNOTATION_VERSION, VERSION)
        digest = _digest(annotations, uri)
    except ValueError as exc:
        return Refuse(str(exc), 403)
    return Check(model, version, digest, stage, _details(req, kind, uri))


def _review(uid: str, allowed: bool, message: str | None = None, code: int = 403) -> JSONResponse:
    status = None if allowed else AdmissionStatusV1(code=code, message=message or "denied")
    body = AdmissionReviewResponseV1(
        response=AdmissionResponseV1(uid=uid, allowed=allowed, status=status)
    )
    return JSONResponse(body.model_dump(mode="json", exclude_none=True))


def _uid_of(doc: Any) -> str:
    """The request's uid when one can be read from a review that failed validation."""
    uid = _map(_map(doc).get("request")).get("uid")
    return uid[:128] if isinstance(uid, str) else ""


def _plain_json(raw: bytes) -> Any:
    """The body as plain JSON, only to find the uid of a review the bounded reader refused
    (a NUL in some key, say): the API server matches the answer to its request by uid."""
    import json

    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, or nested too deep: no uid to echo
        return None


def _parse(raw: bytes, max_depth: int) -> tuple[str, AdmissionRequestV1 | str]:
    """(uid, the request) or (uid, why the review is malformed)."""
    try:
        doc = loads_limited(raw, max_depth)
    except InputError as exc:
        return _uid_of(_plain_json(raw)), f"malformed AdmissionReview: {exc}"
    try:
        return _uid_of(doc), AdmissionReviewV1.model_validate(doc).request
    except ValidationError as exc:
        first = exc.errors()[0]
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        return _uid_of(doc), f"malformed AdmissionReview: {path}: {first['msg']}"


def judge(svc: Service, check: Check, actor: str, dry_run: bool) -> tuple[bool, str]:
    """(allowed, message): the registry flow's verdict; its entries unless ``dry_run``."""
    version = registry.Version(check.model, check.version, check.digest, actor)
    moved = registry.moved(
        svc.engine,
        version,
        check.stage,
        kind="admission_without_allow",
        details={**check.details, "stage": check.stage},
        dry_run=dry_run,
    )
    if moved.allowed:
        return True, ""
    where = "" if dry_run or moved.seq is None else f" (violation recorded at seq {moved.seq})"
    return False, f"policyengine: {moved.reason}{where}"


def _failure(exc: Exception) -> str:
    """A denial's message when judging failed: fail closed, without server details."""
    code = getattr(exc, "code", "internal_error")
    _log.error("admission_failed", code=code, error_type=type(exc).__name__)
    if code in _LOG_CODES:
        return "policyengine: the audit log is unavailable; denied (fail closed); retry later"
    return f"policyengine: cannot judge the request ({code}); denied (fail closed)"


def _caller(who: Annotated[Principal, Depends(require(None))]) -> Principal:
    """The authenticated caller, holding the ``admission`` or ``evaluator`` role."""
    if not (who.has("admission") or who.has("evaluator")):
        raise AuthError(
            403, "forbidden", f"role 'admission' or 'evaluator' required, token {who.id!r} has "
            f"{sorted(who.roles)}",
        )
    return who


@router.post(
    "/v1/admission/kubernetes",
    summary="Kubernetes validating admission webhook for model deployments",
    response_model=AdmissionReviewResponseV1,
    responses=responses(401, 403),
    openapi_extra=json_body(AdmissionReviewV1),
)
async def admission_review(
    request: Request, who: Annotated[Principal, Depends(_caller)]
) -> JSONResponse:
    """Admit a model deployment only when the log holds its ``allow`` (see module doc)."""
    svc: Service = request.app.state.svc
    counter = svc.metrics.webhook_deliveries
    try:
        raw = await request.body()
    except BodyTooLargeError as exc:
        counter.labels(source=_SOURCE, result="malformed").inc()
        return _review("", False, f"malformed AdmissionReview: {exc}", 400)
    uid, parsed = _parse(raw, svc.settings.limits.max_json_depth)
    if isinstance(parsed, str):
        counter.labels(source=_SOURCE, result="malformed").inc()
        return _review(uid, False, parsed, 400)
    verdict = assess(parsed, svc.settings.admission)
    if isinstance(verdict, Pass):
        counter.labels(source=_SOURCE, result="passed").inc()
        return _review(uid, True)
    if isinstance(verdict, Refuse):
        counter.labels(source=_SOURCE, result="refused").inc()
        return _review(uid, False, f"policyengine: {verdict.why}", verdict.code)
    try:
        allowed, message = await run_in_threadpool(
            serialised(judge), svc, verdict, who.id, parsed.dryRun
        )
    except Exception as exc:  # fail closed: an error is a denial, never a 5xx
        counter.labels(source=_SOURCE, result="failed").inc()
        return _review(uid, False, _failure(exc), 503)
    counter.labels(source=_SOURCE, result="admitted" if allowed else "violation").inc()
    return _review(uid, allowed, message)
