"""Policies: load YAML, lint, compile CEL once, evaluate purely, test.

Public API::

    docs = load_policies([Path("policies")])           # PolicyLoadError with all diagnostics
    cps = compile_policies(docs, params={"fairness-thresholds": {"min_dp_ratio": 0.9}})
    decision = evaluate(cps, Context(card, event, history), now)
    decision.allow; decision.to_dict()                  # schemas/decision.schema.json
"""

from policyengine.policy.compile import (
    CompiledPolicy,
    CompiledPolicySet,
    CompiledRule,
    compile_policies,
    merge_overrides,
    parse_set,
)
from policyengine.policy.evaluate import Context, evaluate
from policyengine.policy.limits import DEFAULT_LIMITS, Limits
from policyengine.policy.load import PolicyDocument, load_data, load_overrides, load_policies

__all__ = [
    "DEFAULT_LIMITS",
    "CompiledPolicy",
    "CompiledPolicySet",
    "CompiledRule",
    "Context",
    "Limits",
    "PolicyDocument",
    "compile_policies",
    "evaluate",
    "load_data",
    "load_overrides",
    "load_policies",
    "merge_overrides",
    "parse_set",
]
