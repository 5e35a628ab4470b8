"""The replay and what-if pages over a real SQLite log (TestClient): what they show, what
they refuse, and that they never write."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from audit.canonical import dumps
from policyengine.errors import ConfigError
from policyengine.service.settings import load_service_settings
from tests.service.conftest import POLICY, TOKENS, ServiceEnv, auth, build_env
from tests.service.pages_story import write_story


def _client(env: ServiceEnv) -> TestClient:
    return TestClient(env.app, raise_server_exceptions=False)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ServiceEnv, TestClient, dict[str, int]]]:
    """An app over a fresh SQLite log holding the story."""
    env = build_env(tmp_path)
    with _client(env) as client:
        yield env, client, write_story(client)


def _copy(env: ServiceEnv, tmp_path: Path) -> Path:
    """A consistent copy of the app's SQLite log (the backup API carries the WAL too)."""
    dst = tmp_path / "copy.db"
    with sqlite3.connect(env.log_url.removeprefix("sqlite:///")) as src, \
            sqlite3.connect(dst) as target:
        src.backup(target)
    return dst


def _payload(db: sqlite3.Connection, seq: int) -> dict[str, Any]:
    (content,) = db.execute("SELECT content FROM audit_payloads WHERE seq = ?", (seq,)).fetchone()
    return dict(json.loads(bytes(content)))


def _pages(env: ServiceEnv, path: str) -> Any:
    with _client(env) as client:
        return client.get(path, headers=auth("auditor"))


def test_replay_page_reproduces_each_decision_and_writes_nothing(served):
    """Replaying the deny and the allow shows "Reproduced" with each verdict; nothing is
    written."""
    env, client, seqs = served
    size = len(env.entries())
    for verdict in ("deny", "allow"):
        page = client.get(f"/pages/decisions/{seqs[verdict]}/replay", headers=auth("auditor"))
        assert page.status_code == 200, page.text
        assert "Reproduced" in page.text
        assert f'again\n<span class="{verdict}">{verdict}</span>' in page.text
        assert 'id="rules"' in page.text  # the decision page itself, with the outcome
    assert len(env.entries()) == size


def test_decision_page_offers_replay_and_the_whatif_of_its_stage(served):
    """The decision page has a Replay button (a plain link: replay is a read) and a link to
    its stage's what-if page."""
    _, client, seqs = served
    page = client.get(f"/pages/entry/{seqs['deny']}", headers=auth("auditor")).text
    assert f'id="replay-button" class="button" href="/pages/decisions/{seqs["deny"]}/replay"' \
        in page
    assert 'href="/pages/whatif?stage=production"' in page
    assert "Reproduced" not in page  # nothing replayed until asked


def test_replay_of_a_missing_or_non_decision_entry_is_an_error_page(served):
    """A seq past the end is 404; a seq that is not a decision is 422 with one line."""
    env, client, _ = served
    missing = client.get("/pages/decisions/999/replay", headers=auth("auditor"))
    assert missing.status_code == 404 and "no entry 999" in missing.text
    other = next(e.seq for e in env.entries() if e.envelope["type"] != "decision")
    page = client.get(f"/pages/decisions/{other}/replay", headers=auth("auditor"))
    assert page.status_code == 422 and "not a decision" in page.text
    assert "Traceback" not in page.text


def test_replay_and_whatif_send_strangers_to_the_login_form(served):
    """Without a token or session both pages redirect to the login form."""
    _, client, seqs = served
    for path in (f"/pages/decisions/{seqs['deny']}/replay", "/pages/whatif"):
        page = client.get(path, follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/pages/login")


def test_page_session_reads_replay_but_cannot_post(served):
    """An auditor's page session gets the replay page by GET; a POST to it is 403."""
    env, client, seqs = served
    login = client.post("/pages/login", data={"token": TOKENS["auditor"], "next": "/pages/"},
                        follow_redirects=False)
    assert login.status_code == 303 and "pe_session" in login.cookies
    path = f"/pages/decisions/{seqs['allow']}/replay"
    assert "Reproduced" in client.get(path).text
    size = len(env.entries())
    assert client.post(path).status_code == 403
    assert client.post("/v1/decisions", json={}).status_code == 403
    assert len(env.entries()) == size


def test_edited_policy_text_in_a_copy_shows_a_replay_fault(served, tmp_path):
    """A copy of the log whose stored policy text was changed shows a bundle-mismatch fault."""
    env, _, seqs = served
    copy = _copy(env, tmp_path)
    (bundle_seq,) = [e.seq for e in env.entries() if e.envelope["type"] == "policy_bundle"]
    with sqlite3.connect(copy) as db:
        payload = _payload(db, bundle_seq)
        edited = [f for f in payload["files"] if "m.value >= 0.8" in f["text"]]
        assert edited, payload["files"]
        for item in edited:
            item["text"] = item["text"].replace("m.value >= 0.8", "m.value >= 0.5")
        db.execute("UPDATE audit_payloads SET content = ? WHERE seq = ?",
                   (json.dumps(payload).encode(), bundle_seq))
    tampered = build_env(tmp_path, log_url=f"sqlite:///{copy}")
    page = _pages(tampered, f"/pages/decisions/{seqs['deny']}/replay")
    assert page.status_code == 200, page.text
    assert "Replay fault: bundle mismatch" in page.text and "Reproduced" not in page.text
    assert f"policy_bundle entry {bundle_seq}" in page.text
    # the original log still reproduces
    assert "Reproduced" in _pages(env, f"/pages/decisions/{seqs['deny']}/replay").text


def test_forged_decision_shows_its_differences_rule_by_rule(served, tmp_path):
    """A decision whose recorded rule message was changed (digest recomputed) shows the
    differing field under its policy/rule, recorded beside replayed."""
    env, _, seqs = served
    copy = _copy(env, tmp_path)
    seq = seqs["deny"]
    with sqlite3.connect(copy) as db:
        payload = _payload(db, seq)
        results = payload["decision"]["results"]
        index = next(i for i, r in enumerate(results) if r["rule"] == "auc-floor")
        results[index]["message"] = "auc looked fine"
        digest = "sha256:" + hashlib.sha256(dumps(payload)).hexdigest()
        (raw,) = db.execute("SELECT envelope FROM audit_entries WHERE seq = ?",
                            (seq,)).fetchone()
        envelope = json.loads(bytes(raw))
        envelope["payload_digest"] = digest
        db.execute("UPDATE audit_entries SET envelope = ? WHERE seq = ?",
                   (dumps(envelope), seq))
        db.execute("UPDATE audit_payloads SET content = ? WHERE seq = ?", (dumps(payload), seq))
    page = _pages(build_env(tmp_path, log_url=f"sqlite:///{copy}"),
                  f"/pages/decisions/{seq}/replay").text
    assert "Replay fault: decision differs" in page
    table = page[page.index('id="replay-differences"'):]
    assert "svc-test/auc-floor" in table and f"results[{index}].message" in table
    assert "auc looked fine" in table and "auc below 0.8" in table


def test_whatif_under_current_policies_has_no_flips(served):
    """Under the policies the service decides with, the version in production does not flip."""
    _, client, seqs = served
    page = client.get("/pages/whatif?stage=production", headers=auth("auditor"))
    assert page.status_code == 200, page.text
    assert "No flips." in page.text and "1 version(s) in production" in page.text
    rows = page.text[page.text.index('id="whatif-rows"'):]
    assert "2.3.0" in rows and f"seq {seqs['allow']}" in rows and "(unchanged)" in rows
    assert 'name="policies"' not in page.text  # no candidate configured: nothing to choose


def test_whatif_of_an_empty_stage_says_so(served):
    """A stage nobody was promoted to lists no rows and no flips."""
    _, client, _ = served
    page = client.get("/pages/whatif?stage=staging", headers=auth("auditor"))
    assert page.status_code == 200 and "No flips." in page.text
    assert "0 version(s) in staging" in page.text and 'id="whatif-rows"' not in page.text


def _candidate(root: Path) -> Path:
    """A stricter policy set: AUC at least 0.9."""
    path = root / "candidate"
    path.mkdir()
    (path / "svc.yaml").write_text(POLICY.replace("m.value >= 0.8", "m.value >= 0.9")
                                   .replace('"auc below 0.8"', '"auc below 0.9"'))
    return path


def test_whatif_under_the_configured_candidate_lists_the_flip_and_its_rule(tmp_path):
    """With pages.whatif_candidate set, policies=candidate shows 2.3.0 flipping to deny and
    the rule that blocks; the current set still has no flips."""
    candidate = _candidate(tmp_path)
    env = build_env(tmp_path, service={"pages": {"whatif_candidate": str(candidate)}})
    with _client(env) as client:
        seqs = write_story(client)
        page = client.get("/pages/whatif?stage=production&policies=candidate",
                          headers=auth("auditor"))
        current = client.get("/pages/whatif?stage=production", headers=auth("auditor"))
    assert page.status_code == 200, page.text
    assert "1 would flip allow &rarr; deny, 0 deny &rarr; allow" in page.text
    rows = page.text[page.text.index('id="whatif-rows"'):]
    assert f"seq {seqs['allow']}" in rows and "(flip)" in rows
    assert "svc-test/auc-floor: auc below 0.9" in rows
    assert "No flips." in current.text and '<option value="candidate">' in current.text


def test_whatif_refuses_unknown_sets_and_stages(served):
    """A policies value other than current/candidate (a path included), candidate when none
    is configured, and a malformed stage are 400 with one line."""
    _, client, _ = served
    for query, said in (("policies=/etc", "expected current"),
                        ("policies=candidate", "pages.whatif_candidate"),
                        ("stage=../prod", "stage: expected")):
        page = client.get(f"/pages/whatif?{query}", headers=auth("auditor"))
        assert page.status_code == 400 and said in page.text, (query, page.text)


def test_whatif_candidate_setting_is_strict(tmp_path):
    """A misspelled pages key and a candidate path that does not exist are config errors."""
    with pytest.raises(ConfigError, match="whatif_candidat"):
        load_service_settings(data={"pages": {"whatif_candidat": "x"}}, env={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_service_settings(data={"pages": {"whatif_candidate": str(tmp_path / "none")}},
                              env={})
    found = load_service_settings(data={"pages": {"whatif_candidate": str(tmp_path)}}, env={})
    assert found.pages.whatif_candidate == tmp_path.resolve()
