"""Waivers: a future expiry waives, a past one does not and is reported as expired."""

from __future__ import annotations

import pytest

from policyengine.policy.waivers import select_waiver, version_matches


def _waiver(**over):
    base = {"id": "w1", "rules": ["dp"], "model": "scorer", "version": None, "versions": None,
            "reason": "vendor fix pending", "ticket": "RISK-7", "approver": "carol",
            "time": "2026-11-01T00:00:00Z", "expires": "2027-01-01T00:00:00Z", "signed": True}
    base.update(over)
    return base


FAILING = "- {id: dp, severity: deny, expr: 'false', message: '\"ratio too low\"'}"


def _dp(decision):
    return next(r for r in decision.results if r.rule == "dp")


def test_future_expiry_turns_fail_into_waived(decide):
    """An unexpired waiver naming the rule makes it waived, never pass, and allows."""
    d = decide(FAILING, history={"waivers": [_waiver()]})
    r = _dp(d)
    assert r.outcome == "waived" and r.waived_outcome == "fail"
    assert r.waiver["id"] == "w1" and r.waiver["ticket"] == "RISK-7"
    assert d.allow


def test_past_expiry_does_not_waive_and_says_expired(decide):
    """An expired waiver is ignored; the result lists it as expired."""
    d = decide(FAILING, history={"waivers": [_waiver(expires="2026-11-01T00:00:00Z")]})
    r = _dp(d)
    assert r.outcome == "fail" and not d.allow
    assert r.expired_waivers == ({"id": "w1", "ticket": "RISK-7", "approver": "carol",
                                  "reason": "vendor fix pending",
                                  "expires": "2026-11-01T00:00:00Z", "status": "expired"},)


def test_waiver_never_turns_pass_into_waived(decide):
    """A passing rule stays pass even with a waiver naming it."""
    d = decide("- {id: dp, severity: deny, expr: 'true', message: '\"x\"'}",
               history={"waivers": [_waiver()]})
    assert _dp(d).outcome == "pass"


def test_waiver_applies_to_errors(decide):
    """An error result can be waived (recorded as waived_outcome error)."""
    d = decide("- {id: dp, severity: deny, expr: 'card.nope == 1', message: '\"x\"'}",
               history={"waivers": [_waiver()]})
    assert _dp(d).outcome == "waived" and _dp(d).waived_outcome == "error" and d.allow


def test_policy_qualified_rule_name(decide):
    """A waiver may name policy/rule."""
    d = decide(FAILING, history={"waivers": [_waiver(rules=["p/dp"])]})
    assert _dp(d).outcome == "waived"


@pytest.mark.parametrize("over", [{"model": "other"}, {"version": "1.0.0"},
                                  {"versions": ">=3"}, {"rules": ["else"]}])
def test_waiver_for_another_subject_or_rule_does_not_apply(decide, over):
    """Model, version and rule must all match."""
    d = decide(FAILING, history={"waivers": [_waiver(**over)]})
    assert _dp(d).outcome == "fail"


def test_version_range_matches(decide):
    """versions '>=1,<3' covers 2.0.0."""
    d = decide(FAILING, history={"waivers": [_waiver(versions=">=1,<3")]})
    assert _dp(d).outcome == "waived"


def test_waiver_granted_after_now_is_not_yet_valid(decide):
    """A waiver whose time is after now does not apply (replay stays faithful)."""
    d = decide(FAILING, history={"waivers": [_waiver(time="2026-12-01T00:00:00Z")]})
    assert _dp(d).outcome == "fail"
    assert _dp(d).expired_waivers[0]["status"] == "not_yet_valid"


def test_waiver_without_valid_expiry_is_ignored(decide):
    """Fail closed: a waiver with no parseable expiry never applies."""
    d = decide(FAILING, history={"waivers": [_waiver(expires="soon")]})
    assert _dp(d).outcome == "fail"
    assert _dp(d).expired_waivers[0]["status"] == "invalid_expiry"


@pytest.mark.parametrize(("version", "spec", "ok"), [
    ("2.0.0", ">=1,<3", True), ("3.0.0", ">=1,<3", False), ("1.10", ">1.9", True),
    ("1.0", "==1", True), ("2", "!=2", False), ("1.0.0", "bogus spec!", False),
    ("1.0.0", "*", True), ("1.0.0", "", False),
])
def test_version_matches(version, spec, ok):
    """Version ranges compare numerically part by part; malformed ranges match nothing."""
    assert version_matches(version, spec) is ok


def test_select_waiver_direct():
    """select_waiver returns the applying waiver and the ignored ones."""
    import datetime as dt
    now = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
    active, ignored = select_waiver(
        [_waiver(), _waiver(id="old", expires="2025-01-01T00:00:00Z"), "junk"],
        "p", "dp", "scorer", "2.0.0", now)
    assert active["id"] == "w1" and [w["id"] for w in ignored] == ["old"]
