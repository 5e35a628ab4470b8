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
