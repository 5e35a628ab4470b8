"""The audit log on a real PostgreSQL server: same behaviour as SQLite, plus triggers."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from audit import merkle
from audit.cli import main
from audit.errors import RetentionError, StorageError
from audit.export import export_bundle, open_bundle, verify_filtered_bundle
from audit.keys import Signer
from audit.log import AuditLog, InputError
from audit.retention import hold, redact, release
from audit.verify import Verifier

from .conftest import FIXED_TIME, fill

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_log(pg_url: str, signer: Signer) -> Iterator[AuditLog]:
    """An empty audit log in a fresh PostgreSQL database."""
    opened = AuditLog.open(pg_url, signer=signer)
    yield opened
    opened.close()


def _sql(log: AuditLog, statement: str) -> None:
    with log.store.engine.begin() as conn:
        conn.exec_driver_sql(statement)


def test_append_checkpoint_and_proofs(pg_log: AuditLog) -> None:
    """Appends chain, checkpoints sign, and proofs from stored nodes verify."""
    fill(pg_log, 37)
    old = pg_log.checkpoint()
    fill(pg_log, 20, start=37)
    new = pg_log.checkpoint()
    leaves = [e.leaf_hash for e in pg_log.store.iter_entries()]
    assert new.root == merkle.root_from_leaf_hashes(leaves)
    merkle.verify_inclusion(leaves[30], 30, old.size, pg_log.inclusion_proof(30, old.size),
                            old.root)
    merkle.verify_consistency(old.size, new.size, pg_log.consistency_proof(old.size, new.size),
                              old.root, new.root)


def test_query_and_get(pg_log: AuditLog) -> None:
    """Queries filter by subject and page with a cursor on PostgreSQL."""
    fill(pg_log, 12)
    assert [e.seq for e in pg_log.query(name="model", version="1")] == [1, 4, 7, 10]
    assert [e.seq for e in pg_log.query(after_seq=9, limit=1)] == [10]
    assert pg_log.get(5).payload == {"i": 5, "allow": False}
    with pytest.raises(InputError):
        pg_log.get(99)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entries SET actor = 'mallory' WHERE seq = 1",
        "DELETE FROM audit_entries WHERE seq = 2",
        "TRUNCATE audit_entries CASCADE",
        "UPDATE audit_payloads SET content = 'x' WHERE seq = 1",
        "UPDATE audit_payloads SET digest = 'sha256:00' WHERE seq = 1",
        "DELETE FROM audit_payloads WHERE seq = 1",
        "UPDATE audit_checkpoints SET note = 'x'",
        "DELETE FROM audit_checkpoints",
        "UPDATE audit_nodes SET hash = 'x'",
        "UPDATE audit_head SET size = 0",
    ],
)
def test_triggers_refuse_rewriting_history(pg_log: AuditLog, statement: str) -> None:
    """Database triggers refuse UPDATE, DELETE and TRUNCATE of the log's history."""
    fill(pg_log, 4)
    pg_log.checkpoint()
    with pytest.raises(Exception, match=r"append-only|only allow redaction|only grows"):
        _sql(pg_log, statement)
    assert pg_log.size() == 4


def test_trigger_allows_only_the_redaction_change(pg_log: AuditLog) -> None:
    """Setting content NULL with redacted=true is the one payload change allowed."""
    fill(pg_log, 2)
    _sql(pg_log, "UPDATE audit_payloads SET content = NULL, redacted = true WHERE seq = 0")
    assert pg_log.get(0).redacted
    with pytest.raises(Exception, match="only allow redaction"):
        _sql(pg_log, "UPDATE audit_payloads SET redacted = false WHERE seq = 0")


def test_redaction_and_holds(pg_log: AuditLog) -> None:
    """Redaction passes the triggers, logs a tombstone, and legal holds refuse it."""
    seq = pg_log.append("decision", {"name": "m", "version": "1"}, "ci", {"pii": "x"},
                        time=FIXED_TIME).seq
    later = FIXED_TIME + timedelta(days=181)
    hold(pg_log, "m", by="legal", reason="case")
    with pytest.raises(RetentionError):
        redact(pg_log, seq, "dpo", "erasure", now=later)
    release(pg_log, "m", by="legal", reason="closed")
    tomb = redact(pg_log, seq, "dpo", "erasure", now=later)
    assert pg_log.get(seq).redacted
    assert pg_log.get(tomb.seq).envelope["type"] == "redaction"


def test_log_verifies_and_exports(pg_log: AuditLog, signer: Signer, tmp_path: Path) -> None:
    """The Verifier accepts a PostgreSQL log; full and filtered exports verify."""
    fill(pg_log, 25)
    redact(pg_log, 2, "dpo", "erasure", now=FIXED_TIME + timedelta(days=200))
    pg_log.checkpoint()
    report = Verifier([signer.verifier()], pg_log.origin, None).verify(
        pg_log.store.iter_entries(), pg_log.store.iter_checkpoints())
    assert report.ok, report.message
    export_bundle(pg_log, tmp_path / "full")
    bundle = open_bundle(tmp_path / "full")
    assert Verifier([signer.verifier()], bundle.origin, None).verify(
        bundle.iter_entries(), bundle.iter_checkpoints()).ok
    export_bundle(pg_log, tmp_path / "part", name="model", version="0")
    verify_filtered_bundle(open_bundle(tmp_path / "part"), [signer.verifier()])


def test_cli_verify_on_postgres(pg_log: AuditLog, signer: Signer) -> None:
    """audit verify --log postgresql+psycopg://... exits 0."""
    fill(pg_log, 5)
    pg_log.checkpoint()
    out = io.StringIO()
    code = main(["verify", "--log", pg_log.store.url, "--key", signer.vkey],
                stdout=out, stderr=io.StringIO())
    assert code == 0, out.getvalue()


def test_origin_mismatch_refused(pg_url: str) -> None:
    """Reopening a non-empty PostgreSQL log with another origin fails."""
    first = AuditLog.open(pg_url, origin="a.example/log")
    first.append("x", {"name": "m"}, "a", 1)
    with pytest.raises(StorageError, match="has origin"):
        AuditLog.open(pg_url, origin="b.example/log")
    first.close()


def test_open_without_create_on_empty_database(pg_url: str) -> None:
    """create=False on a database without the audit tables is LogUnavailableError."""
    from audit.errors import LogUnavailableError

    with pytest.raises(LogUnavailableError, match="no audit log in this database"):
        AuditLog.open(pg_url, create=False)


def test_failed_append_rolls_back_cleanly(pg_log: AuditLog) -> None:
    """An entry that fails while the sequencer is held leaves no trace; the next one chains."""
    from audit.errors import CanonicalizationError

    first = pg_log.append("x", {"name": "m"}, "a", 1)
    with pytest.raises(CanonicalizationError):
        pg_log.append("x", {"name": "bad \ud800"}, "a", 2)
    second = pg_log.append("x", {"name": "m"}, "a", 3)
    assert (first.seq, second.seq, pg_log.size()) == (0, 1, 2)
    assert pg_log.get(1).envelope["prev"] == first.leaf_hash


def test_commits_stay_durable_when_the_server_default_is_async(
    pg_url: str, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With synchronous_commit=off as the database default, the append barriers (plain
    and signed) and write transactions still commit synchronously (an acknowledged
    append is flushed)."""
    from audit import _postgres

    db = pg_url.rsplit("/", 1)[1]
    log = AuditLog.open(pg_url, signer=signer)
    _sql(log, f'ALTER DATABASE "{db}" SET synchronous_commit = off')
    _sql(log, "CREATE TABLE sc_probe (setting text)")
    log.close()
    # The probe stands in for the barrier: it writes WAL and records the setting
    # its transaction commits with.
    monkeypatch.setattr(_postgres, "_FLUSH_BARRIER",
                        "INSERT INTO sc_probe VALUES (current_setting('synchronous_commit'))")
    log = AuditLog.open(pg_url, signer=signer)
    try:
        assert log.store.db.group_commit
        for i in range(3):
            log.append("decision", {"name": "m"}, "ci", {"i": i})
        log.append_signed("decision", {"name": "m"}, "ci", {"i": 3})  # the signed path's barrier
        with log.store.write() as tx:
            ((in_write,),) = tx.rows("SHOW synchronous_commit")
        with log.store.engine.connect() as conn:
            session = conn.exec_driver_sql("SHOW synchronous_commit").scalar_one()
            barriers = [r for (r,) in conn.exec_driver_sql(
                "SELECT setting FROM sc_probe WHERE setting IS NOT NULL")]
    finally:
        log.close()
    assert session == "off"
    assert in_write == "on"
    assert barriers == ["on"] * 4


def _stored(log: AuditLog) -> tuple[list[tuple[int, bytes, bytes]], list[tuple[int, int, bytes]],
                                     tuple[int, bytes, bytes]]:
    """Entries, Merkle nodes and head exactly as stored."""
    with log.store.engine.connect() as conn:
        entries = [(s, bytes(e), bytes(h)) for s, e, h in conn.exec_driver_sql(
            "SELECT seq, envelope, leaf_hash FROM audit_entries ORDER BY seq")]
        nodes = [(lv, i, bytes(h)) for lv, i, h in conn.exec_driver_sql(
            "SELECT level, idx, hash FROM audit_nodes ORDER BY level, idx")]
        size, last, frontier = conn.exec_driver_sql(
            "SELECT size, last_leaf, frontier FROM audit_head").one()
    return entries, nodes, (size, bytes(last), bytes(frontier))


@pytest.mark.parametrize("group_commit", [True, False], ids=["group-commit", "durable"])
def test_pipelined_appends_store_what_sqlite_stores(
    pg_url: str, sqlite_url: str, group_commit: bool
) -> None:
    """Single appends through the pipelined PostgreSQL transaction store the same
    envelopes, leaf hashes, nodes and head as the same appends on SQLite."""
    pg, lite = AuditLog.open(pg_url), AuditLog.open(sqlite_url)
    try:
        assert pg.store.db.group_commit  # the test role may write the barrier
        pg.store.db.group_commit = group_commit
        for log in (pg, lite):
            for i in range(13):
                log.append("decision", {"name": "m", "version": str(i % 2)}, "ci", {"i": i},
                           time=FIXED_TIME)
        assert _stored(pg) == _stored(lite)
        assert pg.root() == lite.root()
    finally:
        pg.close()
        lite.close()


def test_server_error_in_the_pipeline_writes_nothing(pg_log: AuditLog) -> None:
    """A write the server refuses inside the pipelined append rolls back the entry,
    skips the barrier, and leaves the pooled connection fit for the next append."""
    _sql(pg_log, """
        CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF position('boom' in convert_from(NEW.content, 'UTF8')) > 0 THEN
            RAISE EXCEPTION 'refused by test trigger';
          END IF;
          RETURN NEW;
        END $$""")
    _sql(pg_log, """
        CREATE TRIGGER refuse_boom BEFORE INSERT ON audit_payloads
          FOR EACH ROW EXECUTE FUNCTION refuse_boom()""")
    first = pg_log.append("decision", {"name": "m"}, "ci", {"n": 1})
    with pytest.raises(StorageError, match="refused by test trigger"):
        pg_log.append("decision", {"name": "m"}, "ci", {"n": "boom"})
    second = pg_log.append("decision", {"name": "m"}, "ci", {"n": 2})
    assert (first.seq, second.seq, pg_log.size()) == (0, 1, 2)
    assert pg_log.get(1).envelope["prev"] == first.leaf_hash
    with pg_log.store.engine.connect() as conn:
        assert conn.connection.dbapi_connection.autocommit is False  # type: ignore[union-attr]
