"""MLflow registry events, translated into the registry flow (deliveries already verified).

Owns turning each MLflow event into ``policyengine.registry`` calls (the
flow every registry adapter shares) and what only MLflow needs: fetching the
card through the REST API, the alias history, and moving an alias back.
What each event does:

- ``model_version.created``: fetch the version (and a card from a tag or the
  run's artifacts) through the MLflow REST API, record ``registered`` (as
  ``policyengine event registered`` does), then evaluate the registration
  policies exactly as ``policyengine gate --event register`` does (the
  decision entry is the gate's own). A version whose card cannot be read or
  does not validate is recorded as a ``violation`` (fail closed).
- ``model_version_tag.set``: record ``webhook_received``; values of tags
  configured as card fields are kept, other values only as a digest.
- ``model_version_alias.created``: map the alias to a stage (configuration).
  With a matching ``allow`` in the log for that version's digest and stage
  (the ``promote`` check), record the promotion. Without one, record a
  ``violation`` and, when configured, move the alias back to the version our
  log last saw it on (or delete it) via the REST API, recording
  ``alias_reverted``. MLflow then reports our own revert as a new alias event;
  that echo is recognised (a marker in the delivery table) and only recorded.
- everything else: ``webhook_received``, acknowledged, not evaluated.

Every alias event is recorded (``webhook_received`` with the alias and
version), so the alias history needed for a revert comes from the log itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import structlog

from policyengine import registry
from policyengine.errors import CardValidationError, InputError
from policyengine.service import operations
from policyengine.service.runtime import Service

__all__ = ["handle_event", "previous_alias_version"]

_log = structlog.get_logger("policyengine.service")
_ACTOR = "webhook:mlflow"
_ALIAS_TYPES = ["webhook_received", "alias_reverted"]
_ALIAS_SCAN_LIMIT = 500

Handler = Callable[[Service, str, dict[str, Any], str], dict[str, Any]]


def _subject(data: dict[str, Any], digest: str | None = None) -> dict[str, str]:
    subject = {"name": str(data.get("name") or "mlflow")}
    if data.get("version") not in (None, ""):
        subject["version"] = str(data["version"])
    if digest:
        subject["digest"] = digest
    return subject


def _received(
    svc: Service, event: str, data: dict[str, Any], delivery_id: str, **extra: Any
) -> int:
    payload = {"source": "mlflow", "event": event, "delivery_id": delivery_id, **extra}
    return svc.append("webhook_received", _subject(data), _ACTOR, payload).seq


def handle_event(svc: Service, envelope: dict[str, Any], delivery_id: str) -> dict[str, Any]:
    """Record (and where the event calls for it, evaluate) one verified delivery.

    Returns:
        A JSON-able summary for the response: ``result`` and entry seqs.
    """
    event = f"{envelope['entity']}.{envelope['action']}"
    handler = _HANDLERS.get(event, _other)
    return handler(svc, event, envelope["data"], delivery_id)


def _other(svc: Service, event: str, data: dict[str, Any], delivery_id: str) -> dict[str, Any]:
    fields = {k: str(data[k]) for k in ("name", "version", "alias", "key") if k in data}
    seq = _received(svc, event, data, delivery_id, fields=fields, evaluated=False)
    return {"result": "recorded", "seqs": [seq]}


def _tag_set(svc: Service, event: str, data: dict[str, Any], delivery_id: str) -> dict[str, Any]:
    key, value = str(data.get("key", "")), str(data.get("value", ""))
    cfg = svc.settings.mlflow
    tag: dict[str, Any] = {
        "key": key,
        "value_digest": "sha256:" + hashlib.sha256(value.encode()).hexdigest(),
    }
    if key in cfg.tag_fields:
        tag["card_field"] = cfg.tag_fields[key]
        tag["value"] = value
    seq = _received(svc, event, data, delivery_id, tag=tag, evaluated=False)
    return {"result": "recorded", "seqs": [seq]}


def _version_created(
    svc: Service, event: str, data: dict[str, Any], delivery_id: str
) -> dict[str, Any]:
    name, version = str(data["name"]), str(data["version"])
    card: dict[str, Any] | None = None
    digest, origin, problem = None, "none", None
    try:
        card, origin = operations.card_for_mlflow_version(svc, name, version, data)
        digest = registry.card_digest(card)
    except (InputError, CardValidationError) as exc:
        # Not readable as a card: the flow records it as a violation (fail closed).
        # Anything else (MLflow or the log unavailable) is a 5xx: MLflow retries.
        problem = exc.diagnostics()
    details = {"source": "mlflow", "delivery_id": delivery_id}
    registration = {
        **details,
        "mlflow": {k: data.get(k) for k in ("source", "run_id") if data.get(k) is not None},
        "card_source": origin,
    }
    outcome = registry.registered(
        svc.engine,
        registry.Version(name, version, digest, _ACTOR),
        card,
        data=registration,
        problem=problem,
        details=details,
    )
    if outcome.decision is None:
        return {"result": "violation", "seqs": outcome.seqs}
    return {"result": "evaluated", "decision": outcome.decision, "seqs": outcome.seqs}


def _alias_state(entry: Any, alias: str) -> tuple[bool, str | None]:
    """(mentions alias, version it points to afterwards) for one log entry."""
    payload = entry.payload if isinstance(entry.payload, dict) else {}
    if payload.get("alias") != alias:
        return False, None
    if entry.envelope.get("type") == "alias_reverted":
        return True, payload.get("restored_version")
    if payload.get("event") == "model_version_alias.deleted":
        return True, None
    if payload.get("event") == "model_version_alias.created":
        return True, payload.get("version")
    return False, None


def previous_alias_version(svc: Service, name: str, alias: str, before_seq: int) -> str | None:
    """The version ``alias`` pointed to before entry ``before_seq``, per our log."""
    entries = svc.log.query(
        name=name,
        types=_ALIAS_TYPES,
        after_seq=before_seq,
        descending=True,
        limit=_ALIAS_SCAN_LIMIT,
    )
    for entry in entries:
        mentions, version = _alias_state(entry, alias)
        if mentions:
            return version
    return None


def _echo_key(name: str, alias: str, version: str | None) -> str:
    return f"echo:mlflow:{name}:{alias}:{version or '-'}"


def _alias_created(
    svc: Service, event: str, data: dict[str, Any], delivery_id: str
) -> dict[str, Any]:
    name, alias, version = str(data["name"]), str(data["alias"]), str(data["version"])
    stage = svc.settings.mlflow.aliases.get(alias)
    echo = svc.deliveries.consume(_echo_key(name, alias, version))
    seq = _received(
        svc,
        event,
        data,
        delivery_id,
        alias=alias,
        version=version,
        stage=stage,
        evaluated=bool(stage) and not echo,
        echo_of_revert=echo,
    )
    if stage is None or echo:
        return {"result": "recorded", "seqs": [seq]}
    digest = operations.version_digest(svc, name, version)
    target = registry.Version(name, version, digest, _ACTOR)
    details = {
        "source": "mlflow",
        "delivery_id": delivery_id,
        "alias": alias,
        "stage": stage,
        "version": version,
    }
    check = registry.moved(svc.engine, target, stage, kind="alias_without_allow", details=details)
    if check.allowed:
        return {"result": "kept", "stage": stage, "seqs": [seq, *check.seqs]}
    violation = check.seqs[0]  # not allowed: the flow recorded the violation
    seqs = [seq, violation]
    try:
        reverted = _revert(svc, name, alias, version, digest, seq, violation)
    except Exception as exc:  # the violation stands; a retry would only duplicate it
        _log.error("alias_revert_failed", model=name, alias=alias, error=type(exc).__name__)
        return {"result": "violation_unreverted", "stage": stage, "seqs": seqs}
    if reverted is not None:
        seqs.append(reverted)
    return {"result": "violation", "stage": stage, "seqs": seqs}


def _alias_deleted(
    svc: Service, event: str, data: dict[str, Any], delivery_id: str
) -> dict[str, Any]:
    alias = str(data["alias"])
    stage = svc.settings.mlflow.aliases.get(alias)
    seq = _received(
        svc, event, data, delivery_id, alias=alias, version=None, stage=stage, evaluated=False
    )
    return {"result": "recorded", "seqs": [seq]}


def _revert(
    svc: Service,
    name: str,
    alias: str,
    version: str,
    digest: str | None,
    event_seq: int,
    violation_seq: int,
) -> int | None:
    """Move the alias back (or delete it) when configured; returns the entry seq."""
    action = svc.settings.mlflow.on_violation
    if action == "record" or svc.mlflow is None:
        return None
    current = svc.mlflow.get_alias(name, alias)
    if current != version:
        _log.info("alias_moved_since", model=name, alias=alias)
        return None
    previous = previous_alias_version(svc, name, alias, event_seq) if action == "revert" else None
    if previous == version:
        previous = None
    if previous is None:
        svc.mlflow.delete_alias(name, alias)
    else:
        key = _echo_key(name, alias, previous)
        svc.deliveries.claim(key)
        try:
            svc.mlflow.set_alias(name, alias, previous)
        except Exception:
            svc.deliveries.release(key)
            raise
    payload = {
        "source": "mlflow",
        "alias": alias,
        "from_version": version,
        "restored_version": previous,
        "action": "restored" if previous else "deleted",
        "violation_seq": violation_seq,
    }
    subject = {"name": name, "version": version, **({"digest": digest} if digest else {})}
    return svc.append("alias_reverted", subject, _ACTOR, payload).seq


_HANDLERS: dict[str, Handler] = {
    "model_version.created": _version_created,
    "model_version_tag.set": _tag_set,
    "model_version_alias.created": _alias_created,
    "model_version_alias.deleted": _alias_deleted,
}
