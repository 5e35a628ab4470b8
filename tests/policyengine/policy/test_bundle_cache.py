"""The loaded-bundle cache: corrupt entries are rebuilt; warm, cold and corrupt decide alike."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from policyengine.cards.validate import load_document
from policyengine.policy import Context, compile_policies, evaluate, load_policies
from policyengine.policy import bundle_cache as bundle_cache_module

REPO = Path(__file__).resolve().parents[3]
CARD = REPO / "examples" / "cards" / "credit-risk-scorer.yaml"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
WARNING = "bundle_cache_corrupt"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A private, empty cache directory for this test; its bundle entries' folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("POLICYENGINE_PARSER_CACHE", raising=False)
    return tmp_path / "cache" / "policyengine" / "bundles"


@pytest.fixture
def policies(tmp_path) -> Path:
    """A copy of the built-in packs (without their tests) that a test may edit."""
    target = tmp_path / "policies"
    shutil.copytree(REPO / "policies", target, ignore=shutil.ignore_patterns("tests"))
    return target


def _decide(policies: Path, params: dict | None = None, engine: str | None = None) -> dict:
    """The decision on the example card's production promotion, loaded and evaluated afresh."""
    compiled = compile_policies(load_policies([policies]), params, engine=engine)
    card = load_document(CARD)
    event = {"type": "promote", "stage": "production", "model": card["model"]["name"],
             "version": card["model"]["version"], "actor": "ci"}
    decision = evaluate(compiled, Context(card=card, event=event, history={}), NOW).to_dict()
    return {k: v for k, v in decision.items() if k not in ("id", "duration_ms")}


def _cold(policies: Path, monkeypatch, **kwargs) -> dict:
    """:func:`_decide` with every cache off."""
    with monkeypatch.context() as m:
        m.setenv("POLICYENGINE_PARSER_CACHE", "off")
        return _decide(policies, **kwargs)


def _entry(cache: Path) -> Path:
    """The one bundle entry in the cache."""
    files = sorted(cache.glob("*.json"))
    assert len(files) == 1, files
    return files[0]


def _rewrap(raw: str, edit) -> str:
    """The entry with its body edited and its SHA-256 recomputed (consistent, but wrong)."""
    import hashlib

    outer = json.loads(raw)
    body = json.dumps(edit(json.loads(outer["body"])))
    outer.update(body=body, sha256=hashlib.sha256(body.encode()).hexdigest())
    return json.dumps(outer)


def _flip(raw: str) -> str:
    middle = len(raw) // 2
    return raw[:middle] + chr(ord(raw[middle]) ^ 1) + raw[middle + 1:]


def _no_expressions(body: dict) -> dict:
    body["documents"][0]["expressions"] = body["documents"][0]["expressions"][2:]
    return body


CORRUPTIONS = {
    "truncated": lambda raw: raw[: len(raw) // 3],
    "one byte flipped": _flip,
    "stale version": lambda raw: raw.replace('"version": "1"', '"version": "0"', 1),
    "other format": lambda raw: json.dumps({"format": "policyengine-cel-cache", "version": "2",
                                            "sha256": "0" * 64, "body": "{}"}),
    "foreign key": lambda raw: _rewrap(raw, lambda body: {**body, "key": "0" * 64}),
    "missing expression": lambda raw: _rewrap(raw, _no_expressions),
    "bad shape": lambda raw: _rewrap(raw, lambda body: {**body, "documents": [{"file": 0}]}),
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_a_corrupt_entry_is_reported_rebuilt_and_decides_as_no_cache(cache, policies,
                                                                     monkeypatch, kind):
    """A corrupt entry is a warning naming the file, is rebuilt, and changes no decision."""
    want = _cold(policies, monkeypatch)
    assert _decide(policies) == want  # fills the cache
    entry = _entry(cache)
    entry.write_text(CORRUPTIONS[kind](entry.read_text()))
    with capture_logs() as logs:
        assert _decide(policies) == want
    warnings = [e for e in logs if e["event"] == WARNING]
    assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"
    assert warnings[0]["path"] == str(entry) and warnings[0]["reason"]
    with capture_logs() as logs:  # rebuilt: read cleanly from now on
        assert _decide(policies) == want
    assert not [e for e in logs if e["event"] == WARNING]
    assert json.loads(entry.read_text())["format"] == "policyengine-bundle-cache"


def test_an_entry_of_another_policy_set_is_not_used(cache, policies, monkeypatch):
    """Another set's entry copied over this set's file is corrupt, not that set's documents."""
    _decide(policies)
    other = policies.parent / "other"
    shutil.copytree(policies, other)
    (other / "slo" / "slo.yaml").unlink()
    _decide(other)
    mine, theirs = sorted(cache.glob("*.json"), key=lambda p: p.stat().st_mtime)
    mine.write_text(theirs.read_text())
    with capture_logs() as logs:
        assert _decide(policies) == _cold(policies, monkeypatch)
    assert [e["reason"] for e in logs if e["event"] == WARNING] == ["holds another policy set"]


@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_warm_and_cold_give_the_same_decision_and_digest(cache, policies, monkeypatch, engine):
    """A set read from the cache decides exactly as one loaded from its files, on each engine."""
    cold = _cold(policies, monkeypatch, engine=engine)
    assert _decide(policies, engine=engine) == cold  # fills the cache
    with capture_logs() as logs:
        warm = _decide(policies, engine=engine)
    assert warm == cold and warm["bundle_digest"] == cold["bundle_digest"]
    assert not [e for e in logs if "corrupt" in e["event"]]


def test_a_warm_set_skips_yaml_and_lint_and_keeps_positions(cache, policies, monkeypatch):
    """A cache hit neither composes YAML nor lints, and keeps every rule's file and line."""
    from policyengine.policy import load as load_module

    cold = load_policies([policies])
    with monkeypatch.context() as m:
        def refused(*args, **kwargs):
            raise AssertionError("the cached set was parsed or linted again")

        m.setattr(load_module, "parse_documents", refused)
        m.setattr(load_module, "lint_documents", refused)
        warm = load_policies([policies])
    assert [(d.file, d.path, d.index, d.data, d.text, d.marks, d.key_marks, d.spans)
            for d in warm] == [(d.file, d.path, d.index, d.data, d.text, d.marks, d.key_marks,
                                d.spans) for d in cold]
    rules = [(r.file, r.line, r.id) for r in compile_policies(warm).rules()]
    assert rules == [(r.file, r.line, r.id) for r in compile_policies(cold).rules()]


def test_a_policy_error_is_reported_though_an_older_clean_set_is_cached(cache, policies):
    """An edit that breaks a policy is reported: the cache never hides a lint error."""
    from policyengine.errors import PolicyLoadError

    load_policies([policies])
    fairness = policies / "fairness" / "fairness.yaml"
    fairness.write_text(fairness.read_text().replace(">= params.min_dp_ratio",
                                                     ">= params.no_such_param", 1))
    with pytest.raises(PolicyLoadError) as raised:
        load_policies([policies])
    assert "no_such_param" in raised.value.diagnostics()


def test_entries_are_bounded(cache, policies):
    """Each edit makes a new entry, and only the newest KEEP are kept."""
    fairness = policies / "fairness" / "fairness.yaml"
    text = fairness.read_text()
    for i in range(bundle_cache_module.KEEP + 3):
        fairness.write_text(text + f"# edit {i}\n")
        load_policies([policies])
    assert len(list(cache.glob("*.json"))) == bundle_cache_module.KEEP


@pytest.mark.parametrize(("old", "new"), [
    ("\n", "\n# a comment-only edit\n"),
    ("\n", " \n"),  # trailing whitespace
    ("\n", "\r\n"),  # one line ending
])
def test_a_comment_or_whitespace_edit_changes_the_bundle_digest(cache, policies, monkeypatch,
                                                               old, new):
    """Editing only a comment or whitespace of a policy file changes the digest, warm or cold."""
    before = _decide(policies)  # warms the cache
    fairness = policies / "fairness" / "fairness.yaml"
    fairness.write_bytes(fairness.read_bytes().replace(old.encode(), new.encode(), 1))
    warm, cold = _decide(policies), _cold(policies, monkeypatch)
    assert warm == cold and warm["bundle_digest"] != before["bundle_digest"]
    assert [(r["rule"], r["outcome"]) for r in warm["results"]] == [
        (r["rule"], r["outcome"]) for r in before["results"]]  # the rules are unchanged


def test_moving_a_policy_file_changes_the_bundle_digest(cache, policies):
    """The digest covers each file's path relative to its root, not only its text."""
    before = compile_policies(load_policies([policies])).bundle_digest
    (policies / "fairness" / "fairness.yaml").rename(policies / "fairness" / "parity.yaml")
    assert compile_policies(load_policies([policies])).bundle_digest != before


def test_the_bundle_digest_ignores_where_the_root_is(cache, policies, tmp_path):
    """The same files under another root directory give the same digest (paths are relative)."""
    elsewhere = tmp_path / "checkout" / "policies"
    shutil.copytree(policies, elsewhere)
    assert (compile_policies(load_policies([policies])).bundle_digest
            == compile_policies(load_policies([elsewhere])).bundle_digest)


def test_a_param_override_changes_the_bundle_digest_with_a_warm_cache(cache, policies,
                                                                      monkeypatch):
    """A changed override changes the digest and the decision; the cached set is still used."""
    base = _decide(policies)
    with capture_logs() as logs:
        strict = _decide(policies, {"fairness-thresholds": {"min_dp_ratio": 0.99}})
    assert strict["bundle_digest"] != base["bundle_digest"]
    assert strict == _cold(policies, monkeypatch,
                           params={"fairness-thresholds": {"min_dp_ratio": 0.99}})
    assert not [e for e in logs if "corrupt" in e["event"]]
    assert len(list(cache.glob("*.json"))) == 1
