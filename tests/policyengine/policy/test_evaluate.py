"""Evaluation: outcomes, fail-closed errors naming the missing field, deny rules, values read."""

from __future__ import annotations

import copy
import datetime as dt

import jsonschema
import pytest

from policyengine import resources
from policyengine.errors import EvaluationError


def _result(decision, rid):
    return next(r for r in decision.results if r.rule == rid)


def test_pass_and_allow(decide, h):
    """A rule that holds passes and the decision is allow."""
    d = decide(h.rule("ok", "card.fairness.all(f, f.value >= 0.8)"))
    assert d.allow and _result(d, "ok").outcome == "pass"


def test_fail_renders_message_and_denies(decide, h):
    """A failing deny rule denies; its CEL message is rendered with params."""
    d = decide(h.rule("dp", "card.fairness.all(f, f.value >= params.min)",
                      '"ratio below " + string(params.min)'), params="{min: 0.9}")
    r = _result(d, "dp")
    assert not d.allow and r.outcome == "fail" and r.message == "ratio below 0.9"
    assert r.remediation == "fix it"
    assert d.reasons == ("p@1.0.0 dp fail: ratio below 0.9",)


def test_values_read_are_reported(decide, h):
    """The values a rule read appear keyed by their concrete paths."""
    d = decide(h.rule("dp", "card.fairness.all(f, f.value >= params.min)"), params="{min: 0.9}")
    values = _result(d, "dp").values
    assert values["card.fairness[0].value"] == 0.93
    assert values["card.fairness[1].value"] == 0.85
    assert values["params.min"] == 0.9


def test_dynamic_index_is_resolved_in_values(decide, h):
    """params.limits[card.risk_tier] shows the entry for the card's tier only."""
    d = decide(h.rule("t", "card.retention.data_days <= params.limits[card.risk_tier]"),
               params="{limits: {high: 100, low: 1000}}")
    values = _result(d, "t").values
    assert values["params.limits.high"] == 100.0
    assert "params.limits.low" not in values


def test_missing_field_is_error_naming_the_field(decide, h):
    """A rule reading a field the card lacks errors, names the field, and denies."""
    card = copy.deepcopy(h.CARD)
    del card["fairness"]
    d = decide(h.rule("dp", "card.fairness.all(f, f.value >= 0.8)"), card)
    r = _result(d, "dp")
    assert r.outcome == "error" and r.message == "card.fairness is missing"
    assert not d.allow


def test_missing_field_inside_comprehension_names_element(decide, h):
    """A field missing on one list element is named with its index."""
    card = copy.deepcopy(h.CARD)
    del card["fairness"][1]["value"]
    d = decide(h.rule("dp", "card.fairness.all(f, f.value >= 0.8)"), card)
    assert _result(d, "dp").message == "card.fairness[1].value is missing"


def test_wrong_type_is_error(decide, h):
    """Comparing a string to a number is an error, not a silent fail."""
    card = dict(h.CARD, risk_tier=3)
    d = decide(h.rule("t", 'card.risk_tier.startsWith("h")'), card)
    assert _result(d, "t").outcome == "error" and not d.allow


def test_non_bool_result_is_error(decide, h):
    """An expr that yields a number is an error."""
    d = decide(h.rule("n", "card.fairness.size()"))
    r = _result(d, "n")
    assert r.outcome == "error" and "must yield a bool" in r.message


def test_warn_failure_does_not_deny(decide, h):
    """A failing warn rule is reported but the decision is allow."""
    d = decide(h.rule("w", "false", severity="warn") + h.rule("ok", "true"))
    assert d.allow and _result(d, "w").outcome == "fail"


def test_warn_error_denies(decide, h):
    """An enforced rule that errors denies whatever its severity (fail closed)."""
    d = decide(h.rule("w", "card.nope == 1", severity="warn"))
    assert not d.allow and _result(d, "w").outcome == "error"


def test_audit_mode_never_blocks(decide, h):
    """An audit-mode policy records failures and errors without denying."""
    d = decide(h.rule("a", "false") + h.rule("b", "card.nope == 1"), mode="audit")
    assert d.allow
    assert [r.outcome for r in d.results] == ["fail", "error"]


def test_not_applicable_policy_is_skipped_and_denies_when_nothing_applies(decide, h):
    """Rules of a policy whose appliesTo excludes the event are skipped; none apply -> deny."""
    d = decide(h.rule("r", "true"), applies="{stages: [staging]}")
    r = _result(d, "r")
    assert r.outcome == "skipped" and "stage 'production' not in [staging]" in r.message
    assert not d.allow and "fail closed" in d.reasons[0]


def test_applies_to_risk_tier(decide, h):
    """riskTiers matches card.risk_tier."""
    d = decide(h.rule("r", "true"), applies="{riskTiers: [high], events: [promote]}")
    assert d.allow and _result(d, "r").outcome == "pass"


def test_message_that_fails_to_render(decide, h):
    """A message that cannot be rendered says so instead of raising."""
    d = decide(h.rule("r", "false", '"x" + card.nope'))
    assert _result(d, "r").message.startswith("message could not be rendered")


def test_now_is_the_callers_time(decide, h):
    """now is the time the caller passes, as a CEL timestamp."""
    rules = h.rule("t", 'now > timestamp("2026-11-01T00:00:00Z")')
    assert decide(rules).allow
    assert not decide(rules, now=dt.datetime(2026, 10, 1, tzinfo=dt.UTC)).allow


def test_naive_now_is_rejected(decide, h):
    """A naive datetime is refused rather than guessed."""
    with pytest.raises(EvaluationError, match="timezone-aware"):
        decide(h.rule("r", "true"), now=dt.datetime(2026, 1, 1))


def test_history_is_available(decide, h):
    """history.approvals can be read by rules."""
    history = {"approvals": [{"approver": "bob", "role": "risk", "model": "scorer",
                              "version": "2.0.0", "time": "2026-11-20T00:00:00Z"}]}
    rules = h.rule("n", "history.approvals.exists(a, a.approver != card.author)")
    assert decide(rules, history=history).allow
    assert not decide(rules).allow


def test_decision_is_deterministic(decide, h):
    """The same inputs give the same id and digests."""
    a = decide(h.rule("r", "true"))
    b = decide(h.rule("r", "true"))
    assert a.to_dict() == b.to_dict()


def test_input_digest_changes_with_the_card(decide, h):
    """A different card gives a different input digest."""
    a = decide(h.rule("r", "true"))
    b = decide(h.rule("r", "true"), dict(h.CARD, risk_tier="low"))
    assert a.input_digest != b.input_digest


def test_decision_conforms_to_schema(decide, h):
    """Decision.to_dict() validates against schemas/decision.schema.json (with waivers)."""
    history = {"waivers": [
        {"id": "w1", "rules": ["f"], "model": "scorer", "reason": "r", "ticket": "T-1",
         "approver": "carol", "time": "2026-11-01T00:00:00Z", "expires": "2027-01-01T00:00:00Z"},
        {"id": "w0", "rules": ["f"], "model": "scorer", "expires": "2026-01-01T00:00:00Z"}]}
    d = decide(h.rule("f", "false") + h.rule("e", "card.nope == 1") + h.rule("ok", "true"),
               history=history)
    body = d.to_dict()
    jsonschema.validate(body, resources.schema("decision"),
                        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    assert body["summary"] == {"pass": 1, "fail": 0, "error": 1, "waived": 1, "skipped": 0}
    assert body["results"][0]["location"]["line"] > 0


def test_bad_input_types_raise(decide, h):
    """Inputs that are not JSON data raise EvaluationError."""
    with pytest.raises(EvaluationError, match="not JSON data"):
        decide(h.rule("r", "true"), dict(h.CARD, blob={1, 2}))


def test_absent_history_lists_are_empty(decide, h):
    """With no history, history.approvals is an empty list: rules fail, they do not error."""
    d = decide(h.rule("n", "history.approvals.size() >= 1 && history.waivers.size() == 0"))
    assert _result(d, "n").outcome == "fail"


@pytest.mark.parametrize("engine", ["reference", "fast"])
@pytest.mark.parametrize("count", [1, 2, 5])
def test_has_inside_a_comprehension_holds_for_every_list_length(tmp_path, engine, count):
    """`list.all(d, has(d.x))` passes for lists of any length (two items once gave an error)."""
    import datetime as dt
    from pathlib import Path as _Path

    from policyengine.policy import Context, compile_policies, evaluate, load_policies

    policy = _Path(tmp_path) / "p.yaml"
    policy.write_text(
        "apiVersion: policyengine/v1\nkind: Policy\nmetadata: {name: p, version: 1.0.0}\n"
        "spec:\n  rules:\n    - id: flags\n      severity: deny\n"
        "      expr: 'card.training_data.all(d, has(d.contains_pii)) && "
        "!card.training_data.exists(d, !has(d.name))'\n      message: '\"m\"'\n"
    )
    card = {"training_data": [{"name": f"d{i}", "contains_pii": False} for i in range(count)]}
    cps = compile_policies(load_policies([policy]), engine=engine)
    decision = evaluate(cps, Context(card, {"type": "promote", "stage": "production"}, {}),
                        dt.datetime(2026, 11, 26, tzinfo=dt.UTC))
    assert [r.outcome for r in decision.results] == ["pass"]
