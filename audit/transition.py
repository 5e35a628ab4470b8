"""Key transitions: the log's signing key changes by a statement the old key signs.

Owns the ``key_transition`` entry and :class:`KeyChain`, the keys in force
over a log's history. The log's key history is a chain anchored in its first
key, as TUF chains root versions (theupdateframework.io spec §5.3.4: each new
root is signed by the keys of the previous one): a transition names the log
origin, the tree size from which the new key signs checkpoints, the old and
the new verifier key, and is a C2SP signed note (c2sp.org/signed-note) whose
text is::

    policyengine.local/key-transition/v1
    <origin>
    <size>
    <old vkey>
    <new vkey>

signed first by the old key (the authority) and then by the new key (proof
that its holder has it). Its first line cannot be a checkpoint origin that a
checkpoint parser would accept with these lines (line two is not a decimal),
so a transition can never pass as a checkpoint. The entry's payload is
``{"transition": <signed note>}``; ``size`` is the entry's own seq + 1, so the
checkpoint that covers the transition is the first one signed by the new key
(the log signs it with both keys: a transition window a verifier holding
either key can follow).

Verification (:class:`KeyChain`) walks the transitions in log order: each
must be signed by the key in force and name the next size; checkpoints are
accepted only when signed by the key in force at their size. A chain is
*anchored* once it reaches a key the auditor trusts (a later key vouches for
the earlier history through the roots it signs). Not handled here: writing
the entry (:meth:`audit.log.AuditLog.rotate_key`) or streaming a log
(:mod:`audit.verify`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from audit.errors import InvalidSignatureError, KeyLoadError
from audit.keys import NoteVerifier, Signer
from audit.note import check_note, sign_note

__all__ = [
    "TRANSITION_HEADER",
    "TRANSITION_TYPE",
    "KeyChain",
    "KeyTransition",
    "first_key",
    "key_in_force",
    "parse_transition",
    "sign_transition",
    "transition_from_payload",
]

TRANSITION_TYPE = "key_transition"
"""Entry type of a key transition (written by the log itself)."""
TRANSITION_HEADER = "policyengine.local/key-transition/v1"
"""First line of a transition's note text (domain separation from checkpoints)."""


@dataclass(frozen=True)
class KeyTransition:
    """One parsed (not yet verified) key transition."""

    origin: str
    """The log origin the transition belongs to."""
    size: int
    """Tree size from which checkpoints are signed by ``new``."""
    old: NoteVerifier
    """The key in force before ``size``; its signature authorises the change."""
    new: NoteVerifier
    """The key in force from ``size`` on."""
    note: str
    """The signed note, as logged."""


def _body(origin: str, size: int, old: str, new: str) -> str:
    return f"{TRANSITION_HEADER}\n{origin}\n{size}\n{old}\n{new}\n"


def sign_transition(origin: str, size: int, old: Signer, new: Signer) -> str:
    """Return the signed note of a transition from ``old`` to ``new`` at ``size``.

    Raises:
        InvalidSignatureError: the origin holds a newline or a control character.
    """
    return sign_note(_body(origin, size, old.vkey, new.vkey), [old, new])


def parse_transition(note: str) -> KeyTransition:
    """Parse a transition note's text without checking its signatures.

    Raises:
        InvalidSignatureError: the note is malformed or not a key transition.
    """
    text = note[: note.rfind("\n\n") + 1] if "\n\n" in note else ""
    lines = text[:-1].split("\n") if text.endswith("\n") else []
    if len(lines) != 5 or lines[0] != TRANSITION_HEADER or not lines[2].isdigit():
        raise InvalidSignatureError(
            f"malformed key transition: expected {TRANSITION_HEADER}, origin, size, "
            "old and new verifier keys")
    try:
        old, new = NoteVerifier.from_vkey(lines[3]), NoteVerifier.from_vkey(lines[4])
    except KeyLoadError as exc:
        raise InvalidSignatureError(f"malformed key transition: {exc}") from exc
    return KeyTransition(lines[1], int(lines[2]), old, new, note)


def transition_from_payload(payload: bytes | str | dict[str, Any]) -> KeyTransition:
    """Parse the payload of a ``key_transition`` entry.

    Raises:
        InvalidSignatureError: the payload is not ``{"transition": <note>}``.
    """
    try:
        body = payload if isinstance(payload, dict) else json.loads(payload)
        note = body["transition"]
        if not isinstance(note, str):
            raise TypeError
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidSignatureError(
            "malformed key transition payload: expected {\"transition\": <signed note>}"
        ) from exc
    return parse_transition(note)


def _signed_by(t: KeyTransition, key: NoteVerifier) -> bool:
    check = check_note(t.note, [key])
    return bool(check) and key.name in check.verified


class KeyChain:
    """The key in force while a log is read in order, and whether it is trusted."""

    def __init__(self, trusted: Sequence[NoteVerifier], first: NoteVerifier | None) -> None:
        """Start at the log's first key.

        Args:
            trusted: the auditor's keys (any key of the chain anchors it).
            first: the log's first key, when the log has transitions (read
                ahead from the log, unverified); None for a log without any,
                where any trusted key may sign checkpoints.
        """
        self.trusted = list(trusted)
        self._trusted_vkeys = {v.vkey for v in self.trusted}
        self.in_force = first
        self.anchored = first is None or first.vkey in self._trusted_vkeys
        self.history: list[tuple[int, KeyTransition]] = []
        """(seq, transition) of each transition followed so far."""

    def checkpoint_keys(self) -> list[NoteVerifier]:
        """The keys a checkpoint at the current size may be signed by."""
        return self.trusted if self.in_force is None else [self.in_force]

    def follow(self, seq: int, t: KeyTransition, origin: str | None) -> str | None:
        """Follow the transition logged at ``seq``; return why it is forged, or None."""
        if origin is not None and t.origin != origin:
            return f"names origin {t.origin!r}, expected {origin!r}"
        if t.size != seq + 1:
            return f"takes effect at size {t.size}, expected {seq + 1} (its own seq + 1)"
        current = self.in_force
        if current is None:  # the first transition of a log read without a look-ahead
            current = next((v for v in self.trusted if v.vkey == t.old.vkey), None)
            if current is None:
                return f"is signed by {_short(t.old)}, which is not a trusted key"
        if t.old.vkey != current.vkey:
            return (f"names old key {_short(t.old)}, but the key in force is "
                    f"{_short(current)}")
        if not _signed_by(t, current):
            return f"has no valid signature by the key in force {_short(current)}"
        if not _signed_by(t, t.new):
            return f"has no valid signature by its new key {_short(t.new)}"
        self.in_force = t.new
        self.anchored = self.anchored or t.new.vkey in self._trusted_vkeys
        self.history.append((seq, t))
        return None


def _short(v: NoteVerifier) -> str:
    return f"{v.name}+{v.key_id.hex()}"


def first_key(payloads: Iterable[Any]) -> NoteVerifier | None:
    """The old key of the first readable transition payload (a look-ahead hint), or None."""
    for payload in payloads:
        try:
            return transition_from_payload(payload).old
        except InvalidSignatureError:
            return None
    return None


def key_in_force(tx: Any) -> str | None:
    """The vkey the latest logged transition put in force, or None (no transition).

    Read inside the caller's transaction (``tx``, an :class:`audit.store.Tx`),
    so a rotation by another process is seen.
    """
    rows = tx.rows("SELECT p.content FROM audit_entries e JOIN audit_payloads p "
                   "ON e.seq = p.seq WHERE e.type = ? ORDER BY e.seq DESC LIMIT 1",
                   (TRANSITION_TYPE,))
    if not rows or rows[0][0] is None:
        return None
    return transition_from_payload(bytes(rows[0][0])).new.vkey
