"""Build logs of real gate decisions for replay and what-if tests (the library, not the CLI)."""

from __future__ import annotations

import copy
import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from audit.log import AuditLog
from policyengine.cards.validate import load_document
from policyengine.config import load_config
from policyengine.engine import Engine
from policyengine.gate import gate
from policyengine.promote import promote

REPO = Path(__file__).resolve().parents[2]
CARD = REPO / "examples" / "cards" / "credit-risk-scorer.yaml"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def open_engine(root: Path, **flags: Any) -> Engine:
    """An Engine over ``root/.policyengine`` (SQLite log, development key), fixed actor."""
    config = load_config(flags, env={"POLICYENGINE_ACTOR": "ci-bot"}, cwd=root)
    signer = config.signer(io.StringIO())
    (root / ".policyengine").mkdir(exist_ok=True)
    log = AuditLog.open(config.log_url, origin=config.origin, signer=signer)
    return Engine(config, log=log, signer=signer)


def card(version: str, *, min_ratio: float | None = None, name: str | None = None) -> dict:
    """The example card as ``version`` of model ``name``, lowest parity ratio ``min_ratio``."""
    data = copy.deepcopy(load_document(CARD))
    data["model"]["version"] = version
    if name:
        data["model"]["name"] = name
    digest = hashlib.sha256(f"{name}/{version}".encode()).hexdigest()
    data["model"]["artifact_digest"] = f"sha256:{digest}"
    if min_ratio is not None:
        for item in data["fairness"]:
            if item["metric"] == "demographic_parity_ratio":
                item["value"] = max(item["value"], min_ratio)
        data["fairness"][1]["value"] = min_ratio
    return data


def build(engine: Engine, n: int) -> list[int]:
    """``n`` decisions on distinct versions: staging allows, every fifth a production deny."""
    cache = load_document(CARD)
    seqs = []
    for i in range(n):
        data = copy.deepcopy(cache)
        data["model"]["version"] = f"1.{i // 1000}.{i % 1000}"
        stage = "production" if i % 5 == 4 else "staging"
        seqs.append(gate(engine, data, stage, "promote", now=T0 + timedelta(seconds=i)).seq)
    return seqs


def promote_version(engine: Engine, data: dict, stage: str = "staging") -> int:
    """Gate ``data`` to ``stage`` (must allow) and promote it; the promotion's seq."""
    result = gate(engine, data, stage, "promote")
    assert result.allow, result.decision["reasons"]
    model = data["model"]
    return promote(engine, model=model["name"], version=model["version"],
                   digest=model["artifact_digest"], stage=stage, actor="ci-bot").seq


def build_batched(engine: Engine, n: int, *, batch: int = 500) -> None:
    """``n`` decisions as :func:`build` makes them, appended ``batch`` at a time.

    Each decision is evaluated exactly as ``gate`` does (the same event,
    history, evaluation and payload); only the writing differs: one
    transaction and one signed checkpoint per batch instead of per decision,
    so a test can afford a log of thousands. The first goes through ``gate``
    itself, which records the policy bundle.
    """
    from audit.log import NewEntry
    from policyengine.gate import _history, decision_payload, event_for
    from policyengine.policy import Context, evaluate

    cache = load_document(CARD)
    build(engine, 1)
    log, pending = engine.log, []
    for i in range(1, n):
        data = copy.deepcopy(cache)
        data["model"]["version"] = f"1.{i // 1000}.{i % 1000}"
        stage = "production" if i % 5 == 4 else "staging"
        policies = engine.policies(stage)
        ev = event_for(data, "promote", stage, engine.actor(None))
        hist = _history(log, engine.config, engine.trust, ev, policies.compiled.history_reads)
        when = T0 + timedelta(seconds=i)
        decision = evaluate(policies.compiled, Context(data, ev, hist.history), when).to_dict()
        subject = {"name": ev["model"], "version": ev["version"], "digest": ev["digest"]}
        pending.append(NewEntry("decision", subject, ev["actor"],
                                decision_payload(data, ev, decision, hist, when)))
        if len(pending) == batch or i == n - 1:
            log.append_signed_many(pending)
            pending = []
