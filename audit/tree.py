"""Merkle tree glue between stored nodes and RFC 9162 proofs.

Owns two things:

- :func:`extend`: given the compact range (the hashes of the perfect subtrees
  that make up a tree of ``size`` leaves) and new leaf hashes, return the new
  compact range and every perfect subtree the new leaves complete, so the
  store persists each node once, in the append transaction;
- :class:`TreeReader`: the tree hash, inclusion proofs and consistency proofs
  of RFC 9162 §2.1 computed from stored nodes by coordinate ``(level, index)``
  (node ``(l, i)`` is the perfect subtree over leaves ``[i*2**l, (i+1)*2**l)``).
  A proof reads O(log n) nodes in one batch and never every leaf; it also
  checks that the stored tree extends a signed one before a new checkpoint
  is signed (§2.1.4).

It does no I/O itself: the store passes a ``fetch`` callable. Hashing is
:mod:`audit.merkle` (``node_hash``); verification lives there too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from audit.errors import IntegrityError, InvalidProofError, StorageError
from audit.merkle import node_hash, verify_consistency

__all__ = [
    "Coord",
    "TreeReader",
    "extend",
    "pack_frontier",
    "unpack_frontier",
]

Coord = tuple[int, int]
"""A stored node: (level, index); level 0 is a leaf hash."""

Fetch = Callable[[set[Coord]], dict[Coord, bytes]]
"""Reads the hashes of the given coordinates (all of them, or raise)."""

_HASH_LEN = 32
# RFC 9162 §2.1.1: the hash of an empty list is the hash of an empty string.
_EMPTY_ROOT = hashlib.sha256(b"").digest()


def pack_frontier(frontier: list[bytes]) -> bytes:
    """Return the compact range as one blob (largest subtree first)."""
    return b"".join(frontier)


def unpack_frontier(blob: bytes, size: int) -> list[bytes]:
    """Split a stored compact range; it holds one hash per set bit of ``size``.

    Raises:
        StorageError: the blob length does not match the tree size.
    """
    count = size.bit_count()
    if len(blob) != count * _HASH_LEN:
        raise StorageError(
            f"stored compact range is corrupt: expected {count * _HASH_LEN} bytes "
            f"for size {size}, got {len(blob)}"
        )
    return [blob[i : i + _HASH_LEN] for i in range(0, len(blob), _HASH_LEN)]


def extend(
    size: int, frontier: list[bytes], leaves: Iterable[bytes]
) -> tuple[list[bytes], list[tuple[int, int, bytes]]]:
    """Append leaf hashes to a compact range.

    Args:
        size: leaves in the tree before the append.
        frontier: hashes of the perfect subtrees of that tree, largest first
            (one per set bit of ``size``).
        leaves: the new leaf hashes, in order.

    Returns:
        The new frontier and the newly completed nodes ``(level, index, hash)``
        of level 1 and above (level 0 is the leaf hash stored with the entry).
    """
    frontier = list(frontier)
    nodes: list[tuple[int, int, bytes]] = []
    for leaf in leaves:
        cur = leaf
        level = 0
        n = size
        # Each trailing one bit of ``size`` is a perfect subtree of that level
        # waiting for a right sibling of the same height: merge them.
        while n & 1:
            cur = node_hash(frontier.pop(), cur)
            level += 1
            n >>= 1
            nodes.append((level, ((size + 1) >> level) - 1, cur))
        frontier.append(cur)
        size += 1
    return frontier, nodes


def _split(n: int) -> int:
    """RFC 9162 §2.1.1: the largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _perfect(lo: int, hi: int) -> list[Coord]:
    """Decompose leaves ``[lo, hi)`` into perfect subtrees, largest first."""
    out: list[Coord] = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        if lo:
            level = min(level, (lo & -lo).bit_length() - 1)
        out.append((level, lo >> level))
        lo += 1 << level
    return out


def _path(m: int, lo: int, n: int, out: list[tuple[int, int]]) -> None:
    """RFC 9162 §2.1.3.1 PATH(m, D[lo:lo+n]) as leaf ranges, leaf-side first."""
    while n > 1:
        k = _split(n)
        if m < k:
            out.append((lo + k, lo + n))
            n = k
        else:
            out.append((lo, lo + k))
            m, lo, n = m - k, lo + k, n - k
    out.reverse()


def _subproof(m: int, n: int, out: list[tuple[int, int]]) -> None:
    """RFC 9162 §2.1.4.1 SUBPROOF(m, D[0:n], true) as leaf ranges."""
    lo, b = 0, True
    tail: list[tuple[int, int]] = []
    while m != n:
        k = _split(n)
        if m <= k:
            tail.append((lo + k, lo + n))
            n = k
        else:
            tail.append((lo, lo + k))
            m, lo, n, b = m - k, lo + k, n - k, False
    if not b:
        out.append((lo, lo + n))
    out.extend(reversed(tail))


class TreeReader:
    """Tree hashes and proofs over stored nodes (RFC 9162 §2.1)."""

    def __init__(self, fetch: Fetch) -> None:
        """Args: fetch: reads node hashes by coordinate from the store."""
        self._fetch = fetch

    def _hash_ranges(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        plans = [_perfect(lo, hi) for lo, hi in ranges]
        wanted = {c for plan in plans for c in plan}
        got = self._fetch(wanted) if wanted else {}
        missing = wanted - got.keys()
        if missing:
            level, index = min(missing)
            raise StorageError(
                f"stored tree is incomplete: node (level {level}, index {index}) is missing"
            )
        out = []
        for plan in plans:
            acc = got[plan[-1]]
            # MTH of a range is the right fold of its perfect subtrees.
            for coord in reversed(plan[:-1]):
                acc = node_hash(got[coord], acc)
            out.append(acc)
        return out

    def root(self, size: int) -> bytes:
        """Return MTH(D[0:size]) (RFC 9162 §2.1.1)."""
        if size == 0:
            return _EMPTY_ROOT
        return self._hash_ranges([(0, size)])[0]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """Return PATH(index, D[0:size]) (RFC 9162 §2.1.3.1).

        Raises:
            InvalidProofError: ``index`` is not below ``size``.
        """
        if not 0 <= index < size:
            raise InvalidProofError(
                f"inclusion proof index out of range: expected 0 <= index < {size}, got {index}"
            )
        ranges: list[tuple[int, int]] = []
        _path(index, 0, size, ranges)
        return self._hash_ranges(ranges)

    def check_extends(self, old: int, old_root: bytes, size: int, root: bytes) -> None:
        """RFC 9162 §2.1.4: the stored tree of ``size`` leaves (root ``root``, computed
        from it) extends a signed tree of ``old`` leaves and root ``old_root``.

        Raises:
            IntegrityError: it does not (the stored tree was rewritten or cut).
            InvalidProofError: the stored nodes give no valid consistency proof.
        """
        if old > size:
            raise IntegrityError(
                f"log is shorter than its last checkpoint: expected >= {old}, got {size}")
        if old == size:  # the usual case when every batch signs: ``root`` is that root
            if root != old_root:
                raise IntegrityError(
                    f"tree root at size {size} differs from its signed checkpoint")
            return
        proof = self.consistency_proof(old, size)
        verify_consistency(old, size, proof, old_root, root)
        if self.root(old) != old_root:
            raise IntegrityError(f"tree root at size {old} differs from its signed checkpoint")

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """Return PROOF(old, D[0:new]) (RFC 9162 §2.1.4.1); empty when old is 0 or new.

        Raises:
            InvalidProofError: ``old`` is not within ``0..new``.
        """
        if not 0 <= old <= new:
            raise InvalidProofError(
                f"consistency proof sizes out of order: expected 0 <= {old} <= {new}"
            )
        if old in (0, new):
            return []
        ranges: list[tuple[int, int]] = []
        _subproof(old, new, ranges)
        return self._hash_ranges(ranges)
