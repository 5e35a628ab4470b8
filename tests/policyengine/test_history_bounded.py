"""A version's history: the same lists as a read of every entry, at a cost that does not grow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from audit.keys import Signer
from audit.log import AuditLog, NewEntry
from policyengine.approvals import (
    approval_revocation_statement,
    approval_statement,
    revocation_statement,
    sign_statement,
    waiver_statement,
)
from policyengine.history import GROWING_LISTS, build_history, history_from_entries
from policyengine.policy import compile_policies, load_policies
from policyengine.policy.compile import HISTORY_FIELDS, history_reads

MODEL, VERSION = "credit-risk-scorer", "2.3.0"
DIGEST = "sha256:" + "3e" * 32
OWN = {"name": MODEL, "version": VERSION, "digest": DIGEST}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request, tmp_path) -> str:
    """A fresh log database: a SQLite file, or a PostgreSQL database (``pg_url``)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'log.db'}"
    return str(request.getfixturevalue("pg_url"))


def _signed(keys, who: str, statement: dict[str, Any]) -> dict[str, Any]:
    return {"statement": statement, "signature": sign_statement(statement,
                                                                Signer.from_skey(keys[who][0]))}


def _approval(keys, who: str, role: str, version: str = VERSION) -> dict[str, Any]:
    st = approval_statement(model=MODEL, version=version, digest=DIGEST, role=role, approver=who,
                            time="2026-11-26T15:00:00Z", expires=None)
    return _signed(keys, who, st)


def _waiver(keys, wid: str) -> dict[str, Any]:
    st = waiver_statement(waiver_id=wid, rules=["slo/latency-p95"], model=MODEL, version=None,
                          versions=None, reason="r", ticket="T", approver="carol",
                          time="2026-11-26T15:00:00Z", expires="2027-01-01T00:00:00Z")
    return _signed(keys, "carol", st)


def _decision(i: int, stage: str = "staging") -> dict[str, Any]:
    return {"decision": {"id": f"d{i}", "allow": i % 2 == 0, "bundle_digest": "sha256:b"},
            "event": {"stage": stage}, "card": {"pad": "x" * 200}}


def representative(log: AuditLog, keys, decisions: int = 5) -> None:
    """Every kind of entry a history reads, of this version, another version and another model."""
    other_version = {**OWN, "version": "1.0.0"}
    log.append("registered", OWN, "mlflow", {"type": "registered", "source": "webhook"})
    first = log.append("approval", OWN, "bob", _approval(keys, "bob", "model-risk"))
    log.append("approval", OWN, "carol", _approval(keys, "carol", "domain-owner"))
    log.append("approval", other_version, "bob",
               _approval(keys, "bob", "model-risk", version="1.0.0"))
    log.append("approval", OWN, "bob", {"statement": {"kind": "nonsense"}, "signature": None})
    log.append("waiver", {"name": MODEL}, "carol", _waiver(keys, "w-1"))
    log.append("waiver", {"name": MODEL}, "carol", _waiver(keys, "w-2"))
    log.append("waiver", {"name": "other-model"}, "carol", _waiver(keys, "w-3"))
    revoke = revocation_statement(waiver_id="w-1", model=MODEL, reason="fixed", approver="bob",
                                  time="2026-11-26T15:10:00Z")
    log.append("waiver_revoked", {"name": MODEL}, "bob", _signed(keys, "bob", revoke))
    withdraw = approval_revocation_statement(
        approval_seq=first.seq, model=MODEL, version=VERSION, approver="bob",
        time="2026-11-26T15:20:00Z", reason="wrong artifact")
    log.append("approval_revoked", OWN, "bob", _signed(keys, "bob", withdraw))
    log.append("evidence", OWN, "ci", {"kind": "drift", "drift": {"share": 0.1}})
    log.append("evidence", other_version, "ci", {"kind": "drift", "drift": {"share": 0.9}})
    for lo in range(0, decisions, 500):
        log.append_many([NewEntry("decision", subject, "ci", _decision(i))
                         for i in range(lo, min(decisions, lo + 500))
                         for subject in (OWN, other_version)])
    log.append("promoted", OWN, "ci", {"type": "promoted", "stage": "staging"})
    log.append("incident", OWN, "ops", {"type": "incident", "data": {"ticket": "INC-1"}})
    log.append("drift_detected", other_version, "ops", {"type": "drift_detected"})


def every_entry(log: AuditLog, trust) -> Any:
    """The history as a walk over every entry of the log builds it (the reference)."""
    return history_from_entries(log.query(), model=MODEL, version=VERSION, trust=trust)


def test_every_list_is_what_a_walk_over_every_entry_builds(url, keys, trust):
    """With every field read, the indexed queries build the very history of a full walk."""
    log = AuditLog.open(url)
    representative(log, keys)
    got = build_history(log, model=MODEL, version=VERSION, trust=trust)
    want = every_entry(log, trust)
    assert got.history == want.history and got.rejected == want.rejected
    h = got.history
    assert [a["approver"] for a in h["approvals"]] == ["carol"]
    assert [r["reason"][:10] for r in h["rejected_approvals"]] == ["payload is", "revoked by"]
    assert [w["id"] for w in h["waivers"]] == ["w-2"]
    assert [e["drift"]["share"] for e in h["evidence"]] == [0.1]
    assert [e["type"] for e in h["events"]] == ["registered", "incident"]
    assert [d["id"] for d in h["decisions"]] == [f"d{i}" for i in range(5)]
    assert [p["stage"] for p in h["promotions"]] == ["staging"]
    log.close()


@pytest.mark.parametrize("reads", [
    frozenset({"approvals", "evidence"}),
    frozenset({"decisions"}),
    frozenset({"events", "promotions"}),
    frozenset(),
])
def test_lists_read_are_unchanged_and_the_rest_absent(url, keys, trust, reads):
    """Each list the policies read is exactly as before; an unread growing list is absent."""
    log = AuditLog.open(url)
    representative(log, keys)
    got = build_history(log, model=MODEL, version=VERSION, trust=trust, reads=reads)
    want = every_entry(log, trust)
    absent = set(GROWING_LISTS) - reads
    assert got.history == {k: v for k, v in want.history.items() if k not in absent}
    assert got.rejected == want.rejected
    log.close()


def test_builtin_packs_read_approvals_and_evidence_only():
    """The built-in packs read no decisions, promotions or events from the history."""
    compiled = compile_policies(load_policies([REPO / "policies"]))
    assert compiled.history_reads == {"approvals", "evidence"}


@pytest.mark.parametrize(("texts", "want"), [
    (["size(history.decisions) > 0"], {"decisions"}),
    (['history["events"].exists(e, true)'], {"events"}),
    (["has(history.promotions)", "history .? evidence"], {"promotions", "evidence"}),
    (["card.x == 1", "'no mention'"], set()),
    (["size(history) > 0"], HISTORY_FIELDS),
    (["history.all(k, k != 'decisions')"], HISTORY_FIELDS),
    (["history[params.which].size() > 0"], HISTORY_FIELDS),
    (["'see the history'"], HISTORY_FIELDS),
    (['history["decis\\x69ons"]'], HISTORY_FIELDS),
])
def test_history_reads_is_conservative(texts, want):
    """A named history field is read; any other mention of history reads every field."""
    assert history_reads(texts) == want


def test_a_policy_that_reads_decisions_gets_them(tmp_path):
    """A rule naming history.decisions (in its message alone) makes the set read decisions."""
    policy = (REPO / "policies" / "slo" / "slo.yaml").read_text()
    assert "message: >" in policy
    (tmp_path / "slo.yaml").write_text(
        policy.replace("message: >", "message: >\n        string(size(history.decisions)) + ", 1))
    compiled = compile_policies(load_policies([tmp_path]))
    assert compiled.history_reads == {"decisions"}


class _Counting:
    """The log as history sees it, counting the entries its queries yield."""

    def __init__(self, log: AuditLog) -> None:
        self.log, self.rows, self.queries = log, 0, 0

    def query(self, **filters: Any) -> Any:
        self.queries += 1
        for entry in self.log.query(**filters):
            self.rows += 1
            yield entry


def _work(log: AuditLog, trust, reads: frozenset[str]) -> tuple[int, int, int, dict[str, Any]]:
    """(entries yielded, queries, SQLite VM steps, history) of one history build."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    reader = log.store.db.reader()  # this thread's read connection: history reads run on it
    reader.set_progress_handler(count, 1)
    counting = _Counting(log)
    try:
        result = build_history(counting, model=MODEL, version=VERSION,  # type: ignore[arg-type]
                               trust=trust, reads=reads)
    finally:
        reader.set_progress_handler(None, 1)
    assert steps[0] > 0  # the handler saw the history's statements
    return counting.rows, counting.queries, steps[0], result.history


def _untimed(value: Any) -> Any:
    """``value`` without the entries' append times (two logs written at different moments)."""
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k != "time"}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def test_work_does_not_grow_with_earlier_decisions(tmp_path, keys, trust):
    """At 10 and 1,000 earlier decisions the packs' history reads the same rows, no more steps."""
    reads = frozenset({"approvals", "evidence"})
    small, large = (AuditLog.open(f"sqlite:///{tmp_path / f'{n}.db'}") for n in (10, 1000))
    representative(small, keys, decisions=10)
    representative(large, keys, decisions=1000)
    rows_s, queries_s, steps_s, hist_s = _work(small, trust, reads)
    rows_l, queries_l, steps_l, hist_l = _work(large, trust, reads)
    assert (rows_s, queries_s) == (rows_l, queries_l)
    # Index seeks, not scans: the database's own work does not grow either.
    assert steps_l <= steps_s + 20
    assert _untimed(hist_s) == _untimed(hist_l) and "decisions" not in hist_l


def test_a_log_made_before_the_indexes_gains_them_when_opened_to_write(tmp_path):
    """Opening an older log (without the history indexes) for writing adds them."""
    path = tmp_path / "old.db"
    AuditLog.open(f"sqlite:///{path}").close()
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_audit_entries_subject_type")
        conn.exec_driver_sql("DROP INDEX ix_audit_entries_version_type")

    def indexes() -> set[str]:
        with engine.connect() as conn:
            return {ix["name"] for ix in sa.inspect(conn).get_indexes("audit_entries")}

    assert "ix_audit_entries_version_type" not in indexes()
    AuditLog.open(f"sqlite:///{path}", create=False).close()
    assert "ix_audit_entries_version_type" not in indexes()
    AuditLog.open(f"sqlite:///{path}").close()
    assert {"ix_audit_entries_subject_type", "ix_audit_entries_version_type"} <= indexes()
    engine.dispose()


def _reading_decisions(folder: Path) -> Path:
    """The built-in packs with the SLO pack's first message also reading history.decisions."""
    import shutil

    shutil.copytree(REPO / "policies", folder, ignore=shutil.ignore_patterns("tests"))
    slo = folder / "slo" / "slo.yaml"
    slo.write_text(slo.read_text().replace(
        "message: >", "message: >\n        string(size(history.decisions)) + ", 1))
    return folder


def test_gate_records_the_lists_its_policies_read_and_replays(tmp_path):
    """The gate's recorded history holds decisions only when a rule reads them; both replay."""
    from policyengine.gate import gate
    from policyengine.replay import replay_all
    from tests.policyengine.replaylog import T0, card, open_engine

    packs = open_engine(tmp_path / "packs")
    first = gate(packs, card("1.0.0"), "staging", "promote", now=T0)
    second = gate(packs, card("1.0.0"), "staging", "promote", now=T0)
    recorded = packs.log.get(second.seq).payload["history"]
    assert "decisions" not in recorded and "approvals" in recorded
    assert [r.reproduced for r in replay_all(packs.log)] == [True, True]

    custom = _reading_decisions(tmp_path / "custom-policies")
    reader = open_engine(tmp_path / "reader", policies=[str(custom)])
    gate(reader, card("1.0.0"), "staging", "promote", now=T0)
    again = gate(reader, card("1.0.0"), "staging", "promote", now=T0)
    seen = reader.log.get(again.seq).payload["history"]["decisions"]
    assert [d["decision"] for d in seen] == [first.decision["decision"]]
    assert [r.reproduced for r in replay_all(reader.log)] == [True, True]
    packs.close()
    reader.close()


def test_whatif_does_not_guess_a_list_the_recorded_history_lacks(tmp_path):
    """Policies reading history.decisions are not tried on a history recorded without them."""
    from policyengine.gate import gate
    from policyengine.promote import promote
    from policyengine.whatif import whatif
    from tests.policyengine.replaylog import T0, card, open_engine

    engine = open_engine(tmp_path / "log")
    decided = gate(engine, card("1.0.0"), "staging", "promote", now=T0)
    assert decided.allow
    data = card("1.0.0")
    promote(engine, model=data["model"]["name"], version="1.0.0",
            digest=data["model"]["artifact_digest"], stage="staging", actor="ci-bot", now=T0)
    builtin = compile_policies(load_policies([REPO / "policies"]))
    custom = compile_policies(load_policies([_reading_decisions(tmp_path / "p")]))
    same = whatif(engine.log, builtin, "staging").rows
    assert [row.proposed for row in same] == ["allow"]
    [row] = whatif(engine.log, custom, "staging").rows
    assert row.proposed is None and "history.decisions" in str(row.note)
    engine.close()


def test_a_gate_reads_the_whole_history_in_one_read_transaction(tmp_path, monkeypatch):
    """Every list of a decision's history comes from one snapshot of the log: one read
    transaction, however many entry types the history reads."""
    import policyengine.gate as gate_module
    from tests.policyengine.replaylog import T0, card, open_engine

    engine = open_engine(tmp_path / "one")
    gate_module.gate(engine, card("1.0.0"), "staging", "promote", now=T0)
    opened: list[bool] = []
    original = engine.log.store.db.reading

    def counting(**kwargs: Any) -> Any:
        opened.append(bool(kwargs.get("snapshot")))
        return original(**kwargs)

    real_history = gate_module._history

    def history(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(engine.log.store.db, "reading", counting)
        try:
            return real_history(*args, **kwargs)
        finally:
            monkeypatch.setattr(engine.log.store.db, "reading", original)

    monkeypatch.setattr(gate_module, "_history", history)
    result = gate_module.gate(engine, card("1.0.0"), "staging", "promote", now=T0)
    assert "approvals" in engine.log.get(result.seq).payload["history"]
    assert opened == [True]
    engine.close()
