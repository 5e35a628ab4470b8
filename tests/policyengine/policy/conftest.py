"""Helpers for policy tests: write a policy to a temp dir, load, compile, evaluate."""

from __future__ import annotations

import datetime as dt
import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from policyengine.policy import Context, compile_policies, evaluate, load_policies

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)

CARD: dict[str, Any] = {
    "schema_version": "1.0",
    "model": {"name": "scorer", "version": "2.0.0",
              "artifact_digest": "sha256:" + "ab" * 32},
    "author": "alice@example.com",
    "risk_tier": "high",
    "fairness": [
        {"metric": "demographic_parity_ratio", "value": 0.93, "protected_attribute": "sex"},
        {"metric": "demographic_parity_ratio", "value": 0.85, "protected_attribute": "age"},
    ],
    "metrics": [{"name": "auc", "value": 0.91, "dataset": "holdout"}],
    "retention": {"data_days": 365, "audit_log_days": 400},
}
EVENT: dict[str, Any] = {"type": "promote", "stage": "production", "model": "scorer",
                         "version": "2.0.0", "digest": "sha256:" + "ab" * 32, "actor": "ci"}


def policy_yaml(rules: str, *, name: str = "p", params: str = "{}", applies: str = "{}",
                mode: str = "enforce") -> str:
    """A policy document with the given rules block (YAML, indented 4)."""
    return (
        "apiVersion: policyengine/v1\nkind: Policy\n"
        f"metadata: {{name: {name}, version: '1.0.0', description: d, references: [r]}}\n"
        f"spec:\n  appliesTo: {applies}\n  mode: {mode}\n  params: {params}\n  rules:\n"
        + textwrap.indent(textwrap.dedent(rules).strip("\n"), "    ") + "\n"
    )


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Expression and parser caches go to a fresh directory for this session."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """Write text to a file under tmp_path and return its path."""
    def _write(text: str, name: str = "policy.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path
    return _write


@pytest.fixture
def decide(write: Callable[..., Path]) -> Callable[..., Any]:
    """Compile a one-rule-set policy and evaluate it against a card/event/history."""
    def _decide(rules: str, card: dict[str, Any] | None = None, *,
                history: dict[str, Any] | None = None, event: dict[str, Any] | None = None,
                overrides: dict[str, Any] | None = None, now: dt.datetime = NOW,
                **policy: Any) -> Any:
        path = write(policy_yaml(rules, **policy))
        cps = compile_policies(load_policies([path]), overrides)
        ctx = Context(card=CARD if card is None else card, event=event or EVENT,
                      history=history or {})
        return evaluate(cps, ctx, now)
    return _decide


def rule(rid: str, expr: str, message: str = '"failed"', severity: str = "deny") -> str:
    """One rule entry (YAML list item) with a single-quoted expr."""
    expr_q = expr.replace("'", "''")
    message_q = message.replace("'", "''")
    return (f"- id: {rid}\n  severity: {severity}\n  expr: '{expr_q}'\n"
            f"  message: '{message_q}'\n  remediation: fix it\n")


class Helpers:
    """Constants and builders the policy tests share (importlib mode hides conftest)."""

    NOW = NOW
    CARD = CARD
    EVENT = EVENT
    policy_yaml = staticmethod(policy_yaml)
    rule = staticmethod(rule)


@pytest.fixture
def h() -> type[Helpers]:
    """The shared helpers."""
    return Helpers
