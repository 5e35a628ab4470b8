"""The replay and what-if pages, thin over ``policyengine.replay`` and ``policyengine.whatif``.

Both are GETs that read the log and never write: a page session stays
read-only (:class:`~policyengine.service.pages.PagesGuard` refuses its POSTs),
and re-evaluating a recorded decision is a read.

- ``/pages/decisions/{seq}/replay`` replays one decision from the log alone
  (the bundle entry's policy text, the recorded card, event, history and
  time) and shows the decision page with the outcome: reproduced with the
  verdict, the fault with its differences rule by rule, or not replayable
  and why.
- ``/pages/whatif?stage=S[&policies=current|candidate]`` evaluates the last
  recorded input of every version now in stage S under the policies this
  service decides with now (the engine's compiled set for S), or under the
  candidate policies the service settings name (``pages.whatif_candidate``).
  A request names one of those two sets, never a path.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from audit.errors import AuditError
from policyengine.errors import PolicyEngineError
from policyengine.service.limits import status_for_code
from policyengine.service.pages.routes import login_redirect, render, render_entry
from policyengine.service.pages.session import principal_of

__all__ = ["router"]

router = APIRouter(prefix="/pages", include_in_schema=False)
_STAGE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
"""A stage as the wire models accept it."""
_SETS = ("current", "candidate")


def _error(request: Request, who: Any, exc: Exception) -> HTMLResponse:
    """The error page with the status the service gives ``exc``'s code (one line)."""
    code = str(getattr(exc, "code", "internal_error"))
    status = status_for_code(code, audit=isinstance(exc, AuditError))
    line = str(exc).splitlines()[0] if str(exc) else code
    return render(request, "error.html", status, who=who, error=line)


@router.get("/decisions/{seq}/replay")
def replay_page(request: Request, seq: int) -> Response:
    """The decision page of ``seq`` with the outcome of replaying it from the log alone."""
    from policyengine.replay import by_rule, replay_decision
    from policyengine.timeline import decision_of

    who = principal_of(request)
    if who is None:
        return login_redirect(request)
    log = request.app.state.svc.log
    if not 0 <= seq < log.size():
        return render(request, "error.html", 404, who=who, error=f"no entry {seq} in the log")
    try:
        result = replay_decision(log, seq)
        recorded = decision_of(log.get(seq).payload) if result.differences else {}
    except (PolicyEngineError, AuditError) as exc:
        return _error(request, who, exc)
    return render_entry(request, seq, who, replay=result,
                        replay_groups=by_rule(result.differences, recorded))


@router.get("/whatif")
def whatif_page(request: Request, stage: str = "production",
                policies: str = "current") -> Response:
    """Every version now in ``stage`` tried under the current or the candidate policies."""
    from policyengine.whatif import whatif

    who = principal_of(request)
    if who is None:
        return login_redirect(request)
    svc = request.app.state.svc
    candidate = svc.settings.pages.whatif_candidate
    if not _STAGE.match(stage):
        return render(request, "error.html", 400, who=who,
                      error="stage: expected a lowercase name such as production")
    if policies not in _SETS or (policies == "candidate" and candidate is None):
        choices = "current or candidate" if candidate is not None else "current (no "\
                  "candidate is configured: service setting pages.whatif_candidate)"
        return render(request, "error.html", 400, who=who,
                      error=f"policies: expected {choices}")
    try:
        compiled = _compiled(svc, stage, candidate if policies == "candidate" else None)
        report = whatif(svc.log, compiled, stage)
    except (PolicyEngineError, AuditError) as exc:
        return _error(request, who, exc)
    return render(request, "whatif.html", who=who, report=report, summary=report.summary(),
                  flips=report.flips(), policies=policies, candidate=candidate is not None)


def _compiled(svc: Any, stage: str, candidate: Any) -> Any:
    """The engine's compiled set for ``stage``, or the candidate compiled with its params."""
    if candidate is None:
        return svc.engine.compiled(stage)
    from policyengine.engine import compile_configured

    config = dataclasses.replace(svc.config, policies=(candidate,))
    return compile_configured(config, stage, engine=svc.engine.cel_engine).compiled
