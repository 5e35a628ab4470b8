"""Naming a broken ``seq`` or ``prev`` link, for :mod:`audit.verify` only.

Owns the classification of a chain anomaly at position ``p`` into modified,
inserted, deleted or reordered entries (the rules are listed in the
:mod:`audit.verify` module doc). It reads ahead in the entry stream (the next
entry, or the rest of the log) and always raises the :class:`Fault` it finds.
Internal and unstable: nothing outside the audit package should import it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import NamedTuple, NoReturn

from audit._envelope import Env, Fields, decode, parse_envelope
from audit._report import Fault, FaultClass
from audit.records import EntryTuple

__all__ = ["Link", "raise_link_fault"]


class Link(NamedTuple):
    """Where the stream stands when entry ``p`` breaks the chain."""

    p: int
    """The position of the entry (the seq it should carry)."""
    last_hex: str
    """The hex leaf hash of entry ``p - 1`` (zeros at 0)."""
    before_last: str
    """The hex leaf hash of entry ``p - 2`` ("" below 2)."""
    verified_size: int
    """The size of the last verified checkpoint."""


class _Peeked(NamedTuple):
    """The next entry, read ahead."""

    env: Env | None
    hash_hex: str


def _peek(it: Iterator[EntryTuple]) -> _Peeked | None:
    """Read the next row ahead: its parsed envelope (None if not canonical) and leaf hash."""
    row = next(it, None)
    if row is None:
        return None
    env = row[1]
    # RFC 9162 §2.1.1: the leaf hash is SHA-256(0x00 || envelope).
    return _Peeked(parse_envelope(env), hashlib.sha256(b"\x00" + env).hexdigest())


def _scan(it: Iterable[EntryTuple], want: int, stray: int) -> tuple[bool, bool, int]:
    """Read the rest: was seq ``want`` seen, was seq ``stray`` seen, how many entries."""
    found = again = False
    count = 0
    for row in it:
        count += 1
        env = parse_envelope(row[1])
        if env is not None:
            found = found or env.seq == want
            again = again or env.seq == stray
    return found, again, count


def raise_link_fault(fields: Fields, h: bytes, it: Iterator[EntryTuple], at: Link) -> NoReturn:
    """Classify a seq or prev anomaly of the entry at ``at.p`` (leaf hash ``h``); raises."""
    p, f = at.p, decode(fields)
    if f is None:
        raise Fault(FaultClass.MODIFIED, p, f"entry {p}: envelope log is not valid UTF-8")
    if f.seq < p:
        if f.seq == p - 1 and f.prev == at.before_last:
            raise Fault(FaultClass.INSERTED, p - 1,
                        f"entry at position {p - 1} was inserted: entry seq {f.seq} "
                        f"at position {p} links past it")
        raise Fault(FaultClass.INSERTED, p,
                    f"entry at position {p} was inserted: it repeats seq {f.seq}")
    nxt = _peek(it)
    nxt_env = nxt.env if nxt is not None else None
    links_back = nxt_env is not None and nxt_env.seq == p and nxt_env.prev == at.last_hex
    if f.seq > p:
        _raise_seq_gap(f, p, nxt, links_back, it)
    if links_back:
        raise Fault(FaultClass.INSERTED, p,
                    f"entry at position {p} was inserted: the next entry carries seq {p} "
                    f"and links to entry {p - 1}")
    own = nxt is not None and (nxt_env is None or nxt_env.prev != h.hex())
    bad = p if p == 0 or at.verified_size >= p or own else p - 1
    raise Fault(FaultClass.MODIFIED, bad,
                f"entry {bad} was modified: prev of entry {p} is {f.prev}, "
                f"expected {at.last_hex}")


def _raise_seq_gap(f: Env, p: int, nxt: _Peeked | None, links_back: bool,
                   it: Iterator[EntryTuple]) -> NoReturn:
    """Entry at ``p`` carries a larger seq: deleted, reordered or inserted; raises."""
    if links_back and nxt is not None:
        if f.prev == nxt.hash_hex:
            raise Fault(FaultClass.REORDERED, p,
                        f"entries reordered: seq {f.seq} stands before seq {p}")
        _found, again, rest = _scan(it, p, f.seq)
        if again or f.seq >= p + 2 + rest:
            raise Fault(FaultClass.INSERTED, p,
                        f"entry at position {p} was inserted: it carries seq {f.seq} "
                        f"and the next entry continues at seq {p}")
        raise Fault(FaultClass.REORDERED, p,
                    f"entries reordered: seq {f.seq} stands at position {p}")
    found = nxt is not None and nxt.env is not None and nxt.env.seq == p
    found = found or _scan(it, p, -1)[0]
    if found:
        raise Fault(FaultClass.REORDERED, p,
                    f"entries reordered: seq {f.seq} stands at position {p}, "
                    f"seq {p} comes later")
    raise Fault(FaultClass.DELETED, p,
                f"entries deleted: seq {p} to {f.seq - 1} are missing "
                f"(entry seq {f.seq} follows seq {p - 1})")
