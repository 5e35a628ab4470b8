"""The SQLite append connection: kept per process, dropped after a failure, not shared by fork."""

from __future__ import annotations

import os
import sqlite3

import pytest

from audit.errors import StorageError
from audit.keys import Signer, generate_key
from audit.log import AuditLog
from audit.verify import Verifier


def _verified(log: AuditLog) -> None:
    key = Signer.from_skey(generate_key("test.example/unused")[0]).verifier()
    report = Verifier([key], log.origin, None).verify(log.store.iter_entries(), [])
    assert report.ok, report.message


def test_appends_reuse_one_connection(log: AuditLog) -> None:
    """Consecutive appends of a process run on the same kept DB-API connection."""
    log.append("decision", {"name": "m"}, "ci", {"n": 0})
    first = log.store.db.queue.connection()
    log.append("decision", {"name": "m"}, "ci", {"n": 1})
    assert log.store.db.queue.connection() is first


def test_append_after_a_failed_transaction_succeeds(log: AuditLog) -> None:
    """A transaction the database refuses drops its connection; the next append works."""
    log.append("decision", {"name": "m"}, "ci", {"n": 0})
    path = log.store.db.path
    assert path is not None
    with sqlite3.connect(path) as db:  # a stray row where the next entry goes
        db.execute("INSERT INTO audit_payloads (seq, digest, content, redacted) "
                   "VALUES (1, 'sha256:x', x'00', 0)")
    with pytest.raises(StorageError, match="UNIQUE"):
        log.append("decision", {"name": "m"}, "ci", {"n": 1})
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM audit_payloads WHERE seq = 1")
    assert log.append("decision", {"name": "m"}, "ci", {"n": 1}).seq == 1
    assert log.size() == 2
    _verified(log)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_forked_child_appends_on_its_own_connection(log: AuditLog) -> None:
    """Parent and a child forked after appending both append: one linear, verified chain."""
    log.append("decision", {"name": "m"}, "parent", {"n": 0})
    pid = os.fork()
    if pid == 0:  # the child: appends, then leaves without running the parent's cleanup
        code = 0
        try:
            for i in range(20):
                log.append("decision", {"name": "m"}, "child", {"n": i})
        except BaseException:
            code = 1
        os._exit(code)
    for i in range(1, 21):
        log.append("decision", {"name": "m"}, "parent", {"n": i})
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert log.size() == 41
    _verified(log)
