"""Pure RFC 9162 §2.1 Merkle tree hashing, proofs and proof verification.

Owns the hash domain separation of the log (leaf and interior node prefixes),
the Merkle Tree Hash (MTH), inclusion proofs (PATH), consistency proofs
(PROOF), their verification, and :class:`CompactRange`, a streaming tree hash
that keeps one hash per set bit of the tree size (O(log n) memory).

Everything here takes and returns bytes and ints and does no I/O. Proofs over
stored nodes (so a log of 1,000,000 entries reads O(log n) rows, never every
leaf) are computed by :mod:`audit.tree` from the same node coordinates that
:meth:`CompactRange.append` reports: node ``(level, index)`` is the hash of
the perfect subtree over leaves ``[index * 2**level, (index + 1) * 2**level)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from audit.errors import InvalidProofError

__all__ = [
    "HASH_SIZE",
    "CompactRange",
    "consistency_proof",
    "empty_root",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

# RFC 9162 §2.1.1: domain separation between leaves and interior nodes.
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

HASH_SIZE = 32
"""Length in bytes of every hash in the tree (SHA-256)."""

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """Return the leaf hash SHA-256(0x00 || data) (RFC 9162 §2.1.1)."""
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the interior node hash SHA-256(0x01 || left || right) (RFC 9162 §2.1.1)."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def empty_root() -> bytes:
    """Return MTH({}) = SHA-256() of the empty string (RFC 9162 §2.1.1)."""
    return _sha256(b"").digest()


def _split(n: int) -> int:
    """RFC 9162 §2.1.1: the largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle Tree Hash of a list of leaf hashes (RFC 9162 §2.1.1)."""
    cr = CompactRange()
    for h in leaf_hashes:
        cr.append(h)
    return cr.root()


def _mth(hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH over already hashed leaves ``hashes[lo:hi]`` (hi > lo)."""
    if hi - lo == 1:
        return hashes[lo]
    k = _split(hi - lo)
    return node_hash(_mth(hashes, lo, lo + k), _mth(hashes, lo + k, hi))


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Return PATH(index, D[n]) for a tree of the given leaf hashes (RFC 9162 §2.1.3.1).

    Args:
        index: leaf index, 0 <= index < len(leaf_hashes).
        leaf_hashes: every leaf hash of the tree, in order.

    Returns:
        The audit path, from the leaf's sibling up to the root's child.

    Raises:
        InvalidProofError: ``index`` is out of range.
    """
    n = len(leaf_hashes)
    if not 0 <= index < n:
        raise InvalidProofError(f"leaf index out of range: expected 0 <= index < {n}, got {index}")
    path: list[bytes] = []
    lo, hi = 0, n
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(_mth(leaf_hashes, lo + k, hi))
            hi = lo + k
        else:
            path.append(_mth(leaf_hashes, lo, lo + k))
            lo += k
    path.reverse()
    return path


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Return PROOF(old_size, D[n]) (RFC 9162 §2.1.4.1); empty when old_size is 0 or n.

    Args:
        old_size: size of the earlier tree, 0 <= old_size <= len(leaf_hashes).
        leaf_hashes: every leaf hash of the newer tree, in order.

    Raises:
        InvalidProofError: ``old_size`` is out of range.
    """
    n = len(leaf_hashes)
    if not 0 <= old_size <= n:
        raise InvalidProofError(
            f"consistency proof sizes out of order: expected 0 <= {old_size} <= {n}"
        )
    if old_size in (0, n):
        return []
    # SUBPROOF(m, D[lo:hi], b), iterated; nodes are collected root-side first.
    proof: list[bytes] = []
    m, lo, hi, complete = old_size, 0, n, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            proof.append(_mth(leaf_hashes, lo + k, hi))
            hi = lo + k
        else:
            proof.append(_mth(leaf_hashes, lo, lo + k))
            m, lo, complete = m - k, lo + k, False
    if not complete:
        proof.append(_mth(leaf_hashes, lo, hi))
    proof.reverse()
    return proof


def _check_hash(what: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise InvalidProofError(
            f"{what} has wrong length: expected {HASH_SIZE} bytes, got {len(value)}"
        )


def _mismatch(what: str, expected: bytes, got: bytes) -> InvalidProofError:
    return InvalidProofError(f"{what} mismatch: expected {expected.hex()}, got {got.hex()}")


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Verify that ``leaf_hash`` is leaf ``index`` of the tree ``root`` (RFC 9162 §2.1.3.2).

    Args:
        leaf_hash: the leaf hash, SHA-256(0x00 || entry).
        index: the leaf index claimed for it.
        size: the tree size the root commits to.
        proof: the inclusion path, leaf side first.
        root: the trusted tree root of that size.

    Raises:
        InvalidProofError: the proof does not verify; the message says why.
    """
    if not 0 <= index < size:
        raise InvalidProofError(
            f"leaf index out of range: expected 0 <= index < {size}, got {index}"
        )
    _check_hash("leaf hash", leaf_hash)
    _check_hash("root", root)
    fn, sn, r = index, size - 1, leaf_hash
    for i, p in enumerate(proof):
        _check_hash(f"inclusion proof node {i}", p)
        # (4a) a proof longer than the path to the root cannot verify.
        if sn == 0:
            raise InvalidProofError(
                f"inclusion proof has wrong size: expected {i} nodes, got {len(proof)}"
            )
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProofError(
            f"inclusion proof has wrong size: expected more than {len(proof)} nodes, "
            f"got {len(proof)}"
        )
    if r != root:
        raise _mismatch("inclusion proof root", root, r)


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """Verify that ``new_root`` extends ``old_root`` append-only (RFC 9162 §2.1.4.2).

    Equal sizes need an empty proof and equal roots. Every tree extends the
    empty tree: from size 0 the proof is empty (RFC 9162 §2.1.4.1, PROOF(0, D[n])
    is empty) and the old root must be MTH({}), so a log whose first checkpoint
    was signed while it was empty can grow past it.

    Args:
        old_size: size of the earlier tree (>= 0).
        new_size: size of the later tree (>= old_size).
        proof: the consistency proof PROOF(old_size, D[new_size]).
        old_root: trusted root of the earlier tree.
        new_root: trusted root of the later tree.

    Raises:
        InvalidProofError: the proof does not verify; the message says why.
    """
    if not 0 <= old_size <= new_size:
        raise InvalidProofError(
            f"consistency sizes out of order: expected 0 <= {old_size} <= {new_size}"
        )
    if old_size == 0:
        _verify_from_empty(new_size, proof, old_root, new_root)
        return
    if old_size == new_size:
        if proof:
            raise InvalidProofError(
                f"consistency proof has wrong size: expected 0 nodes, got {len(proof)}"
            )
        if old_root != new_root:
            raise _mismatch("root of equal-size trees", old_root, new_root)
        return
    _check_hash("old root", old_root)
    _check_hash("new root", new_root)
    # (1) an empty path never proves two different sizes consistent.
    if not proof:
        raise InvalidProofError("consistency proof has wrong size: expected nodes, got 0")
    for i, c in enumerate(proof):
        _check_hash(f"consistency proof node {i}", c)
    path = list(proof)
    # (2) when old_size is a power of two its root is the first proof node.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fr, sr = _consistency_roots(old_size - 1, new_size - 1, path)
    if fr != old_root:
        raise _mismatch("consistency proof old root", old_root, fr)
    if sr != new_root:
        raise _mismatch("consistency proof new root", new_root, sr)


def _verify_from_empty(
    new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """RFC 9162 §2.1.4: the empty tree is a prefix of every tree; its proof is empty."""
    if proof:
        raise InvalidProofError(
            f"consistency proof has wrong size: expected 0 nodes from size 0, got {len(proof)}"
        )
    if old_root != empty_root():
        raise _mismatch("root of the empty tree", empty_root(), old_root)
    _check_hash("new root", new_root)
    if new_size == 0 and new_root != old_root:
        raise _mismatch("root of equal-size trees", old_root, new_root)


def _consistency_roots(fn: int, sn: int, path: list[bytes]) -> tuple[bytes, bytes]:
    """Steps 4-7 of RFC 9162 §2.1.4.2: the two roots a consistency path implies."""
    # (4) skip the levels where the old tree's last leaf is a right child.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise InvalidProofError(
                f"consistency proof has wrong size: got {len(path)} nodes, too many"
            )
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProofError(f"consistency proof has wrong size: got {len(path)} nodes, too few")
    return fr, sr


class CompactRange:
    """Streaming Merkle Tree Hash over appended leaf hashes (RFC 9162 §2.1.1).

    Holds the roots of the perfect subtrees that make up the tree, largest
    first: one hash per set bit of ``size``, so memory is O(log n). Subtree
    ``hashes[i]`` is node ``(level, index)`` in the coordinates of
    :mod:`audit.tree`, with levels given by the set bits of ``size`` from the
    highest down and ``index = (size >> level) - 1``.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        """Start empty, or resume from a stored range of a tree of ``size`` leaves.

        Raises:
            InvalidProofError: ``hashes`` does not hold one hash per set bit of ``size``.
        """
        if size < 0 or len(hashes) != size.bit_count():
            raise InvalidProofError(
                f"compact range does not match size {size}: expected {max(size, 0).bit_count()} "
                f"hashes, got {len(hashes)}"
            )
        self._size = size
        self._hashes = list(hashes)

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def hashes(self) -> list[bytes]:
        """Roots of the perfect subtrees, largest first (a copy)."""
        return list(self._hashes)

    def append(self, leaf: bytes) -> None:
        """Append one leaf hash, merging completed perfect subtrees."""
        n = self._size
        hashes = self._hashes
        # Each trailing one bit of the old size is a perfect subtree of that
        # height waiting for a right sibling of the same height.
        while n & 1:
            leaf = node_hash(hashes.pop(), leaf)
            n >>= 1
        hashes.append(leaf)
        self._size += 1

    def root(self) -> bytes:
        """Return MTH(D[0:size]): the right fold of the perfect subtree roots."""
        hashes = self._hashes
        if not hashes:
            return empty_root()
        acc = hashes[-1]
        for h in reversed(hashes[:-1]):
            acc = node_hash(h, acc)
        return acc
