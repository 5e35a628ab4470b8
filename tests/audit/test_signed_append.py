"""The signed append (entries and one checkpoint, one transaction) on SQLite and PostgreSQL.

On PostgreSQL its reads run at once and its writes go in one message with the
COMMIT (``audit._postgres.DeferredWrites``): these tests hold it to the same
outcomes as SQLite when a check, the signing or the database fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import audit.log
from audit.errors import IntegrityError, StorageError
from audit.keys import Signer, generate_key
from audit.log import AuditLog
from audit.note import open_note, parse_checkpoint
from tests.audit.conftest import fill


@pytest.fixture(params=["sqlite", "postgresql"])
def log(request: pytest.FixtureRequest, sqlite_url: str, signer: Signer) -> Iterator[AuditLog]:
    url = sqlite_url if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))
    opened = AuditLog.open(url, signer=signer)
    yield opened
    opened.close()


def _sizes(log: AuditLog) -> list[int]:
    return [c.size for c in log.store.iter_checkpoints()]


def _sql(log: AuditLog, statement: str) -> None:
    with log.store.engine.begin() as conn:
        conn.exec_driver_sql(statement)


def test_a_signed_append_stores_the_entry_and_a_checkpoint_over_it(log, signer):
    """Entry and checkpoint land together; the checkpoint signs the new root."""
    fill(log, 3)
    log.checkpoint()
    signed = log.append_signed("decision", {"name": "m"}, "ci", {"allow": True})
    assert (signed.appended.seq, signed.checkpoint.size) == (3, 4)
    body, _ = open_note(signed.checkpoint.note, [signer.verifier()])
    assert parse_checkpoint(body).root == log.root(4) == signed.checkpoint.root
    assert _sizes(log) == [3, 4]
    assert log.store.vkeys() == [signer.vkey]


def test_a_failed_signing_writes_nothing(log, monkeypatch):
    """A key that cannot sign leaves neither the entry nor a checkpoint, and the log goes on."""
    fill(log, 2)
    log.checkpoint()

    def broken(*args: object, **kwargs: object) -> str:
        raise OSError("signing device unplugged")

    with monkeypatch.context() as m:
        m.setattr(audit.log, "sign_note", broken)
        with pytest.raises(OSError, match="unplugged"):
            log.append_signed("decision", {"name": "m"}, "ci", {})
    assert (log.size(), _sizes(log)) == (2, [2])
    assert log.append_signed("decision", {"name": "m"}, "ci", {}).appended.seq == 2


def test_a_rewritten_tree_is_refused_before_anything_is_written(log):
    """Stored nodes that no longer match the last checkpoint stop the append (§2.1.4)."""
    fill(log, 8)
    log.checkpoint()
    if log.store.dialect == "postgresql":  # the triggers refuse the rewrite; an attacker's DBA not
        _sql(log, "ALTER TABLE audit_nodes DISABLE TRIGGER audit_nodes_guard")
    _sql(log, "UPDATE audit_nodes SET hash = " + (
        "decode(repeat('00', 32), 'hex')" if log.store.dialect == "postgresql"
        else "zeroblob(32)") + " WHERE level = 3")
    with pytest.raises(IntegrityError, match="differs from its signed checkpoint"):
        log.append_signed("decision", {"name": "m"}, "ci", {})
    assert (log.size(), _sizes(log)) == (8, [8])


def test_after_a_rotation_only_the_new_key_signs(log, signer):
    """The old key is refused (nothing written); the new key's append carries its signature."""
    fill(log, 2)
    new = Signer.from_skey(generate_key("policyengine.local/audit")[0])
    log.rotate_key(new, "admin")
    old = AuditLog.open(log.store.url, signer=signer)
    try:
        with pytest.raises(StorageError, match="not in force"):
            old.append_signed("decision", {"name": "m"}, "ci", {})
    finally:
        old.close()
    size = log.size()
    signed = log.append_signed("decision", {"name": "m"}, "ci", {})
    assert signed.appended.seq == size
    open_note(signed.checkpoint.note, [new.verifier()])


def test_a_database_error_in_the_writes_commits_nothing(log):
    """A write the database refuses (here the checkpoint's, by a trigger) rolls back the
    entries written before it in the same transaction; the log goes on once it is lifted."""
    fill(log, 2)
    log.checkpoint()
    if log.store.dialect == "postgresql":
        _sql(log, "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                  "RAISE EXCEPTION 'checkpoint insert refused'; END $$")
        _sql(log, "CREATE TRIGGER refuse BEFORE INSERT ON audit_checkpoints "
                  "FOR EACH ROW EXECUTE FUNCTION refuse()")
    else:
        _sql(log, "CREATE TRIGGER refuse BEFORE INSERT ON audit_checkpoints "
                  "BEGIN SELECT RAISE(ABORT, 'checkpoint insert refused'); END")
    with pytest.raises(StorageError, match="checkpoint insert refused"):
        log.append_signed("decision", {"name": "m"}, "ci", {})
    assert (log.size(), _sizes(log)) == (2, [2])
    _sql(log, "DROP TRIGGER refuse" + (" ON audit_checkpoints"
                                       if log.store.dialect == "postgresql" else ""))
    assert log.append_signed("decision", {"name": "m"}, "ci", {}).checkpoint.size == 3


def test_on_postgresql_the_sequencer_is_held_for_few_round_trips(pg_url, signer, monkeypatch):
    """A signed append on a log with a checkpoint at its size sends seven statements or
    messages: the pool's liveness check, then (holding the sequencer) the head, the key in
    force, the tree, the last checkpoint, the known keys, and every write with the COMMIT
    and the barrier."""
    import psycopg

    log = AuditLog.open(pg_url, signer=signer)
    fill(log, 5)
    log.checkpoint()
    log.append_signed("decision", {"name": "m"}, "ci", {})  # warm: pool, statements
    sent: list[str] = []
    for name in ("execute", "executemany"):
        original = getattr(psycopg.Cursor, name)

        def counting(self: Any, query: Any, *args: Any, _original: Any = original,
                     **kwargs: Any) -> Any:
            sent.append(str(query)[:40])
            return _original(self, query, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, name, counting)
    log.append_signed("decision", {"name": "m"}, "ci", {})
    monkeypatch.undo()
    assert len(sent) <= 7, sent
    assert log.size() == 7
    log.close()
