"""`policyengine audit replay` and `policyengine whatif` on real logs (demo story included)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from policyengine.policy import load_policies
from tests.integration.gatecli import REPO, cli, environ
from tests.policyengine.replaylog import build_batched, card, open_engine, promote_version


def _demo_dir(tmp_path: Path) -> Path:
    """Run scripts/demo.sh keeping its working directory; return that directory."""
    tmp_path.mkdir()
    env = environ(PATH=f"{Path(sys.executable).parent}:{environ()['PATH']}",
                  TMPDIR=str(tmp_path), KEEP="1")
    proc = subprocess.run(["bash", str(REPO / "scripts" / "demo.sh")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (work,) = tmp_path.glob("policyengine-demo.*")
    return work


def test_replay_all_on_demo_log(tmp_path, workdir, monkeypatch):
    """Every decision of the demo's log (a deny and an allow) is reproduced; exit 0."""
    demo = _demo_dir(tmp_path / "demo")
    monkeypatch.chdir(demo)
    run = cli("audit", "replay", "--all", "--format", "json")
    assert run.code == 0, run.err
    report = json.loads(run.out)
    assert report["summary"] == {"decisions": 2, "reproduced": 2, "fault": 0,
                                 "not_replayable": 0}
    assert [r["verdict"] for r in report["results"]] == ["deny", "allow"]
    text = cli("audit", "replay", "--all")
    assert text.code == 0 and "2 reproduced, 0 fault(s)" in text.out
    one = cli("audit", "replay", str(report["results"][1]["seq"]))
    assert one.code == 0 and "allow: reproduced" in one.out


def test_replay_all_on_ten_thousand_decisions(workdir, monkeypatch):
    """`audit replay --all` over 10,000 recorded decisions (allows and denies on 10,000
    versions) reproduces every one, with zero faults and exit 0."""
    monkeypatch.setenv("POLICYENGINE_ENGINE", "fast")  # build and replay alike
    engine = open_engine(workdir)
    build_batched(engine, 10_000)
    engine.close()
    run = cli("audit", "replay", "--all", "--format", "json")
    assert run.code == 0, run.err[-2000:]
    report = json.loads(run.out)
    assert report["summary"] == {"decisions": 10_000, "reproduced": 10_000, "fault": 0,
                                 "not_replayable": 0}
    verdicts = [r["verdict"] for r in report["results"]]
    assert verdicts.count("deny") == 2_000 and verdicts.count("allow") == 8_000


def test_replay_exit_codes(workdir):
    """Bad selections exit 2, a missing log exits 3, a non-decision entry exits 2."""
    assert cli("audit", "replay").code == 2
    assert cli("audit", "replay", "3", "--all").code == 2
    assert cli("audit", "replay", "--version", "1").code == 2
    missing = cli("audit", "replay", "--all", "--log", f"sqlite:///{workdir}/nope.db")
    assert missing.code == 3 and not (workdir / "nope.db").exists()
    engine = open_engine(workdir)
    promote_version(engine, card("1.0.0"))
    engine.close()
    assert cli("audit", "replay", "0").code == 2  # the policy_bundle entry
    by_model = cli("audit", "replay", "--model", "credit-risk-scorer", "--version", "1.0.0")
    assert by_model.code == 0 and "1 reproduced" in by_model.out


def test_replay_fault_exits_1(workdir):
    """A decision whose bundle entry was edited makes replay exit 1, naming the fault."""
    import sqlite3

    engine = open_engine(workdir)
    promote_version(engine, card("1.0.0"))
    bundle = engine.log.get(0).payload
    engine.close()
    bundle["params"] = {"fairness-thresholds": {"min_dp_ratio": 0.5}}
    with sqlite3.connect(workdir / ".policyengine" / "audit.db") as db:
        db.execute("UPDATE audit_payloads SET content = ? WHERE seq = 0",
                   (json.dumps(bundle).encode(),))
    run = cli("audit", "replay", "--all")
    assert run.code == 1 and "FAULT bundle_mismatch" in run.out


@pytest.fixture
def production(workdir):
    """Three versions promoted to staging, lowest parity ratios 0.81, 0.84 and 0.95."""
    engine = open_engine(workdir)
    for name, ratio in (("alpha", 0.81), ("beta", 0.84), ("gamma", 0.95)):
        promote_version(engine, card("1.0.0", name=name, min_ratio=ratio))
    engine.close()
    return workdir


def test_whatif_unchanged_policies_zero_flips(production):
    """The configured policies themselves flip nothing; exit 0."""
    run = cli("whatif", "--policies", str(REPO / "policies"), "--stage", "staging",
              "--format", "json")
    assert run.code == 0, run.err
    report = json.loads(run.out)
    assert report["summary"] == {"versions": 3, "allow_to_deny": 0, "deny_to_allow": 0,
                                 "not_evaluated": 0}


def test_whatif_stricter_threshold_flips_exactly_those_below(production):
    """A 0.85 parity threshold flips exactly the versions whose recorded ratio is below it."""
    run = cli("whatif", "--policies", str(REPO / "policies"), "--stage", "staging",
              "--set", "fairness-thresholds.min_dp_ratio=0.85", "--format", "json")
    assert run.code == 1, run.err
    report = json.loads(run.out)
    flipped = sorted(r["model"] for r in report["rows"] if r["flipped"])
    assert flipped == ["alpha", "beta"]
    rules = [r["failing"] for r in report["rows"] if r["flipped"]]
    assert all(any("fairness-thresholds/" in rule for rule in found) for found in rules)


def test_whatif_edited_policy_copy(production, tmp_path):
    """An edited copy of the fairness pack (0.9) flips alpha and beta; table and html render."""
    policies = tmp_path / "new-policies"
    shutil.copytree(REPO / "policies", policies)
    fairness = policies / "fairness" / "fairness.yaml"
    fairness.write_text(fairness.read_text().replace("min_dp_ratio: 0.8", "min_dp_ratio: 0.9"))
    assert load_policies([policies])
    table = cli("whatif", "--policies", str(policies), "--stage", "staging")
    assert table.code == 1 and "2 would flip allow -> deny" in table.out
    page = cli("whatif", "--policies", str(policies), "--stage", "staging", "--format", "html")
    assert page.code == 1 and page.out.startswith("<!DOCTYPE html>")
    assert "http" not in page.out and "<script" not in page.out and "alpha" in page.out


def test_whatif_needs_policies(production):
    """whatif without --policies is bad input (exit 2)."""
    assert cli("whatif", "--stage", "staging").code == 2
