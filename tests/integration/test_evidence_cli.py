"""`policyengine evidence import` then `gate`: real reports judged by the built-in packs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.gatecli import MODEL, VERSION, cli, gate, log_size

pytest.importorskip("evidently", reason="the evidence extra (pip install -e '.[evidence]')")
pytest.importorskip("fairlearn", reason="the evidence extra (pip install -e '.[evidence]')")

from tests.policyengine.evidence.reports import evidently_report, metricframe_export

REPO = Path(__file__).resolve().parents[2]


def _record(path: Path, report: dict, *extra: str):
    path.write_text(json.dumps(report))
    return cli("evidence", "import", str(path), "--model", MODEL, "--version", VERSION, *extra)


def _drift_gate():
    return gate("--policies", str(REPO / "policies" / "drift"))


def test_drifted_report_makes_the_drift_pack_deny_naming_the_column(workdir: Path) -> None:
    """An Evidently report with age shifted, recorded as evidence, denies the gate naming age."""
    run = _record(workdir / "drift.json", evidently_report(drift=True), "--receipt", "r.json")
    assert run.code == 0, run.err
    assert json.loads((workdir / "r.json").read_text())["envelope"]["type"] == "evidence"
    assert "drift.json: read as evidently (metric_v2) drift evidence" in run.err
    assert "recorded drift evidence for credit-risk-scorer 2.3.0 at seq 0" in run.out
    decided = _drift_gate()
    assert decided.code == 1, decided.out + decided.err
    assert "share of drifted columns 0.3333333333333333 above 0.1 (high risk) in drift.json; " \
        "drifted: age" in decided.out
    assert "drifted columns" in decided.out and "age (K-S p_value" in decided.out


def test_report_without_drift_passes_the_drift_pack(workdir: Path) -> None:
    """The same report on unshifted data lets the drift pack allow."""
    assert _record(workdir / "drift.json", evidently_report(drift=False)).code == 0
    decided = _drift_gate()
    assert decided.code == 0, decided.out + decided.err
    assert decided.out.startswith("ALLOW")


def test_only_the_latest_report_is_judged(workdir: Path) -> None:
    """A clean report recorded after a drifted one lifts the deny."""
    assert _record(workdir / "old.json", evidently_report(drift=True)).code == 0
    assert _drift_gate().code == 1
    assert _record(workdir / "new.json", evidently_report(drift=False)).code == 0
    assert _drift_gate().code == 0


def test_fairlearn_disparity_makes_the_fairness_pack_deny_naming_the_attribute(
    workdir: Path,
) -> None:
    """A MetricFrame with a selection-rate ratio of 0.5 denies the fairness pack for sex."""
    run = _record(workdir / "mf.json", metricframe_export(disparity=True))
    assert run.code == 0, run.err
    assert "read as fairlearn (metricframe) fairness evidence" in run.err
    decided = gate("--policies", str(REPO / "policies" / "fairness"))
    assert decided.code == 1
    assert "demographic parity ratio below 0.8 (four-fifths rule) in recorded fairlearn " \
        "evidence mf.json for sex = 0.5" in decided.out


def test_fairlearn_without_disparity_passes_the_fairness_pack(workdir: Path) -> None:
    """Equal selection rates (ratio 1) leave the fairness pack allowing."""
    assert _record(workdir / "mf.json", metricframe_export(disparity=False)).code == 0
    decided = gate("--policies", str(REPO / "policies" / "fairness"))
    assert decided.code == 0, decided.out


@pytest.mark.parametrize(("content", "message"), [
    ("{oops", "bad.json:1:2: invalid JSON"),
    ('{"metrics": [{"metric": "DataDriftTable", "result": {}}], "version": "0.2.0"}',
     "bad.json: $.version: Evidently report version '0.2.0' is not supported; supported:"),
    ('{"anything": true}', "bad.json: $: not a supported report (top-level keys: anything)"),
])
def test_bad_reports_exit_2_in_one_line_and_write_nothing(
    workdir: Path, content: str, message: str
) -> None:
    """A malformed or unsupported report is one line, exit 2, and the log stays empty."""
    (workdir / "bad.json").write_text(content)
    run = cli("evidence", "import", "bad.json", "--model", MODEL, "--version", VERSION)
    assert run.code == 2 and run.out == ""
    assert message in run.err and run.err.count("\n") == 1 and "Traceback" not in run.err
    assert not (workdir / ".policyengine" / "audit.db").exists() or log_size(workdir) == 0


def test_a_huge_report_exits_2_naming_the_path(workdir: Path) -> None:
    """A report over the size limit is refused before it is read; nothing is logged."""
    with (workdir / "huge.json").open("wb") as handle:
        handle.truncate(17 * 1024 * 1024)
    run = cli("evidence", "import", "huge.json", "--model", MODEL, "--version", VERSION)
    assert run.code == 2 and "huge.json: cannot read evidence file" in run.err
    assert not (workdir / ".policyengine" / "audit.db").exists() or log_size(workdir) == 0


def test_model_and_version_are_required(workdir: Path) -> None:
    """Without --model and --version nothing can bind the evidence: exit 2."""
    (workdir / "mf.json").write_text(json.dumps(metricframe_export(disparity=False)))
    run = cli("evidence", "import", "mf.json")
    assert run.code == 2 and "--model and --version are required" in run.err


def test_the_command_offers_every_evidence_format() -> None:
    """--format lists exactly the formats the evidence package reads."""
    from policyengine.cli.evidence import FORMATS
    from policyengine.evidence import FORMAT_NAMES

    assert FORMATS == FORMAT_NAMES
