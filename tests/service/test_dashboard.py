"""The Grafana dashboard queries only metrics the service exports."""

from __future__ import annotations

import json
import re

import promql_parser
import pytest

from tests.conftest import REPO_ROOT
from tests.service.conftest import auth, example_card
from tests.service.test_webhooks_mlflow import TAG_BODY, _headers

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "policyengine.json"
# Grafana's built-in interval variables, as Grafana substitutes them before querying.
_GRAFANA_VARS = {"$__rate_interval": "1m", "$__range": "6h", "$__interval": "30s"}


def _expressions() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    assert exprs, "the dashboard has no queries"
    return exprs


def _substituted(expr: str) -> str:
    for name, value in _GRAFANA_VARS.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unknown dashboard variable in {expr!r}"
    return expr


def _metric_names(node) -> set[str]:
    """Every metric a parsed PromQL expression selects (walks the AST)."""
    if isinstance(node, promql_parser.VectorSelector):
        return {node.name} if node.name else set()
    names: set[str] = set()
    for attr in ("expr", "lhs", "rhs", "vector_selector", "param"):
        child = getattr(node, attr, None)
        if child is not None and not isinstance(child, str | int | float):
            names |= _metric_names(child)
    for child in getattr(node, "args", None) or []:
        names |= _metric_names(child)
    return names


def test_every_expression_parses_and_selects_policyengine_metrics():
    """Each PromQL expression parses and selects at least one policyengine metric."""
    for expr in _expressions():
        names = _metric_names(promql_parser.parse(_substituted(expr)))
        assert names and all(n.startswith("policyengine_") for n in names), expr


@pytest.fixture
def exercised(client):
    """A client after a denied decision (with its append) and a recorded webhook."""
    body = {"card": example_card(auc=0.1), "event": {"type": "promote", "stage": "production"}}
    assert client.post("/v1/decisions", json=body, headers=auth("evaluator")).status_code == 200
    r = client.post("/v1/webhooks/mlflow", content=TAG_BODY, headers=_headers(TAG_BODY))
    assert r.status_code == 200
    return client


def test_every_dashboard_metric_is_exported(exercised):
    """After a decision, an append and a webhook, /metrics has every series the dashboard reads."""
    text = exercised.get("/metrics").text
    exported = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", text, re.MULTILINE))
    wanted = set().union(
        *(_metric_names(promql_parser.parse(_substituted(e))) for e in _expressions())
    )
    assert wanted - exported == set()
    for name in ("policyengine_denial_reasons_total", "policyengine_checkpoint_size"):
        assert name in wanted
