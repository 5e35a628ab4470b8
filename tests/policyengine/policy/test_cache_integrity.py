"""The prepared-expression cache: corrupt entries are rebuilt, never change a decision or digest.

A policy set loaded before is read whole from the bundle cache (test_bundle_cache.py)
without reading expression entries, so these tests remove its entries first.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from policyengine.cards.validate import load_document
from policyengine.policy import Context, compile_policies, evaluate, load_policies

REPO = Path(__file__).resolve().parents[3]
CARD = REPO / "examples" / "cards" / "credit-risk-scorer.yaml"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A private, empty cache directory for this test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("POLICYENGINE_PARSER_CACHE", raising=False)
    return tmp_path / "cache" / "policyengine" / "expressions"


def _decide(policies: Path) -> dict:
    """The decision on the example card's production promotion, evaluated afresh."""
    compiled = compile_policies(load_policies([policies]))
    card = load_document(CARD)
    event = {"type": "promote", "stage": "production", "model": card["model"]["name"],
             "version": card["model"]["version"], "actor": "ci"}
    decision = evaluate(compiled, Context(card=card, event=event, history={}), NOW).to_dict()
    return {k: v for k, v in decision.items() if k not in ("id", "duration_ms")}


def _forget_bundles(cache: Path) -> None:
    """Remove the bundle cache's entries, so the next load reads the expression entries."""
    shutil.rmtree(cache.parent / "bundles", ignore_errors=True)


def _corruptions() -> dict[str, object]:
    def truncate(raw: str) -> str:
        return raw[: len(raw) // 2]

    def version(raw: str) -> str:
        return raw.replace('"version": "2"', '"version": "1"')

    def body(raw: str) -> str:  # the code changed, the digest not
        outer = json.loads(raw)
        outer["body"] = outer["body"].replace('"python": "', '"python": "x = 1\\n', 1)
        return json.dumps(outer)

    def garbage(raw: str) -> str:
        return "\x00\x01 not json"

    def foreign(raw: str) -> str:
        return json.dumps({"text": "true", "depth": 1})

    return {"truncated": truncate, "old version": version, "tampered body": body,
            "garbage": garbage, "other format": foreign}


@pytest.mark.parametrize("kind", list(_corruptions()))
def test_corrupt_entries_are_rebuilt_with_the_same_decision(cache, monkeypatch, kind):
    """Every corrupted entry is reported once, rebuilt, and the decision is unchanged."""
    policies = REPO / "policies"
    monkeypatch.setenv("POLICYENGINE_PARSER_CACHE", "off")
    want = _decide(policies)
    monkeypatch.delenv("POLICYENGINE_PARSER_CACHE")
    assert _decide(policies) == want  # fills the cache
    files = sorted(cache.glob("*.json"))
    assert files
    damage = _corruptions()[kind]
    for file in files:
        file.write_text(damage(file.read_text()))  # type: ignore[operator]
    _forget_bundles(cache)
    with capture_logs() as logs:
        assert _decide(policies) == want
    corrupt = [e for e in logs if e["event"] == "cel_cache_entry_corrupt"]
    assert len(corrupt) == len(files) and all(e["log_level"] == "warning" for e in corrupt)
    _forget_bundles(cache)
    with capture_logs() as logs:  # rebuilt: read cleanly from now on
        assert _decide(policies) == want
    assert not [e for e in logs if e["event"] == "cel_cache_entry_corrupt"]


def test_an_entry_of_another_expression_is_not_used(cache):
    """An entry copied over another expression's file is corrupt, not that expression's code."""
    policies = REPO / "policies"
    want = _decide(policies)
    files = sorted(cache.glob("*.json"))
    first = files[0].read_text()
    for file in files[1:]:
        file.write_text(first)
    _forget_bundles(cache)
    with capture_logs() as logs:
        assert _decide(policies) == want
    assert any("another expression" in str(e.get("reason")) for e in logs)


@pytest.mark.parametrize(("old", "new"), [
    ("min_dp_ratio: 0.8", "min_dp_ratio: 0.9"),  # a param's value
    (">= params.min_dp_ratio", "<= params.min_dp_ratio"),  # an operator in a rule
    ("version: 1.", "version: 2."),  # the policy's version
])
def test_one_changed_byte_changes_the_bundle_digest_cached_or_not(cache, tmp_path, monkeypatch,
                                                                   old, new):
    """Changing one byte of a policy's content changes the bundle digest, warm cache or none."""
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies, ignore=shutil.ignore_patterns("tests"))
    before = compile_policies(load_policies([policies])).bundle_digest  # warms the cache
    fairness = policies / "fairness" / "fairness.yaml"
    text = fairness.read_bytes()
    assert old.encode() in text and len(old) == len(new)
    changed = text.replace(old.encode(), new.encode(), 1)
    assert sum(a != b for a, b in zip(text, changed, strict=True)) == 1
    fairness.write_bytes(changed)
    warm = compile_policies(load_policies([policies])).bundle_digest
    monkeypatch.setenv("POLICYENGINE_PARSER_CACHE", "off")
    cold = compile_policies(load_policies([policies])).bundle_digest
    assert warm == cold != before
