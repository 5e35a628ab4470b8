"""One read transaction for many reads: AuditLog.snapshot / Store.snapshot."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from audit import merkle
from audit.keys import Signer
from audit.log import AuditLog
from tests.audit.conftest import fill


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    return sqlite_url if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))


@pytest.fixture
def pair(url: str, signer: Signer) -> Iterator[tuple[AuditLog, AuditLog]]:
    """Two handles on one log: a reader and a writer (another process, in effect)."""
    reader, writer = AuditLog.open(url, signer=signer), AuditLog.open(url, signer=signer)
    yield reader, writer
    reader.close()
    writer.close()


def _count(log: AuditLog) -> int:
    return sum(1 for _ in log.query(name="model"))


def test_reads_in_a_snapshot_do_not_see_appends_made_meanwhile(pair):
    """Every read inside the block sees the log as its first read did; after it, the new state."""
    reader, writer = pair
    fill(writer, 3)
    with reader.snapshot():
        assert _count(reader) == 3
        fill(writer, 2, start=3)
        assert _count(reader) == 3
        assert len(list(reader.query(name="model", types=["decision"]))) == 3
    assert _count(reader) == 5


def test_without_a_snapshot_each_read_sees_the_latest_state(pair):
    """The contrast: outside a snapshot, the second read sees the new entries."""
    reader, writer = pair
    fill(writer, 3)
    assert _count(reader) == 3
    fill(writer, 2, start=3)
    assert _count(reader) == 5


def test_a_snapshot_is_one_read_transaction_and_nests(pair, monkeypatch):
    """Any number of reads, nested blocks included, open one read transaction."""
    reader, writer = pair
    fill(writer, 4)
    opened: list[bool] = []
    original = reader.store.db.reading

    def counting(**kwargs: Any) -> Any:
        opened.append(bool(kwargs.get("snapshot")))
        return original(**kwargs)

    monkeypatch.setattr(reader.store.db, "reading", counting)
    with reader.snapshot():
        _count(reader)
        with reader.snapshot():
            reader.get(2)
            _count(reader)
        reader.size()
    assert opened == [True]


def test_a_snapshot_belongs_to_its_thread(pair):
    """Another thread's reads are not part of this thread's snapshot."""
    reader, writer = pair
    fill(writer, 3)
    seen: list[int] = []
    with reader.snapshot():
        assert _count(reader) == 3
        fill(writer, 1, start=3)
        thread = threading.Thread(target=lambda: seen.append(_count(reader)))
        thread.start()
        thread.join()
        assert _count(reader) == 3
    assert seen == [4]


def test_an_append_inside_a_snapshot_commits_and_is_seen_after_it(pair):
    """Writing while a snapshot is open works on both backends (another connection)."""
    reader, _writer = pair
    fill(reader, 2)
    with reader.snapshot():
        assert _count(reader) == 2
        reader.append("decision", {"name": "model", "version": "9"}, "ci", {"i": 9})
        assert _count(reader) == 2
    assert _count(reader) == 3


def test_an_error_inside_a_snapshot_propagates_as_raised_and_reads_go_on(pair):
    """The caller's own error leaves the block unchanged (not a storage error); the
    handle reads on afterwards, in a snapshot or not."""
    reader, writer = pair
    fill(writer, 2)
    with pytest.raises(KeyError, match="raised by the caller"), reader.snapshot():
        assert _count(reader) == 2
        raise KeyError("raised by the caller")
    with reader.snapshot():
        assert _count(reader) == 2
    leaf = bytes.fromhex(reader.get(1).leaf_hash)
    merkle.verify_inclusion(leaf, 1, 2, reader.inclusion_proof(1, 2), reader.root(2))
    assert _count(reader) == 2
