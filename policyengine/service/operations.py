"""The service's calls into the library: the same functions the CLI runs.

Owns only the adaptation from HTTP inputs to ``policyengine.gate.gate``,
``policyengine.promote.promote`` / ``record_event`` and
``policyengine.approvals`` (statement building, verification, recording), so
that ``POST /v1/decisions`` means exactly ``policyengine gate``, ``POST
/v1/promotions`` exactly ``policyengine promote``, and so on. Nothing here
decides anything itself. The library functions get the service's open log,
signer, trust store and compiled policy set (one of each per process) instead
of opening their own per call as the CLI does; the outcome is the same. Every
write reaches the log through ``policyengine.ledger.record`` inside those
functions (entry and signed checkpoint in one transaction, then the receipt).

Also owns how an MLflow model version becomes a card (a card tag, a run
artifact, or the MLflow card importer over the version's metadata) and its
digest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from policyengine.errors import InputError, PolicyEngineError
from policyengine.service.runtime import Service

__all__ = [
    "AliasCheck",
    "Outcome",
    "approve",
    "card_digest",
    "card_for_mlflow_version",
    "decide",
    "lifecycle_event",
    "promote",
    "promote_or_refuse",
    "promotion",
    "record_registration",
    "serialised",
    "version_digest",
    "waive",
]

T = TypeVar("T")
REGISTRY_STAGE = "registry"
"""Stage recorded for registration decisions (a registration targets no stage)."""


@dataclass(frozen=True)
class Outcome:
    """A logged decision: the gate's result in the service's terms."""

    allow: bool
    seq: int
    decision: dict[str, Any]
    receipt: dict[str, Any]
    checkpoint_size: int | None


@dataclass(frozen=True)
class AliasCheck:
    """Whether the log justifies a model version at a stage, and why not."""

    allowed: bool
    reason: str = ""
    seq: int | None = None
    """The ``promoted`` entry when allowed."""


def serialised(fn: Callable[..., T]) -> Callable[..., T]:
    """Wrap a write so it runs within the service's bound on concurrent writers."""

    def run(svc: Service, *args: Any) -> T:
        with svc.writers:
            return fn(svc, *args)

    return run


def card_digest(card: Mapping[str, Any]) -> str:
    """The artifact digest a card names (``model.artifact_digest``).

    Raises:
        InputError: the card names none (it cannot be bound to an artifact).
    """
    digest = (card.get("model") or {}).get("artifact_digest") if isinstance(card, Mapping) else None
    if not isinstance(digest, str) or not digest.startswith("sha256:"):
        raise InputError("card: expected model.artifact_digest as sha256:<64 hex>")
    return digest


def decide(svc: Service, card: dict[str, Any], event: Mapping[str, Any], actor: str) -> Outcome:
    """Run the gate (``policyengine gate``) and count the decision in the metrics."""
    from policyengine.gate import gate

    stage = str(event.get("stage") or REGISTRY_STAGE)
    kind = str(event.get("type") or "promote")
    with svc.metrics.time_decision():
        result = gate(
            card,
            stage,
            kind,
            svc.config,
            actor=actor,
            card_source="request",
            log=svc.log,
            signer=svc.signer,
            compiled=svc.compiled(stage),
            trust=svc.trust(),
        )
    svc.metrics.record_decision(result.decision, kind)
    size = getattr(result.checkpoint, "size", None)
    return Outcome(result.allow, result.seq, result.decision, result.receipt, size)


def promote(svc: Service, model: str, version: str, digest: str, stage: str, actor: str) -> Any:
    """Run ``policyengine promote``; returns its RecordResult (``.seq`` of ``promoted``).

    Raises:
        PromotionRefusedError: no matching fresh allow in the log (nothing written).
    """
    from policyengine.promote import promote as library_promote

    return library_promote(
        model=model,
        version=version,
        digest=digest,
        stage=stage,
        config=svc.config,
        actor=actor,
        log=svc.log,
        signer=svc.signer,
        compiled=svc.compiled(stage),
    )


def promote_or_refuse(
    svc: Service, model: str, version: str, digest: str | None, stage: str, actor: str
) -> AliasCheck:
    """Run ``promote``; a refusal (no matching allow) is returned, not raised.

    With an allow the ``promoted`` entry is written; without one nothing is,
    and the reason says what the log lacks.
    """
    from policyengine.promote import PromotionRefusedError

    if not digest:
        return AliasCheck(
            False, f"no artifact digest known for {model} {version}; register it first"
        )
    try:
        result = promote(svc, model, version, digest, stage, actor)
    except PromotionRefusedError as exc:
        return AliasCheck(False, exc.diagnostics())
    return AliasCheck(True, seq=int(result.seq))


def _tags(version: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, str]:
    tags: dict[str, str] = {}
    raw = version.get("tags") or []
    if isinstance(raw, list):  # REST shape: [{"key", "value"}]
        tags.update({str(t.get("key")): str(t.get("value")) for t in raw if isinstance(t, Mapping)})
    elif isinstance(raw, Mapping):
        tags.update({str(k): str(v) for k, v in raw.items()})
    hook_tags = data.get("tags")
    if isinstance(hook_tags, Mapping):
        tags.update({str(k): str(v) for k, v in hook_tags.items()})
    return tags


def _set_path(card: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = card
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            return
    node[leaf] = value


def _load_json_card(text: str | bytes, where: str) -> dict[str, Any]:
    try:
        card = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{where}: expected a JSON model card: {exc}") from exc
    if not isinstance(card, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(card).__name__}")
    return card


def card_for_mlflow_version(
    svc: Service, name: str, version: str, data: Mapping[str, Any]
) -> tuple[dict[str, Any], str]:
    """Fetch a version's metadata from MLflow and build its card.

    Sources, first found wins: the tag ``mlflow.card_tag`` holding a whole
    card as JSON; the run artifact ``mlflow.card_artifact``; the MLflow card
    importer over the version metadata (``card.<path>`` tags). Tags listed in
    ``mlflow.tag_fields`` then set card fields. Returns (card, source).

    Raises:
        InputError: a card source is not a JSON card (or the metadata is unusable).
        MlflowClientError: MLflow cannot be reached.
    """
    cfg = svc.settings.mlflow
    meta: dict[str, Any] = dict(data)
    if svc.mlflow is not None:
        meta = svc.mlflow.get_model_version(name, version) or meta
    tags = _tags(meta, data)
    run_id = str(meta.get("run_id") or data.get("run_id") or "")
    card: dict[str, Any] | None = None
    source = "mlflow-metadata"
    if cfg.card_tag and cfg.card_tag in tags:
        card, source = _load_json_card(tags[cfg.card_tag], f"tag {cfg.card_tag}"), "tag"
    elif cfg.card_artifact and run_id and svc.mlflow is not None:
        raw = svc.mlflow.get_run_artifact(run_id, cfg.card_artifact)
        if raw is not None:
            card, source = _load_json_card(raw, f"artifact {cfg.card_artifact}"), "artifact"
    if card is None:
        card = _import_mlflow_card(meta, tags)
    for tag, path in cfg.tag_fields.items():
        if tag in tags:
            _set_path(card, path, tags[tag])
    model = card.setdefault("model", {})
    if isinstance(model, dict):
        model["name"], model["version"] = name, version
    return card, source


def _import_mlflow_card(meta: Mapping[str, Any], tags: Mapping[str, str]) -> dict[str, Any]:
    """The MLflow card importer's card for this version (``card.<path>`` tags fill fields)."""
    from policyengine.cards.importers import import_text

    name, version = meta.get("name"), meta.get("version")
    doc = {**meta, "tags": dict(tags)}
    return dict(import_text("mlflow", json.dumps(doc), source=f"mlflow:{name}/{version}").card)


def version_digest(svc: Service, name: str, version: str) -> str | None:
    """The artifact digest of a version: from our ``registered`` entry, else MLflow."""
    for entry in svc.log.query(
        name=name, version=version, types=["registered"], descending=True, limit=1
    ):
        digest = (entry.envelope.get("subject") or {}).get("digest")
        if digest:
            return str(digest)
    if svc.mlflow is None:
        return None
    try:
        card, _ = card_for_mlflow_version(svc, name, version, {"name": name, "version": version})
        return card_digest(card)
    except PolicyEngineError:  # no card, or MLflow cannot say: no digest, so no allow can match
        return None


def _record(
    svc: Service,
    entry_type: str,
    subject: dict[str, str],
    statement: dict[str, Any],
    signature: Mapping[str, str] | None,
    note: str | None = None,
) -> tuple[int, int]:
    from policyengine.approvals import record_statement

    seq, size = record_statement(
        svc.config,
        entry_type,
        subject,
        statement,
        approver_key=None,
        note=note,
        signature=dict(signature) if signature is not None else None,
        log=svc.log,
        signer=svc.signer,
    )
    return int(seq), int(size)


def _refused(path: str, message: str) -> Exception:
    """A statement the service will not record: 422 naming the field (nothing is written)."""
    from policyengine.service.limits import InputError as RequestError
    from policyengine.service.wire import ErrorItem

    return RequestError(
        422, "statement_invalid", f"{path}: {message}", [ErrorItem(path=path, message=message)]
    )


def _require_counting(
    svc: Service,
    statement: dict[str, Any],
    signature: Mapping[str, str] | None,
    roles: frozenset[str] | None,
) -> dict[str, Any]:
    """Verify a statement now and refuse it unless it counts.

    The CLI records what was asked and warns; the service refuses instead, so
    no request can put statements in the log that the gate would ignore
    (the caller fixes the trust file or the signature and sends it again).
    """
    from policyengine.approvals import verify_statement

    check = verify_statement(
        statement,
        signature,
        svc.trust(),
        roles=roles,
        allow_unsigned=svc.config.allow_unsigned_approvals,
    )
    if not check:
        reason = str(check.reason)
        role_problem = "does not hold role" in reason
        raise _refused("$.role" if role_problem else "$.signature", reason)
    return {"counts": True, "reason": None}


def _statement_times(body: Mapping[str, Any], *, required_expiry: bool) -> tuple[str, str | None]:
    """(time, expires) as the statement holds them: given when signed, else now.

    Both must be what the gate can read (RFC 3339 date-times with an offset,
    ``policy.waivers.parse_time``) and the expiry must be in the future, or
    the statement could never count.
    """
    from datetime import UTC, datetime

    from policyengine.approvals import now_text
    from policyengine.cli.waive import expiry
    from policyengine.policy.waivers import parse_time

    signed = body.get("signature") is not None
    given = body.get("time")
    if signed and not given:
        raise _refused("$.time", "a signed statement must carry the time it was signed with")
    if given is not None and parse_time(given) is None:
        raise _refused("$.time", f"expected an RFC 3339 date-time with offset, got {given!r}")
    now = datetime.now(UTC)
    when = str(given) if given else now_text(now)
    raw = body.get("expires")
    if raw is None:
        if required_expiry:
            raise _refused("$.expires", "expected a date, date-time or duration")
        return when, None
    if signed:
        expires = str(raw)  # signed bytes: taken as given, so it must already be absolute
    else:
        try:
            expires = expiry(str(raw), now)
        except InputError as exc:
            raise _refused("$.expires", str(exc).removeprefix("--expires: ")) from exc
    deadline = parse_time(expires)
    if deadline is None:
        raise _refused("$.expires", f"expected an RFC 3339 date-time with offset, got {raw!r}")
    if deadline <= now:
        raise _refused("$.expires", f"{raw!r} has already passed")
    return when, expires


def _check_signing(svc: Service, body: Mapping[str, Any], what: str) -> None:
    from policyengine.cli.approve import check_signing

    check_signing(svc.config, "signature" if body.get("signature") else None, what)


def approve(svc: Service, body: Mapping[str, Any], approver: str) -> dict[str, Any]:
    """``policyengine approve`` with the caller as approver; returns seq and whether it counts."""
    from policyengine.approvals import approval_statement

    _check_signing(svc, body, "approval")
    when, expires = _statement_times(body, required_expiry=False)
    statement = approval_statement(
        model=body["model"],
        version=body["version"],
        digest=body["digest"],
        role=body["role"],
        approver=approver,
        time=when,
        expires=expires,
    )
    signature = body.get("signature")
    verdict = _require_counting(svc, statement, signature, frozenset([body["role"]]))
    subject = {"name": body["model"], "version": body["version"], "digest": body["digest"]}
    seq, size = _record(svc, "approval", subject, statement, signature, body.get("note"))
    return {"seq": seq, "checkpoint_size": size, "statement": statement, **verdict}


def waive(svc: Service, body: Mapping[str, Any], approver: str) -> dict[str, Any]:
    """``policyengine waive`` with the caller as approver."""
    from policyengine.approvals import new_waiver_id, waiver_statement

    if body.get("version") and body.get("versions"):
        raise InputError("$.versions: give version or versions, not both")
    _check_signing(svc, body, "waiver")
    when, expires = _statement_times(body, required_expiry=True)
    statement = waiver_statement(
        waiver_id=body.get("id") or new_waiver_id(),
        rules=body["rules"],
        model=body["model"],
        version=body.get("version"),
        versions=body.get("versions"),
        reason=body["reason"],
        ticket=body["ticket"],
        approver=approver,
        time=when,
        expires=str(expires),
    )
    signature = body.get("signature")
    roles = svc.trust().waiver_roles or None
    verdict = _require_counting(svc, statement, signature, roles)
    subject = {"name": body["model"]} | (
        {"version": body["version"]} if body.get("version") else {}
    )
    seq, size = _record(svc, "waiver", subject, statement, signature)
    return {"seq": seq, "checkpoint_size": size, "statement": statement, **verdict}


def _record_view(result: Any) -> dict[str, Any]:
    return {
        "seq": result.seq,
        "checkpoint_size": result.checkpoint_size,
        "receipt": result.receipt,
        "decision_seq": result.decision_seq,
    }


def promotion(svc: Service, body: Mapping[str, Any], actor: str) -> dict[str, Any]:
    """``policyengine promote``: 409 (promotion_refused) without a matching allow."""
    result = promote(svc, body["model"], body["version"], body["digest"], body["stage"], actor)
    return _record_view(result)


def record_registration(
    svc: Service, model: str, version: str, digest: str | None, actor: str, data: dict[str, Any]
) -> int:
    """``policyengine event registered`` for a version a registry reported; returns its seq."""
    body = {
        "type": "registered",
        "model": model,
        "version": version,
        "digest": digest,
        "data": data,
    }
    return int(lifecycle_event(svc, body, actor)["seq"])


def lifecycle_event(svc: Service, body: Mapping[str, Any], actor: str) -> dict[str, Any]:
    """``policyengine event TYPE``: validated against the lifecycle-event schema."""
    from policyengine.promote import record_event

    result = record_event(
        body["type"],
        model=body["model"],
        version=body.get("version"),
        digest=body.get("digest"),
        stage=body.get("stage"),
        config=svc.config,
        actor=actor,
        data=body.get("data") or {},
        log=svc.log,
        signer=svc.signer,
    )
    return _record_view(result)
