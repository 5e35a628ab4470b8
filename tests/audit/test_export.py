"""Tests for audit/export.py: evidence bundles, full and filtered, read back and verified."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from audit.errors import InvalidSignatureError, StorageError
from audit.export import (
    BundleIntegrityError,
    export_bundle,
    open_bundle,
    verify_filtered_bundle,
)
from audit.keys import Signer, generate_key
from audit.log import AuditLog
from audit.retention import redact

from .conftest import FIXED_TIME, fill


def _rewrite_line(path: Path, index: int, change: dict) -> None:
    lines = path.read_text().splitlines()
    obj = json.loads(lines[index])
    obj.update(change)
    lines[index] = json.dumps(obj)
    path.write_text("\n".join(lines) + "\n")


def test_full_bundle_has_files_manifest_and_keys(log: AuditLog, tmp_path: Path,
                                                 signer: Signer) -> None:
    """A full export writes every entry, payload and checkpoint with sha256 in the manifest."""
    fill(log, 25)
    log.checkpoint()
    manifest = export_bundle(log, tmp_path / "b")
    assert manifest["counts"]["entries"] == 25
    assert manifest["counts"]["checkpoints"] == 1
    assert manifest["filtered"] is False
    assert set(manifest["files"]) >= {"entries.jsonl", "payloads.jsonl", "checkpoints.jsonl"}
    bundle = open_bundle(tmp_path / "b")
    assert bundle.manifest_mismatches() == []
    assert [v.vkey for v in bundle.verifiers] == [signer.vkey]
    stored = list(log.store.iter_entries())
    assert list(bundle.iter_entries()) == stored
    assert list(bundle.iter_checkpoints()) == list(log.store.iter_checkpoints())


def test_full_bundle_verifies_with_verifier(log: AuditLog, tmp_path: Path, signer: Signer) -> None:
    """The Verifier accepts a full bundle, redactions included."""
    from audit.verify import Verifier

    fill(log, 30)
    redact(log, 3, "dpo", "erasure", now=FIXED_TIME + timedelta(days=181))
    log.checkpoint()
    export_bundle(log, tmp_path / "b")
    bundle = open_bundle(tmp_path / "b")
    report = Verifier([signer.verifier()], bundle.origin, None).verify(
        bundle.iter_entries(), bundle.iter_checkpoints())
    assert report.ok, report.message
    assert 3 in report.redacted_seqs


def test_filtered_bundle_carries_proofs_and_verifies(log: AuditLog, tmp_path: Path,
                                                     signer: Signer) -> None:
    """A bundle filtered by name and version holds only those entries, each with a proof."""
    fill(log, 40, name="a")
    fill(log, 10, name="b")
    manifest = export_bundle(log, tmp_path / "b", name="a", version="1")
    assert manifest["filtered"] and manifest["filters"] == {"name": "a", "version": "1"}
    assert manifest["checkpoint_size"] == 50
    bundle = open_bundle(tmp_path / "b")
    seqs = [e.seq for e in bundle.iter_entries()]
    assert seqs == [i for i in range(40) if i % 3 == 1]
    assert [p[0] for p in bundle.iter_proofs()] == seqs
    verify_filtered_bundle(bundle, [signer.verifier()])


def test_filtered_bundle_by_time(log: AuditLog, tmp_path: Path) -> None:
    """since/until select entries by envelope time."""
    for i in range(5):
        log.append("x", {"name": "m"}, "a", i, time=FIXED_TIME + timedelta(days=i))
    export_bundle(log, tmp_path / "b", since=FIXED_TIME + timedelta(days=1),
                  until=FIXED_TIME + timedelta(days=3))
    assert [e.seq for e in open_bundle(tmp_path / "b").iter_entries()] == [1, 2]


def test_filtered_bundle_detects_tampering(log: AuditLog, tmp_path: Path, signer: Signer) -> None:
    """Changed payloads, proofs or leaf hashes in a filtered bundle name the entry."""
    fill(log, 20)
    export_bundle(log, tmp_path / "b", name="model")
    bundle = open_bundle(tmp_path / "b")
    _rewrite_line(tmp_path / "b" / "payloads.jsonl", 4, {"payload_b64": "e30="})
    with pytest.raises(BundleIntegrityError, match="entry 4: payload") as info:
        verify_filtered_bundle(bundle, [signer.verifier()])
    assert info.value.seq == 4
    assert "payloads.jsonl" in bundle.manifest_mismatches()
    export_bundle(log, tmp_path / "c", name="model")
    proof_file = tmp_path / "c" / "proofs.jsonl"
    first = json.loads(proof_file.read_text().splitlines()[7])
    _rewrite_line(proof_file, 7, {"proof": list(reversed(first["proof"]))})
    with pytest.raises(BundleIntegrityError, match="entry 7: inclusion proof"):
        verify_filtered_bundle(open_bundle(tmp_path / "c"), [signer.verifier()])


def test_filtered_bundle_needs_a_known_key(log: AuditLog, tmp_path: Path) -> None:
    """A filtered bundle checked with an unrelated key fails on the checkpoint signature."""
    fill(log, 5)
    export_bundle(log, tmp_path / "b", name="model")
    other = Signer.from_skey(generate_key("other.example/k")[0])
    with pytest.raises(InvalidSignatureError):
        verify_filtered_bundle(open_bundle(tmp_path / "b"), [other.verifier()])


def test_filtered_export_without_checkpoint_or_signer(sqlite_url: str, tmp_path: Path) -> None:
    """Without a signer or any checkpoint a filtered export says to sign one first."""
    unsigned = AuditLog.open(sqlite_url)
    fill(unsigned, 3)
    with pytest.raises(StorageError, match="run `checkpoint` first"):
        export_bundle(unsigned, tmp_path / "b", name="model")


def test_export_refuses_non_empty_directory(log: AuditLog, tmp_path: Path) -> None:
    """Exporting into a non-empty directory is refused (no silent overwrite)."""
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("keep")
    with pytest.raises(StorageError, match="not empty"):
        export_bundle(log, tmp_path / "b")


def test_open_bundle_rejects_non_bundle(tmp_path: Path) -> None:
    """A directory without a manifest is not a bundle."""
    with pytest.raises(StorageError, match="not an evidence bundle"):
        open_bundle(tmp_path)


def test_export_with_signer_covers_every_entry(log: AuditLog, tmp_path: Path) -> None:
    """A full export by a log with a signer signs a checkpoint of the current size first."""
    fill(log, 6)
    manifest = export_bundle(log, tmp_path / "b")
    sizes = [c.size for c in open_bundle(tmp_path / "b").iter_checkpoints()]
    assert sizes == [6] and manifest["counts"]["checkpoints"] == 1
