"""The auditor's pages in headless Chromium against a real `policyengine serve`.

One story per test module run: the log holds a registration, a deny of version
2.2.0, an allow of 2.3.0 with two approvals, and its promotion. An auditor
logs in, filters, opens a timeline, a decision (and replays it), the what-if
page, the charts and the verification badge, downloads the evidence pack
(which verifies offline), and cannot write. Then one entry is tampered with
in SQLite and the badge names it. Screenshots go to
``$POLICYENGINE_SCREENSHOTS`` (or the test's tmp_path).
"""

from __future__ import annotations

import json
import os
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import skip_or_fail
from tests.service.conftest import TOKENS, auth
from tests.service.pages_story import MODEL, write_story
from tests.service.servers import Server, start_service

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _story(url: str) -> dict[str, Any]:
    """Write the log through the service's own API; return the seqs that matter."""
    with httpx.Client(base_url=url, timeout=60) as http:
        return write_story(http)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path, dict]]:
    """A real service on a free loopback port over a SQLite log holding the story."""
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"{CHROMIUM} is missing: apt-get install chromium")
    root = tmp_path_factory.mktemp("pages")
    server = start_service(root, f"sqlite:///{root / 'audit.db'}")
    try:
        yield server, root, _story(server.url)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(served: Any) -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright (never a downloaded browser)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed: pip install -e '.[pages]'")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: $POLICYENGINE_SCREENSHOTS, else a temporary directory."""
    given = os.environ.get("POLICYENGINE_SCREENSHOTS")
    path = Path(given) if given else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def auditor(browser: Any, served: Any) -> Iterator[Any]:
    """A page logged in through the login form with the auditor token."""
    server, _, _ = served
    context = browser.new_context(base_url=server.url, accept_downloads=True)
    page = context.new_page()
    page.goto("/pages/entries")
    assert "/pages/login" in page.url  # not logged in: sent to the form
    page.fill("#token", TOKENS["auditor"])
    page.click("#login button")
    page.wait_for_url("**/pages/entries")
    yield page
    context.close()


def _shot(page: Any, shots: Path, name: str) -> None:
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def test_login_sets_a_strict_httponly_session_cookie(auditor: Any) -> None:
    """The session cookie is HttpOnly, SameSite=Strict and holds no token."""
    cookies = {c["name"]: c for c in auditor.context.cookies()}
    cookie = cookies["pe_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert TOKENS["auditor"] not in cookie["value"]


def test_filter_entries_and_csp(auditor: Any, served: Any) -> None:
    """Filtering by decision=deny lists the deny only; every page forbids external sources."""
    response = auditor.goto("/pages/entries")
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    auditor.fill("#filters input[name=model]", MODEL)
    auditor.select_option("#filters select[name=decision]", "deny")
    auditor.click("#filters button")
    rows = auditor.locator("#entries tr").all_inner_texts()[1:]
    assert len(rows) == 1 and "deny" in rows[0] and str(served[2]["deny"]) in rows[0]


def test_version_timeline_decision_and_badge(auditor: Any, served: Any, shots: Path) -> None:
    """The version page shows the timeline; the decision page every rule and which decided;
    the badge says the log verified up to a checkpoint."""
    auditor.goto(f"/pages/version?model={MODEL}&version=2.3.0")
    timeline = auditor.inner_text("#timeline")
    assert "approved by approver-1" in timeline and "promoted to production" in timeline
    assert auditor.inner_text("#stage") == "production"
    assert "verified up to checkpoint" in auditor.inner_text("#badge")
    _shot(auditor, shots, "timeline")
    auditor.goto(f"/pages/entry/{served[2]['deny']}")
    assert "deny" in auditor.inner_text("#outcome")
    rules = auditor.inner_text("#rules")
    assert "auc-floor" in rules and "(decided)" in rules and "auc below 0.8" in rules
    assert "Reproduced" not in auditor.inner_text("#replay")  # nothing replayed until asked
    _shot(auditor, shots, "decision")


def test_replay_button_reproduces_the_decision(auditor: Any, served: Any, shots: Path) -> None:
    """Clicking Replay on the deny shows it reproduced, with its verdict, on the decision page."""
    seq = served[2]["deny"]
    auditor.goto(f"/pages/entry/{seq}")
    auditor.click("#replay-button")
    auditor.wait_for_url(f"**/pages/decisions/{seq}/replay")
    result = auditor.inner_text("#replay-result")
    assert "Reproduced" in result and "deny" in result
    assert "auc-floor" in auditor.inner_text("#rules")
    _shot(auditor, shots, "decision-replay")


def test_whatif_page_from_the_decision_link(auditor: Any, served: Any, shots: Path) -> None:
    """The decision's what-if link lists 2.3.0 in production, unchanged: no flips."""
    auditor.goto(f"/pages/entry/{served[2]['allow']}")
    auditor.click("#whatif a")
    auditor.wait_for_url("**/pages/whatif?stage=production")
    assert "No flips." in auditor.inner_text("#whatif-summary")
    rows = auditor.inner_text("#whatif-rows")
    assert MODEL in rows and "2.3.0" in rows and "unchanged" in rows
    _shot(auditor, shots, "whatif")


def _edited_copy(root: Path) -> Path:
    """A copy of the served log whose stored policy text lowers the AUC floor to 0.5."""
    copy = root / "edited.db"
    with sqlite3.connect(root / "audit.db") as src, sqlite3.connect(copy) as dst:
        src.backup(dst)  # consistent, WAL included
    with sqlite3.connect(copy) as db:
        (seq, content), = db.execute(
            "select p.seq, p.content from audit_payloads p join audit_entries e using (seq) "
            "where e.subject_name = 'policy-bundle'").fetchall()
        payload = json.loads(bytes(content))
        for item in payload["files"]:
            item["text"] = item["text"].replace("m.value >= 0.8", "m.value >= 0.5")
        db.execute("update audit_payloads set content = ? where seq = ?",
                   (json.dumps(payload).encode(), seq))
    return copy


def test_replay_on_an_edited_copy_shows_the_fault(browser: Any, served: Any,
                                                   shots: Path) -> None:
    """Served over a copy of the log with edited policy text, Replay shows a fault, not
    "reproduced"."""
    _, root, seqs = served
    server = start_service(root, f"sqlite:///{_edited_copy(root)}", name="edited")
    context = browser.new_context(base_url=server.url)
    try:
        page = context.new_page()
        page.goto(f"/pages/entry/{seqs['deny']}")
        page.fill("#token", TOKENS["auditor"])
        page.click("#login button")
        page.wait_for_url(f"**/pages/entry/{seqs['deny']}")
        page.click("#replay-button")
        page.wait_for_url(f"**/pages/decisions/{seqs['deny']}/replay")
        result = page.inner_text("#replay-result")
        assert "Replay fault: bundle mismatch" in result and "Reproduced" not in result
        assert "policy_bundle entry" in page.inner_text("#replay-detail")
        _shot(page, shots, "decision-replay-fault")
    finally:
        context.close()
        server.stop()


def test_model_charts(auditor: Any, shots: Path) -> None:
    """The model page lists both versions and draws the AUC across them as inline SVG."""
    auditor.goto(f"/pages/model?name={MODEL}")
    versions = auditor.inner_text("#versions")
    assert "2.2.0" in versions and "2.3.0" in versions and "production" in versions
    assert auditor.locator("#charts svg").count() >= 1
    assert "metric: auc" in auditor.inner_text("#charts")
    _shot(auditor, shots, "charts")


def test_evidence_download_verifies_offline(auditor: Any, tmp_path: Path) -> None:
    """The version page's evidence zip holds a bundle that verifies with its log.pub."""
    from policyengine.cli import main

    auditor.goto(f"/pages/version?model={MODEL}&version=2.3.0")
    with auditor.expect_download() as info:
        auditor.click("#evidence")
    archive = tmp_path / "evidence.zip"
    info.value.save_as(str(archive))
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp_path)
    pack = next(p for p in tmp_path.iterdir() if p.is_dir() and p.name.startswith("evidence-"))
    assert {"report.html", "README.txt", "log.pem", "bundle"} <= {p.name for p in pack.iterdir()}
    code = main(["audit", "verify", "--bundle", str(pack / "bundle"),
                 "--key", str(pack / "log.pub")])
    assert code == 0


def test_auditor_session_cannot_write(auditor: Any, served: Any) -> None:
    """Every POST of the published API is 403 with the auditor's cookie, and 403 with the
    auditor's token wherever a token is what authenticates (webhooks take signatures)."""
    server = served[0]
    spec = httpx.get(server.url + "/openapi.json", timeout=30).json()
    posts = [path for path, ops in spec["paths"].items() if "post" in ops]
    assert {"/v1/decisions", "/v1/admin/redactions", "/v1/admin/holds"} <= set(posts)
    for path in posts:
        resp = auditor.request.post(path, data="{}", headers={"content-type": "application/json"})
        assert resp.status == 403, (path, resp.status)
        if "webhook" not in path:
            direct = httpx.post(server.url + path, headers=auth("auditor"), json={}, timeout=30)
            assert direct.status_code == 403, (path, direct.text)


def test_tampered_entry_shows_on_the_badge(auditor: Any, served: Any, shots: Path) -> None:
    """After one entry's envelope is changed in SQLite, the badge names the fault and its seq."""
    server, root, seqs = served
    db = sqlite3.connect(root / "audit.db")
    try:
        (envelope,) = db.execute("select envelope from audit_entries where seq = ?",
                                 (seqs["deny"],)).fetchone()
        forged = bytes(envelope).replace(b'"actor":"evaluator-1"', b'"actor":"evaluator-2"')
        assert forged != bytes(envelope)
        db.execute("update audit_entries set envelope = ? where seq = ?", (forged, seqs["deny"]))
        db.commit()
    finally:
        db.close()
    grown = httpx.post(server.url + "/v1/events", headers=auth("evaluator"), timeout=60,
                       json={"type": "incident", "model": MODEL, "version": "2.3.0"})
    assert grown.status_code == 201, grown.text  # the log grew: the badge re-verifies
    auditor.goto("/pages/verify")
    badge = auditor.inner_text("#badge")
    assert "VERIFICATION FAILED" in badge and f"at seq {seqs['deny']}" in badge
    assert "modified" in auditor.inner_text("#verify-result")
    _shot(auditor, shots, "tampered")
