"""The auditor's pages: entries, models, version timelines, decisions, verification.

Every page is a GET that reads the log (the evidence download also signs a
checkpoint over the current size, as ``GET /v1/audit/checkpoint`` may: a
signature, never an entry). No page carries a form or link that writes; the
only forms are the login form and logout. Readers are any authenticated
token, by bearer header or session cookie (:mod:`.session`); others are sent
to the login form. What the pages show comes from :mod:`policyengine.timeline`
and :mod:`policyengine.evidence_pack`; this module only renders.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from policyengine.errors import PolicyEngineError
from policyengine.service.pages import charts
from policyengine.service.pages.session import (
    COOKIE,
    SESSION_SECONDS,
    login_cookie,
    principal_of,
)
from policyengine.timeline import (
    Filters,
    decision_of,
    decisive_results,
    parse_when,
    query,
    standing,
    timeline,
)

__all__ = ["login_redirect", "render", "render_entry", "router"]

router = APIRouter(prefix="/pages", include_in_schema=False)
_HERE = Path(__file__).parent
_PAGE_LIMIT = 200
_FILTERS = ("model", "version", "digest", "type", "decision", "actor", "policy", "rule",
            "since", "until")


def _env() -> Any:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(str(_HERE / "templates")),
                      autoescape=select_autoescape(["html"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["json"] = lambda v: json.dumps(v, indent=2, sort_keys=True, ensure_ascii=False)
    env.filters["q"] = lambda v: quote(str(v), safe="")
    return env


_TEMPLATES = _env()


def _svc(request: Request) -> Any:
    return request.app.state.svc


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Template ``name`` with the verification badge and the reader (``who``)."""
    badge = request.app.state.badges.get(_svc(request)) if name != "login.html" else None
    html = _TEMPLATES.get_template(name).render(badge=badge, who=context.pop("who", None),
                                                **context)
    return HTMLResponse(html, status_code=status)


def login_redirect(request: Request) -> RedirectResponse:
    """To the login form, coming back to this page afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/pages/login?next={quote(target, safe='')}", status_code=303)


def _safe_next(value: str | None) -> str:
    """Only our own pages: an open redirect would let a link send a reader anywhere."""
    if value and value.startswith("/pages/") and "//" not in value and "\\" not in value:
        return value
    return "/pages/entries"


@router.get("")
@router.get("/")
def home() -> RedirectResponse:
    """The entries list is the start page."""
    return RedirectResponse("/pages/entries", status_code=303)


@router.get("/static/pages.css")
def stylesheet() -> Response:
    """The one stylesheet (the CSP allows styles from this origin only)."""
    css = (_HERE / "templates" / "pages.css").read_text(encoding="utf-8")
    return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    """The login form: paste a bearer token once; the session cookie carries a reference."""
    return render(request, "login.html", next=_safe_next(next), error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the token; set the HttpOnly, SameSite=Strict session cookie; go on."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0]
    target = _safe_next((form.get("next") or [""])[0] or None)
    found = login_cookie(request.app.state.session_keys, request.app.state.tokens, token)
    if found is None:
        return render(request, "login.html", 401, next=target,
                       error="unknown token: paste a token from the service's token file")
    value, principal = found
    request.state.actor = principal.id
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, value, max_age=SESSION_SECONDS, path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return response


@router.post("/logout")
def logout() -> RedirectResponse:
    """End the session (the cookie is removed)."""
    response = RedirectResponse("/pages/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _filters(params: dict[str, str]) -> Filters:
    types = tuple(t for t in (params.get("type") or "").split(",") if t) or None
    return Filters(model=params.get("model") or None, version=params.get("version") or None,
                   digest=params.get("digest") or None, types=types,
                   decision=params.get("decision") or None, actor=params.get("actor") or None,
                   policy=params.get("policy") or None, rule=params.get("rule") or None,
                   since=parse_when(params.get("since"), "since"),
                   until=parse_when(params.get("until"), "until"), limit=_PAGE_LIMIT,
                   newest_first=True)


@router.get("/entries")
def entries(request: Request) -> Response:
    """Entries matching the filters, newest first."""
    who = principal_of(request)
    if who is None:
        return login_redirect(request)
    params = {k: v for k, v in request.query_params.items() if k in _FILTERS}
    try:
        rows = list(query(_svc(request).log, _filters(params), _verifiers(request)))
        error = None
    except PolicyEngineError as exc:
        rows, error = [], str(exc)
    return render(request, "entries.html", 400 if error else 200, who=who, rows=rows,
                   params=params, error=error, limit=_PAGE_LIMIT)


def _verifiers(request: Request) -> list[Any]:
    svc = _svc(request)
    return [svc.signer.verifier()] if svc.signer is not None else []


@router.get("/models")
def models(request: Request) -> Response:
    """Every model the log names."""
    who = principal_of(request)
    if who is None:
        return login_redirect(request)
    return render(request, "models.html", who=who, models=_model_names(_svc(request).log))


def _model_names(log: Any) -> list[str]:
    return list(log.store.subject_names())


def _versions(tl: Any) -> list[dict[str, Any]]:
    """Each version of a model timeline with where it stands, in order of first entry."""
    order: dict[str, list[Any]] = {}
    for row in tl.rows:
        if row.version:
            order.setdefault(row.version, []).append(row)
    shared = [r for r in tl.rows if not r.version]
    return [{"version": v, "digest": next((r.digest for r in rows if r.digest), None),
             "entries": len(rows), **standing(sorted(rows + shared, key=lambda r: r.seq))}
            for v, rows in order.items()]


def _cards(log: Any, model: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for entry in log.query(name=model, types=["decision"]):
        card = entry.payload.get("card") if isinstance(entry.payload, dict) else None
        version = (entry.envelope.get("subject") or {}).get("version")
        if isinstance(card, dict) and version:
            found.append((str(version), card))
    return found


@router.get("/model")
def model_page(request: Request, name: str) -> Response:
    """A model's versions, where each stands, and its metrics and fairness charts."""
    who = principal_of(request)
    if who is None:
        return login_redirect(request)
    log = _svc(request).log
    tl = timeline(log, name, None, _verifiers(request))
    versions = _versions(tl)
    names = [v["version"] for v in versions]
    svgs = [Markup(charts.line_chart(s, names))
            for s in charts.series_from_cards(_cards(log, name))]
    status = 200 if tl.rows else 404
    return render(request, "model.html", status, who=who, model=name, versions=versions,
                   charts=svgs)


@router.get("/version")
def version_page(request: Request, model: str, version: str) -> Response:
    """One version's timeline: every entry, what it says, and whether a checkpoint covers it."""
    who = principal_of(request)
    if who is None:
        return login_redirect(request)
    tl = timeline(_svc(request).log, model, version, _verifiers(request))
    found = any(r.version == version for r in tl.rows)
    return render(request, "version.html", 200 if found else 404, who=who, tl=tl,
                   found=found, standing=standing(tl.rows))


@router.get("/entry/{seq}")
def entry_page(request: Request, seq: int) -> Response:
    """One entry; a decision shows every rule's outcome, message, values and location."""
    who = principal_of(request)
    if who is None:
        return login_redirect(request)
    return render_entry(request, seq, who)


def render_entry(request: Request, seq: int, who: Any, status: int = 200,
                 **extra: Any) -> HTMLResponse:
    """The entry page of ``seq`` (404 past the end), with ``extra`` for its template."""
    svc = _svc(request)
    if not 0 <= seq < svc.log.size():
        return render(request, "error.html", 404, who=who, error=f"no entry {seq} in the log")
    entry = svc.log.get(seq)
    decision = decision_of(entry.payload) if entry.envelope.get("type") == "decision" else {}
    decisive = {id(r) for r in decisive_results(decision)}
    results = [dict(r, decided=id(r) in decisive) for r in decision.get("results") or []]
    return render(request, "entry.html", status, who=who, entry=entry, env=entry.envelope,
                   decision=decision, results=results, payload=entry.payload, **extra)


@router.get("/verify")
def verify_page(request: Request) -> Response:
    """The verification badge in full: what was checked and what was found."""
    who = principal_of(request)
    if who is None:
        return login_redirect(request)
    return render(request, "verify.html", who=who)


@router.get("/evidence.zip")
async def evidence(request: Request, model: str, version: str) -> Response:
    """The version's evidence pack (report, PDF when WeasyPrint is installed, bundle) as a zip."""
    if principal_of(request) is None:
        return login_redirect(request)
    from policyengine.evidence_pack import pack_zip, pdf_available

    svc = _svc(request)
    archive = await run_in_threadpool(pack_zip, svc.engine, model, version,
                                      pdf=pdf_available())
    cleanup = BackgroundTask(shutil.rmtree, archive.parent, ignore_errors=True)
    return FileResponse(archive, media_type="application/zip", filename=archive.name,
                        background=cleanup)
