"""Tests for audit/store.py and audit/tree.py: tables, opening, stored Merkle nodes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import merkle
from audit.errors import LogUnavailableError, StorageError
from audit.log import AuditLog
from audit.store import mask_url, open_store
from audit.tree import extend

from .conftest import fill


def test_open_creates_parent_directory_and_wal(tmp_path: Path) -> None:
    """Opening sqlite:///a/b/c.db creates the directories and a WAL-mode database."""
    path = tmp_path / "a" / "b" / "audit.db"
    store = open_store(f"sqlite:///{path}")
    store.close()
    assert path.is_file()
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_bad_url_is_log_unavailable() -> None:
    """An unknown URL scheme raises LogUnavailableError naming the fix."""
    with pytest.raises(LogUnavailableError, match="expected a sqlite:/// or postgresql"):
        open_store("mysql://user:pw@host/db")


def test_unwritable_sqlite_path_is_log_unavailable(tmp_path: Path) -> None:
    """A SQLite path under a regular file cannot be created and says so."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LogUnavailableError, match="cannot create"):
        open_store(f"sqlite:///{blocker / 'sub' / 'audit.db'}")


def test_not_a_database_file_is_reported(tmp_path: Path) -> None:
    """A file that is not SQLite raises a StorageError naming the URL."""
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError, match=r"junk\.db"):
        open_store(f"sqlite:///{path}")


def test_unreachable_postgres_masks_password() -> None:
    """An unreachable server raises LogUnavailableError with the password masked."""
    with pytest.raises(LogUnavailableError) as info:
        open_store("postgresql+psycopg://user:s3cret@127.0.0.1:1/db?connect_timeout=2")
    assert "s3cret" not in str(info.value)
    assert "***" in str(info.value)


def test_mask_url_hides_password_only() -> None:
    """mask_url keeps user and host and replaces the password."""
    assert mask_url("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"


def test_reopen_keeps_entries_and_head(log: AuditLog, sqlite_url: str) -> None:
    """A second open of the same file sees the same size and root."""
    fill(log, 10)
    again = AuditLog.open(sqlite_url)
    assert again.size() == 10
    assert again.root() == log.root()


def test_nodes_are_persisted_for_complete_subtrees(log: AuditLog) -> None:
    """After 8 appends the stored level-3 node equals the root of 8 leaves."""
    fill(log, 8)
    leaves = [e.leaf_hash for e in log.store.iter_entries()]
    nodes = log.store.fetch_nodes({(3, 0), (1, 3), (0, 5), (4, 0)})
    assert nodes[(3, 0)] == merkle.root_from_leaf_hashes(leaves)
    assert nodes[(1, 3)] == merkle.node_hash(leaves[6], leaves[7])
    assert nodes[(0, 5)] == leaves[5]
    assert (4, 0) not in nodes


def test_iter_entries_streams_in_batches(log: AuditLog) -> None:
    """iter_entries returns every entry in seq order across batch boundaries."""
    fill(log, 4500)
    seqs = [e.seq for e in log.store.iter_entries()]
    assert seqs == list(range(4500))
    assert [e.seq for e in log.store.iter_entries(start=4498)] == [4498, 4499]


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=12))
def test_extend_matches_reference_for_any_batching(sizes: list[int]) -> None:
    """Appending leaves in any batch sizes yields nodes equal to the brute-force tree."""
    leaves: list[bytes] = []
    frontier: list[bytes] = []
    nodes: dict[tuple[int, int], bytes] = {}
    for n in sizes:
        new = [merkle.leaf_hash(str(len(leaves) + i).encode()) for i in range(n)]
        frontier, made = extend(len(leaves), frontier, new)
        nodes.update({(lv, i): h for lv, i, h in made})
        leaves.extend(new)
    for (level, index), h in nodes.items():
        span = leaves[index << level : (index + 1) << level]
        assert h == merkle.root_from_leaf_hashes(span)
    expected = sum(len(leaves) >> lv for lv in range(1, len(leaves).bit_length()))
    assert len(nodes) == expected


def test_proofs_from_store_match_reference_up_to_300(log: AuditLog) -> None:
    """Roots, inclusion and consistency proofs from stored nodes equal the reference."""
    fill(log, 300)
    leaves = [e.leaf_hash for e in log.store.iter_entries()]
    tree = log.store.tree
    for n in range(1, 301):
        assert tree.root(n) == merkle.root_from_leaf_hashes(leaves[:n])
        for m in {0, n // 2, n - 1}:
            assert tree.inclusion_proof(m, n) == merkle.inclusion_proof(m, leaves[:n])
        for m in {1, n // 3, n - 1, n}:
            if 0 < m <= n:
                assert tree.consistency_proof(m, n) == merkle.consistency_proof(m, leaves[:n])


def test_proof_reads_few_nodes(log: AuditLog) -> None:
    """An inclusion proof at size 1000 fetches O(log n) nodes, never every leaf."""
    fill(log, 1000)
    seen: list[int] = []
    fetch = log.store.fetch_nodes

    def counting(coords: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        seen.append(len(coords))
        return fetch(coords)

    log.store.tree._fetch = counting
    log.store.tree.inclusion_proof(517, 1000)
    log.store.tree.consistency_proof(333, 1000)
    assert sum(seen) <= 2 * 20
    assert len(seen) == 2


def test_missing_node_is_a_storage_error(log: AuditLog) -> None:
    """A deleted node row makes a proof fail loudly instead of returning garbage."""
    fill(log, 16)
    with log.store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_nodes WHERE level = 2")
    with pytest.raises(StorageError, match=r"node \(level 2"):
        log.inclusion_proof(0, 16)


def test_open_existing_log_needs_no_write_lock(log: AuditLog, sqlite_url: str) -> None:
    """Opening an initialised log only reads, so it is not blocked by a writer."""
    import threading

    fill(log, 3)
    path = sqlite_url.split(":///", 1)[1]
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    opened: list[int] = []
    worker = threading.Thread(target=lambda: opened.append(AuditLog.open(sqlite_url).size()))
    worker.start()
    worker.join(timeout=10)
    done_while_locked = list(opened)
    blocker.execute("ROLLBACK")
    blocker.close()
    worker.join()
    assert done_while_locked == [3]
