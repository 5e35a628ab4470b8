"""Tests for audit/merkle.py: RFC 9162 vectors and a brute-force reference."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.errors import InvalidProofError
from audit.merkle import (
    CompactRange,
    consistency_proof,
    empty_root,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "merkle"
_REFERENCE = json.loads((VECTORS / "reference_tree.json").read_text())
_MAX_SIZE = 300


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _vector_files(kind: str) -> list[Path]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    assert files, f"no {kind} vectors under {VECTORS}"
    return files


# Brute-force reference, written straight from the RFC 9162 §2.1 definitions.
def _ref_mth(leaves: list[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + _ref_mth(leaves[:k]) + _ref_mth(leaves[k:])).digest()


def _ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*_ref_path(m, leaves[:k]), _ref_mth(leaves[k:])]
    return [*_ref_path(m - k, leaves[k:]), _ref_mth(leaves[:k])]


def _ref_subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if b else [_ref_mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*_ref_subproof(m, leaves[:k], b), _ref_mth(leaves[k:])]
    return [*_ref_subproof(m - k, leaves[k:], False), _ref_mth(leaves[:k])]


def _path_shape(m: int, n: int) -> tuple[str, ...]:
    """Sides of the proof nodes in PATH(m, D[n]): all a verifier's hashing depends on."""
    if n == 1:
        return ()
    k = 1 << ((n - 1).bit_length() - 1)
    return (*_path_shape(m, k), "R") if m < k else (*_path_shape(m - k, n - k), "L")


def _proof_shape(m: int, n: int, b: bool = True) -> tuple[str, ...]:
    """Sides of the nodes in SUBPROOF(m, D[n], b), with "X" for the old subtree root."""
    if m == n:
        return () if b else ("X",)
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return (*_proof_shape(m, k, b), "R")
    return (*_proof_shape(m - k, n - k, False), "L")


def _leaves(n: int) -> list[bytes]:
    return [f"entry-{i}".encode() for i in range(n)]


_DATA = _leaves(_MAX_SIZE)
_HASHES = [leaf_hash(d) for d in _DATA]
_ROOTS = [root_from_leaf_hashes(_HASHES[:n]) for n in range(_MAX_SIZE + 1)]


@pytest.mark.parametrize(
    "path", _vector_files("inclusion"), ids=lambda p: str(p.relative_to(VECTORS))
)
def test_inclusion_vectors(path: Path) -> None:
    """Every transparency-dev inclusion vector verifies or fails as published."""
    v = json.loads(path.read_text())
    proof = [_b64(p) for p in v["proof"] or []]
    args = (_b64(v["leafHash"]), v["leafIdx"], v["treeSize"], proof, _b64(v["root"]))
    if v["wantErr"]:
        with pytest.raises(InvalidProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize(
    "path", _vector_files("consistency"), ids=lambda p: str(p.relative_to(VECTORS))
)
def test_consistency_vectors(path: Path) -> None:
    """Every transparency-dev consistency vector verifies or fails as published."""
    v = json.loads(path.read_text())
    proof = [_b64(p) for p in v["proof"] or []]
    args = (v["size1"], v["size2"], proof, _b64(v["root1"]), _b64(v["root2"]))
    if v["wantErr"]:
        with pytest.raises(InvalidProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def test_reference_tree_roots_and_nodes() -> None:
    """Roots of sizes 0..8 and every perfect node match the published reference tree."""
    leaves = [bytes.fromhex(x) for x in _REFERENCE["leaf_inputs_hex"]]
    hashes = [leaf_hash(x) for x in leaves]
    roots = [root_from_leaf_hashes(hashes[:n]).hex() for n in range(len(leaves) + 1)]
    assert roots == _REFERENCE["root_hashes_hex"]
    level = hashes
    for want in _REFERENCE["node_hashes_hex"]:
        assert [h.hex() for h in level] == want
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]


def test_reference_tree_proofs_verify() -> None:
    """Proofs generated for the published tree verify against its published roots."""
    hashes = [leaf_hash(bytes.fromhex(x)) for x in _REFERENCE["leaf_inputs_hex"]]
    roots = [bytes.fromhex(x) for x in _REFERENCE["root_hashes_hex"]]
    for n in range(1, 9):
        for i in range(n):
            verify_inclusion(hashes[i], i, n, inclusion_proof(i, hashes[:n]), roots[n])
        for m in range(1, n + 1):
            verify_consistency(m, n, consistency_proof(m, hashes[:n]), roots[m], roots[n])


def test_empty_root_is_sha256_of_nothing() -> None:
    """MTH of the empty list is SHA-256 of the empty string (RFC 9162 §2.1.1)."""
    assert empty_root().hex() == _REFERENCE["root_hashes_hex"][0]
    assert CompactRange().root() == empty_root()


def test_roots_match_brute_force_for_all_sizes() -> None:
    """The streaming root equals the recursive RFC definition for every size up to 300."""
    for n in range(_MAX_SIZE + 1):
        assert _ROOTS[n] == _ref_mth(_DATA[:n]), n


def _all_paths(hashes: list[bytes]) -> list[list[bytes]]:
    """Every leaf's audit path, from the level-by-level tree (odd last nodes move up)."""
    paths: list[list[bytes]] = [[] for _ in hashes]
    positions = list(range(len(hashes)))
    level = list(hashes)
    while len(level) > 1:
        for leaf, pos in enumerate(positions):
            if pos ^ 1 < len(level):
                paths[leaf].append(level[pos ^ 1])
            positions[leaf] = pos >> 1
        pairs = range(0, len(level) - 1, 2)
        level = [node_hash(level[i], level[i + 1]) for i in pairs] + level[len(level) & ~1 :]
    return paths


def test_every_inclusion_proof_matches_reference_and_verifies() -> None:
    """For all sizes 1..300 every leaf's path verifies and equals PATH() (sampled above 48)."""
    rng = random.Random(6962)
    for n in range(1, _MAX_SIZE + 1):
        leaves = _HASHES[:n]
        paths = _all_paths(leaves)
        sample = range(n) if n <= 48 else {0, n - 1, *rng.sample(range(n), 4)}
        for m in sample:
            assert inclusion_proof(m, leaves) == paths[m] == _ref_path(m, _DATA[:n]), (m, n)
        for m in range(n):
            verify_inclusion(leaves[m], m, n, paths[m], _ROOTS[n])


def test_consistency_proofs_match_reference_and_verify() -> None:
    """For every n up to 300, consistency proofs equal PROOF() and verify (sampled m)."""
    rng = random.Random(9162)
    for n in range(1, _MAX_SIZE + 1):
        olds = set(range(1, n + 1)) if n <= 64 else {1, n - 1, n, *rng.sample(range(1, n), 8)}
        for m in sorted(olds):
            proof = consistency_proof(m, _HASHES[:n])
            if m < n:
                assert proof == _ref_subproof(m, _DATA[:n], True), (m, n)
            verify_consistency(m, n, proof, _ROOTS[m], _ROOTS[n])


def _flip(data: bytes, bit: int) -> bytes:
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, _MAX_SIZE).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))),
    st.data(),
)
def test_inclusion_bit_flip_or_wrong_size_fails(nm: tuple[int, int], data: st.DataObject) -> None:
    """Any bit flip in proof, root or leaf, or a wrong size or index, fails verification."""
    n, m = nm
    proof = inclusion_proof(m, _HASHES[:n])
    leaf, root = _HASHES[m], _ROOTS[n]
    target = data.draw(
        st.sampled_from(
            ["leaf", "root", "proof", "size", "index"]
            if proof
            else ["leaf", "root", "size", "index"]
        )
    )
    bit = data.draw(st.integers(0, 255))
    if target == "leaf":
        leaf = _flip(leaf, bit)
    elif target == "root":
        root = _flip(root, bit)
    elif target == "proof":
        i = data.draw(st.integers(0, len(proof) - 1))
        proof = [*proof[:i], _flip(proof[i], bit), *proof[i + 1 :]]
    elif target == "size":
        wrong = data.draw(st.integers(1, 2 * _MAX_SIZE).filter(lambda x: x != n))
        # A size with the same proof shape hashes identically, so only a size
        # that changes the shape can be detected from the proof alone.
        if wrong > m and _path_shape(m, wrong) == _path_shape(m, n):
            verify_inclusion(leaf, m, wrong, proof, root)
            return
        n = wrong
    else:
        m = data.draw(st.integers(0, n - 1).filter(lambda x: x != m)) if n > 1 else m + 1
    with pytest.raises(InvalidProofError):
        verify_inclusion(leaf, m, n, proof, root)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(2, _MAX_SIZE).flatmap(lambda n: st.tuples(st.integers(1, n - 1), st.just(n))),
    st.data(),
)
def test_consistency_bit_flip_or_wrong_size_fails(mn: tuple[int, int], data: st.DataObject) -> None:
    """Any bit flip in the proof or either root, or a wrong size, fails verification."""
    m, n = mn
    proof = consistency_proof(m, _HASHES[:n])
    old, new = _ROOTS[m], _ROOTS[n]
    target = data.draw(st.sampled_from(["old", "new", "proof", "old_size", "new_size"]))
    bit = data.draw(st.integers(0, 255))
    if target == "old":
        old = _flip(old, bit)
    elif target == "new":
        new = _flip(new, bit)
    elif target == "proof":
        i = data.draw(st.integers(0, len(proof) - 1))
        proof = [*proof[:i], _flip(proof[i], bit), *proof[i + 1 :]]
    else:
        wrong_m, wrong_n = m, n
        if target == "old_size":
            wrong_m = data.draw(st.integers(1, n).filter(lambda x: x != m))
        else:
            wrong_n = data.draw(st.integers(m, 2 * _MAX_SIZE).filter(lambda x: x != n))
        # As for inclusion: sizes with the same proof shape are indistinguishable.
        if wrong_m < wrong_n and _proof_shape(wrong_m, wrong_n) == _proof_shape(m, n):
            verify_consistency(wrong_m, wrong_n, proof, old, new)
            return
        m, n = wrong_m, wrong_n
    with pytest.raises(InvalidProofError):
        verify_consistency(m, n, proof, old, new)


@given(st.lists(st.binary(max_size=8), max_size=80))
def test_append_only_growth_stays_consistent(data: list[bytes]) -> None:
    """Each prefix of a growing log is consistent with every later prefix."""
    hashes = [leaf_hash(d) for d in data]
    cr = CompactRange()
    roots = [cr.root()]
    for h in hashes:
        cr.append(h)
        roots.append(cr.root())
    for m in range(1, len(hashes) + 1, 3):
        n = len(hashes)
        verify_consistency(m, n, consistency_proof(m, hashes), roots[m], roots[n])


def test_compact_range_resumes_from_its_hashes() -> None:
    """A compact range rebuilt from (size, hashes) continues to the same roots."""
    cr = CompactRange()
    for h in _HASHES[:77]:
        cr.append(h)
    resumed = CompactRange(cr.size, cr.hashes)
    assert len(cr.hashes) == (77).bit_count()
    for h in _HASHES[77:]:
        resumed.append(h)
    assert resumed.root() == _ROOTS[_MAX_SIZE]


def test_compact_range_refuses_wrong_hash_count() -> None:
    """A stored range with the wrong number of hashes for its size is refused."""
    with pytest.raises(InvalidProofError, match="expected 2 hashes, got 1"):
        CompactRange(3, [b"\x00" * 32])


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            (b"\x00" * 31, 0, 1, [], b"\x00" * 32),
            "leaf hash has wrong length: expected 32 bytes, got 31",
        ),
        ((b"\x00" * 32, 1, 1, [], b"\x00" * 32), "expected 0 <= index < 1, got 1"),
        ((_HASHES[0], 0, 2, [], _ROOTS[2]), "wrong size"),
        ((_HASHES[0], 0, 1, [_HASHES[1]], _ROOTS[1]), "wrong size"),
        ((_HASHES[0], 0, 1, [], _ROOTS[2]), f"expected {_ROOTS[2].hex()}, got {_HASHES[0].hex()}"),
    ],
)
def test_inclusion_messages_say_what_was_expected(args: tuple, fragment: str) -> None:
    """Inclusion failures name what was expected and what was found."""
    with pytest.raises(InvalidProofError, match=fragment):
        verify_inclusion(*args)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ((4, 3, [], _ROOTS[3], _ROOTS[3]), "expected 0 <= 4 <= 3"),
        ((0, 3, [_HASHES[0]], _ROOTS[0], _ROOTS[3]), "expected 0 nodes from size 0, got 1"),
        ((0, 3, [], _ROOTS[1], _ROOTS[3]), f"expected {_ROOTS[0].hex()}, got {_ROOTS[1].hex()}"),
        ((0, 0, [], _ROOTS[0], _ROOTS[1]), f"expected {_ROOTS[0].hex()}, got {_ROOTS[1].hex()}"),
        ((3, 3, [_HASHES[0]], _ROOTS[3], _ROOTS[3]), "expected 0 nodes, got 1"),
        ((3, 5, [], _ROOTS[3], _ROOTS[5]), "expected nodes, got 0"),
        ((3, 3, [], _ROOTS[3], _ROOTS[4]), f"expected {_ROOTS[3].hex()}, got {_ROOTS[4].hex()}"),
    ],
)
def test_consistency_messages_say_what_was_expected(args: tuple, fragment: str) -> None:
    """Consistency failures name what was expected and what was found."""
    with pytest.raises(InvalidProofError, match=fragment):
        verify_consistency(*args)


def test_consistency_from_the_empty_tree_is_empty_and_verifies() -> None:
    """PROOF(0, D[n]) is empty and verifies for every size, stored or computed (RFC 9162 §2.1.4)."""
    reader = _stored_tree(40)
    for n in range(41):
        assert consistency_proof(0, _HASHES[:n]) == reader.consistency_proof(0, n) == []
        verify_consistency(0, n, [], empty_root(), _ROOTS[n])


def test_consistency_from_the_empty_tree_refuses_a_wrong_new_root_length() -> None:
    """From size 0 the new root must still be a 32-byte hash."""
    with pytest.raises(InvalidProofError, match="new root has wrong length"):
        verify_consistency(0, 5, [], empty_root(), b"\x00" * 31)


def test_proof_generation_refuses_out_of_range() -> None:
    """Generating a proof for a missing leaf or a larger old tree raises."""
    with pytest.raises(InvalidProofError, match="got 5"):
        inclusion_proof(5, _HASHES[:5])
    with pytest.raises(InvalidProofError, match="expected 0 <= 6 <= 5"):
        consistency_proof(6, _HASHES[:5])


def test_stored_node_proofs_equal_in_memory_proofs() -> None:
    """Proofs the store builds from (level, index) nodes equal PATH/PROOF for sizes up to 70."""
    from audit.tree import TreeReader, extend

    nodes: dict[tuple[int, int], bytes] = {}
    frontier: list[bytes] = []
    for size, h in enumerate(_HASHES[:70]):
        nodes[(0, size)] = h
        frontier, new = extend(size, frontier, [h])
        nodes.update({(level, index): node for level, index, node in new})
        cr = CompactRange(size + 1, frontier)
        assert cr.root() == _ROOTS[size + 1]
    reader = TreeReader(lambda coords: {c: nodes[c] for c in coords})
    for n in range(1, 71):
        assert reader.root(n) == _ROOTS[n]
        for m in range(n):
            assert reader.inclusion_proof(m, n) == inclusion_proof(m, _HASHES[:n])
        for m in range(1, n + 1):
            assert reader.consistency_proof(m, n) == consistency_proof(m, _HASHES[:n])


# The same RFC 9162 §2.1 recursions over index ranges of the fixed leaves,
# memoised, so every proof of every size up to 300 can be compared in seconds.
@functools.cache
def _ref_mth_range(lo: int, hi: int) -> bytes:
    n = hi - lo
    if n == 1:
        return hashlib.sha256(b"\x00" + _DATA[lo]).digest()
    k = 1 << ((n - 1).bit_length() - 1)  # largest power of two smaller than n
    left, right = _ref_mth_range(lo, lo + k), _ref_mth_range(lo + k, hi)
    return hashlib.sha256(b"\x01" + left + right).digest()


def _ref_path_range(m: int, lo: int, hi: int) -> list[bytes]:
    n = hi - lo
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*_ref_path_range(m, lo, lo + k), _ref_mth_range(lo + k, hi)]
    return [*_ref_path_range(m - k, lo + k, hi), _ref_mth_range(lo, lo + k)]


def _ref_subproof_range(m: int, lo: int, hi: int, b: bool) -> list[bytes]:
    n = hi - lo
    if m == n:
        return [] if b else [_ref_mth_range(lo, hi)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*_ref_subproof_range(m, lo, lo + k, b), _ref_mth_range(lo + k, hi)]
    return [*_ref_subproof_range(m - k, lo + k, hi, False), _ref_mth_range(lo, lo + k)]


def _stored_tree(size: int):  # type: ignore[no-untyped-def]
    """A TreeReader over the (level, index) nodes the store persists while appending."""
    from audit.tree import TreeReader, extend

    nodes: dict[tuple[int, int], bytes] = {}
    frontier: list[bytes] = []
    for i, h in enumerate(_HASHES[:size]):
        nodes[(0, i)] = h
        frontier, new = extend(i, frontier, [h])
        nodes.update({(level, index): node for level, index, node in new})
    return TreeReader(lambda coords: {c: nodes[c] for c in coords})


def test_memoised_reference_equals_the_plain_recursion() -> None:
    """The range-memoised reference gives the plain recursion's roots and proofs (n <= 40)."""
    for n in range(1, 41):
        assert _ref_mth_range(0, n) == _ref_mth(_DATA[:n])
        for m in range(n):
            assert _ref_path_range(m, 0, n) == _ref_path(m, _DATA[:n])
        for m in range(1, n):
            assert _ref_subproof_range(m, 0, n, True) == _ref_subproof(m, _DATA[:n], True)


def test_every_stored_proof_up_to_300_equals_the_reference() -> None:
    """For every size n <= 300, every inclusion and consistency proof is the RFC's and verifies."""
    reader = _stored_tree(_MAX_SIZE)
    for n in range(1, _MAX_SIZE + 1):
        assert reader.root(n) == _ref_mth_range(0, n) == _ROOTS[n]
        for m in range(n):
            proof = reader.inclusion_proof(m, n)
            assert proof == _ref_path_range(m, 0, n), (m, n)
            verify_inclusion(_HASHES[m], m, n, proof, _ROOTS[n])
        for m in range(1, n + 1):
            proof = reader.consistency_proof(m, n)
            assert proof == (_ref_subproof_range(m, 0, n, True) if m < n else []), (m, n)
            verify_consistency(m, n, proof, _ROOTS[m], _ROOTS[n])
