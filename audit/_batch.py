"""Checking a batch of ordinary entries at once, for :mod:`audit.verify` only.

Owns the verifier's fast path. A batch of rows is checked in whole-batch
passes (``map`` over the batch, so no interpreter loop runs per entry) when
every entry in it is ordinary: payload present and not redacted, a type other
than ``redaction`` and ``key_transition``, leaf hash SHA-256(0x00 || envelope)
equal to the stored one (RFC 9162 §2.1.1), and the envelope the canonical
pattern of :func:`audit._envelope.fast_pattern` for the log's origin, holding
the fields a good entry at its position holds: the SHA-256 of its payload,
the previous leaf hash and its seq. That is every per-entry check the full path
makes, so a batch that passes needs nothing more; any other batch is checked
entry by entry on the full path, which names the fault. Internal and
unstable: nothing outside the audit package should import it.
"""

from __future__ import annotations

import binascii
import hashlib
import operator
import re
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any, cast

from audit._envelope import fast_pattern, plain_string

Match = Callable[[bytes], "re.Match[bytes] | None"]

_SPECIAL_TYPES = frozenset((b"redaction", b"key_transition"))
"""Entry types whose payload the full path reads (tombstones, key transitions)."""
_sha256 = hashlib.sha256
_digest = type(_sha256()).digest
_hexlify = binascii.hexlify
_digest_of, _prev_of, _seq_of, _type_of = map(operator.itemgetter, (1, 2, 3, 4))
# RFC 9162 §2.1.1 domain separation: leaf = H(0x00 || d), node = H(0x01 || l || r).
_leaf_input, _join = b"\x00".__add__, b"".join


def fast_matcher(origin: bytes | None) -> Match | None:
    """The envelope matcher for the log's ``origin`` (as escaped in JSON), or None.

    None when the origin is not yet known or holds escapes the pattern does
    not write in: such a log is checked on the full path only.
    """
    if origin is None or not plain_string(origin):
        return None
    return fast_pattern(origin).fullmatch


def check_batch(rows: Sequence[tuple[Any, ...]], p: int, prev: bytes,
                match: Match) -> tuple[list[bytes], list[bytes]] | None:
    """The leaf hashes and their hex when every row is an ordinary good entry, else None.

    Each pass is one ``map`` over the batch; the type is read before the
    fields are compared (a tombstone or key transition goes to the full path).

    Args:
        rows: entry tuples (seq, envelope, leaf hash, payload, redacted) at
            positions ``p`` on.
        p: the position of the first row.
        prev: the hex leaf hash of the entry before ``p`` (zeros at 0).
        match: ``fast_pattern(origin).fullmatch`` for the log's origin.
    """
    _seqs, envs, stored, payloads, redacted = zip(*rows, strict=True)
    if None in payloads or any(redacted):
        return None
    leaves = list(map(_digest, map(_sha256, map(_leaf_input, envs))))
    if leaves != list(stored):
        return None
    maybe = list(map(match, envs))
    if not all(maybe):
        return None
    found = cast("list[re.Match[bytes]]", maybe)
    if not _SPECIAL_TYPES.isdisjoint(map(_type_of, found)):
        return None
    hexes = list(map(_hexlify, leaves))
    if (list(map(_prev_of, found)) != [prev, *hexes[:-1]]
            or list(map(_digest_of, found)) != list(
                map(_hexlify, map(_digest, map(_sha256, payloads))))
            or list(map(int, map(_seq_of, found))) != list(range(p, p + len(rows)))):
        return None
    return leaves, hexes


def extend(stack: list[bytes], size: int, leaves: Sequence[bytes]) -> None:
    """Append leaf hashes to a compact range (RFC 9162 §2.1.1) in place.

    ``stack`` holds the roots of the perfect subtrees of a tree of ``size``
    leaves, largest first. The new leaves are split into the largest aligned
    perfect subtrees; each is hashed level by level in whole-level passes and
    then merged like one leaf of its height.
    """
    i, n = 0, len(leaves)
    while i < n:
        at = size + i
        width = 1 << ((n - i).bit_length() - 1)
        if at:
            width = min(width, at & -at)  # aligned: a subtree starts at a multiple of its width
        level = leaves[i : i + width]
        while len(level) > 1:
            half = len(level) // 2
            nodes = map(_join, zip(repeat(b"\x01", half), level[0::2], level[1::2], strict=True))
            level = list(map(_digest, map(_sha256, nodes)))
        node, index = level[0], at // width
        while index & 1:
            node = _sha256(b"\x01" + stack.pop() + node).digest()
            index >>= 1
        stack.append(node)
        i += width
