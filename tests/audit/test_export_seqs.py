"""export_bundle(seqs=...): exactly the cited entries, each proven against the checkpoint."""

from __future__ import annotations

from audit.export import export_bundle, open_bundle, verify_filtered_bundle

from .conftest import fill


def test_seqs_bundle_holds_exactly_those_entries_and_verifies(log, tmp_path):
    """A bundle of seqs 1 and 5 holds those two, records them as its filter, and verifies."""
    fill(log, 8)
    manifest = export_bundle(log, tmp_path / "b", seqs=[5, 1, 5])
    assert manifest["filtered"] and manifest["filters"] == {"seqs": [1, 5]}
    bundle = open_bundle(tmp_path / "b")
    assert [e.seq for e in bundle.iter_entries()] == [1, 5]
    verify_filtered_bundle(bundle)


def test_seqs_and_name_both_apply(log, tmp_path):
    """seqs narrows a name filter further: only entries matching both are exported."""
    fill(log, 3, name="a")
    fill(log, 3, name="b", start=3)
    export_bundle(log, tmp_path / "b", name="b", seqs=[0, 4])
    assert [e.seq for e in open_bundle(tmp_path / "b").iter_entries()] == [4]
