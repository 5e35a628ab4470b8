"""Read-only audit endpoints: entries, checkpoint, proofs, receipts, export.

Owns the HTTP shape of the log for auditors and dashboards. Every route here
needs an authenticated token of any role (``auditor`` is enough) and writes
no entry; serving a checkpoint may sign one for the current tree size, which
adds a signature, never an entry. Proofs and hashes are hex, checkpoints are
C2SP signed notes, exports are the log's evidence bundle as a ``.tar.gz``.
"""

from __future__ import annotations

import base64
import re
import shutil
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BeforeValidator
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from policyengine.service.auth import Principal, require
from policyengine.service.limits import InputError
from policyengine.service.runtime import Service
from policyengine.service.wire import (
    CheckpointV1,
    ConsistencyProofV1,
    EntriesPageV1,
    EntryV1,
    InclusionProofV1,
    ReceiptV1,
    responses,
)

__all__ = ["decision_outcome", "router"]

router = APIRouter(prefix="/v1/audit", tags=["audit"])
Reader = Annotated[Principal, Depends(require(None))]
_MAX_LIMIT = 1000
_ERRORS = (400, 401, 403, 422, 503)
_NUMBER = re.compile(r"^\s*[+-]?[0-9.]+([eE][+-]?[0-9]+)?\s*$")


def _not_a_number(value: Any) -> Any:
    # pydantic reads "0.5" as unix seconds; the document says RFC 3339 date-time.
    if isinstance(value, str) and _NUMBER.match(value):
        raise ValueError("expected an RFC 3339 date-time, got a number")
    return value


Time = Annotated[datetime, BeforeValidator(_not_a_number)]
_SCAN_FACTOR = 20


def _svc(request: Request) -> Service:
    return request.app.state.svc  # type: ignore[no-any-return]


def decision_outcome(payload: Any) -> str | None:
    """``allow``/``deny`` of a decision entry's payload, whatever its nesting."""
    if not isinstance(payload, dict):
        return None
    for candidate in (payload, payload.get("decision")):
        if isinstance(candidate, str) and candidate in ("allow", "deny"):
            return candidate
        if isinstance(candidate, dict):
            value = candidate.get("decision")
            if value in ("allow", "deny"):
                return str(value)
            if isinstance(candidate.get("allow"), bool):
                return "allow" if candidate["allow"] else "deny"
    return None


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _cursor_decode(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor.encode() + b"==").decode()
        kind, _, seq = text.partition(":")
        if kind != "s" or not seq.isdigit():
            raise ValueError(text)
        return int(seq)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(422, "bad_cursor", "cursor: expected a value from next_cursor") from exc


def _cursor_encode(seq: int) -> str:
    return base64.urlsafe_b64encode(f"s:{seq}".encode()).decode().rstrip("=")


def _entry_view(entry: Any, *, payload: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "seq": entry.seq,
        "leaf_hash": entry.leaf_hash,
        "envelope": entry.envelope,
        "redacted": entry.redacted,
    }
    if payload:
        view["payload"] = None if entry.redacted else entry.payload
    return view


def _list_entries(
    svc: Service,
    filters: dict[str, Any],
    decision: str | None,
    after: int | None,
    limit: int,
    descending: bool,
) -> dict[str, Any]:
    """One page of entries; the cursor is the last seq looked at.

    A ``decision`` filter reads payloads, so a page looks at no more than
    ``limit * _SCAN_FACTOR`` decision entries and may come back short with a
    cursor to continue from.
    """
    types = filters.pop("types")
    if decision is not None:
        types = ["decision"] if types is None else [t for t in types if t == "decision"]
    bound = limit * _SCAN_FACTOR if decision else limit
    found: list[dict[str, Any]] = []
    last_seq: int | None = None
    more = False
    rows = svc.log.query(
        **filters, types=types, after_seq=after, limit=bound + 1, descending=descending
    )
    for scanned, entry in enumerate(rows):
        if len(found) == limit or scanned == bound:
            more = True
            break
        last_seq = entry.seq
        if decision is None or decision_outcome(entry.payload) == decision:
            found.append(_entry_view(entry, payload=False))
    cursor = _cursor_encode(last_seq) if more and last_seq is not None else None
    return {"entries": found, "next_cursor": cursor}


@router.get(
    "/entries",
    summary="Query log entries",
    response_model=EntriesPageV1,
    responses=responses(*_ERRORS),
)
def list_entries(
    request: Request,
    _: Reader,
    model: str | None = None,
    version: str | None = None,
    digest: str | None = None,
    type: Annotated[list[str] | None, Query()] = None,
    decision: Annotated[str | None, Query(pattern="^(allow|deny)$")] = None,
    actor: str | None = None,
    since: Time | None = None,
    until: Time | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=_MAX_LIMIT)] = 100,
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
) -> JSONResponse:
    """Entries matching every filter, oldest first (``order=desc`` for newest)."""
    types = [t for item in type for t in item.split(",") if t] if type else None
    filters = {
        "name": model,
        "version": version,
        "digest": digest,
        "actor": actor,
        "since": _utc(since),
        "until": _utc(until),
        "types": types,
    }
    after = _cursor_decode(cursor)
    page = _list_entries(_svc(request), filters, decision, after, limit, order == "desc")
    return JSONResponse(EntriesPageV1.model_validate(page).model_dump(mode="json"))


def _check_seq(svc: Service, seq: int) -> None:
    size = svc.log.size()
    if not 0 <= seq < size:
        raise InputError(404, "entry_not_found", f"no entry {seq}: expected 0..{size - 1}")


@router.get(
    "/entries/{seq}",
    summary="One entry with its payload (unless redacted)",
    response_model=EntryV1,
    responses=responses(*_ERRORS, 404),
)
def get_entry(request: Request, _: Reader, seq: int) -> JSONResponse:
    """The envelope, leaf hash and payload of entry ``seq``."""
    svc = _svc(request)
    _check_seq(svc, seq)
    view = EntryV1.model_validate(_entry_view(svc.log.get(seq), payload=True))
    return JSONResponse(view.model_dump(mode="json"))


def _checkpoint(svc: Service) -> Any:
    latest = svc.log.latest_checkpoint()
    if svc.log.signer is not None and (latest is None or latest.size < svc.log.size()):
        return svc.log.checkpoint()
    if latest is None:
        raise InputError(404, "checkpoint_not_found", "the log has no signed checkpoint yet")
    return latest


_NOTE = "With format=note: the C2SP signed note itself (text/plain)"


@router.get(
    "/checkpoint",
    summary="Latest signed checkpoint (C2SP signed note)",
    response_model=CheckpointV1,
    responses=responses(*_ERRORS, 404, text=_NOTE),
)
def get_checkpoint(
    request: Request, _: Reader, format: Literal["json", "note"] = "json"
) -> Response:
    """The checkpoint of the current tree; ``format=note`` returns the note text.

    Any other ``format`` is refused (422), never answered as JSON.
    """
    cp = _checkpoint(_svc(request))
    if format == "note":
        return PlainTextResponse(cp.note)
    view = CheckpointV1(size=cp.size, root=cp.root.hex(), note=cp.note)
    return JSONResponse(view.model_dump(mode="json"))


@router.get(
    "/proof/inclusion",
    summary="RFC 9162 inclusion proof",
    response_model=InclusionProofV1,
    responses=responses(*_ERRORS, 404),
)
def inclusion(request: Request, _: Reader, seq: int, size: int | None = None) -> InclusionProofV1:
    """Inclusion proof of entry ``seq`` in the tree of ``size`` (default: current)."""
    svc = _svc(request)
    _check_seq(svc, seq)
    current = svc.log.size()
    size = current if size is None else size
    if not seq < size <= current:
        raise InputError(
            422, "bad_sizes", f"expected seq < size <= {current}, got seq={seq} size={size}"
        )
    proof = svc.log.inclusion_proof(seq, size)
    return InclusionProofV1(
        seq=seq,
        size=size,
        leaf_hash=svc.log.get(seq).leaf_hash,
        proof=[p.hex() for p in proof],
        root=svc.log.root(size).hex(),
    )


@router.get(
    "/proof/consistency",
    summary="RFC 9162 consistency proof",
    response_model=ConsistencyProofV1,
    responses=responses(*_ERRORS),
)
def consistency(
    request: Request, _: Reader, old: int, new: int | None = None
) -> ConsistencyProofV1:
    """Consistency proof between tree sizes ``old`` and ``new`` (default: current)."""
    svc = _svc(request)
    current = svc.log.size()
    new = current if new is None else new
    if not 0 <= old <= new <= current:
        raise InputError(
            422, "bad_sizes", f"expected 0 <= old <= new <= {current}, got old={old} new={new}"
        )
    proof = svc.log.consistency_proof(old, new)
    return ConsistencyProofV1(
        old=old,
        new=new,
        proof=[p.hex() for p in proof],
        old_root=svc.log.root(old).hex(),
        new_root=svc.log.root(new).hex(),
    )


@router.get(
    "/receipts/{seq}",
    summary="Offline-verifiable receipt of one entry",
    response_model=ReceiptV1,
    responses=responses(*_ERRORS, 404),
)
def receipt(request: Request, _: Reader, seq: int) -> JSONResponse:
    """Entry, inclusion proof and signed checkpoint (verify with ``audit receipt verify``)."""
    svc = _svc(request)
    _check_seq(svc, seq)
    receipt = ReceiptV1.model_validate(svc.log.receipt(seq))
    return JSONResponse(receipt.model_dump(mode="json", exclude_none=True))


def _bundle_tar(svc: Service, filters: dict[str, Any]) -> Path:
    """Export a bundle and pack it as ``bundle.tar.gz`` in a fresh temporary directory.

    The archive is written to disk, not memory, so a large log does not
    have to fit in the process; the caller removes the directory.
    """
    from audit.export import export_bundle

    tmp = Path(tempfile.mkdtemp(prefix="pe-export-"))
    try:
        export_bundle(svc.log, tmp / "bundle", **filters)
        with tarfile.open(tmp / "bundle.tar.gz", mode="w:gz") as tar:
            tar.add(tmp / "bundle", arcname="bundle")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp / "bundle.tar.gz"


_BUNDLE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}},
        "description": "The evidence bundle as a .tar.gz",
    }
}


@router.get(
    "/export",
    summary="Evidence bundle (.tar.gz) for offline verification",
    response_class=FileResponse,
    responses={**responses(*_ERRORS), **_BUNDLE},
)
async def export(
    request: Request,
    _: Reader,
    model: str | None = None,
    version: str | None = None,
    since: Time | None = None,
    until: Time | None = None,
) -> Response:
    """The log (or the entries matching the filters) as an evidence bundle."""
    filters = {"name": model, "version": version, "since": _utc(since), "until": _utc(until)}
    filters = {k: v for k, v in filters.items() if v is not None}
    archive = await run_in_threadpool(_bundle_tar, _svc(request), filters)
    cleanup = BackgroundTask(shutil.rmtree, archive.parent, ignore_errors=True)
    return FileResponse(
        archive,
        media_type="application/gzip",
        filename="policyengine-evidence.tar.gz",
        background=cleanup,
    )
