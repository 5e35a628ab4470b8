"""Tests for audit/note.py: C2SP signed notes and tlog checkpoints."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from audit.errors import InvalidSignatureError
from audit.keys import NoteVerifier, Signer, generate_key
from audit.note import Checkpoint, check_note, open_note, parse_checkpoint, sign_note

VECTOR = json.loads(
    (Path(__file__).resolve().parent.parent / "vectors" / "note" / "go_sumdb_note.json").read_text()
)
PETER = Signer.from_skey(VECTOR["peter_skey"])
PETER_V = NoteVerifier.from_vkey(VECTOR["peter_vkey"])
ENOCH_V = NoteVerifier.from_vkey(VECTOR["enoch_vkey"])
ROOT = bytes(range(32))


def test_sign_note_matches_go_vector() -> None:
    """Signing the published text with the published key gives the published note."""
    assert sign_note(VECTOR["text"], [PETER]) == VECTOR["peter_signed_note"]


def test_open_note_ignores_unknown_and_reports_verified() -> None:
    """A second signature from an unconfigured key is ignored, not an error."""
    note = VECTOR["peter_signed_note"] + VECTOR["enoch_signature_line"]
    assert open_note(note, [PETER_V]) == (VECTOR["text"], ["PeterNeumann"])
    assert open_note(note, [PETER_V, ENOCH_V])[1] == ["PeterNeumann", "EnochRoot"]
    assert open_note(note, [ENOCH_V])[1] == ["EnochRoot"]


def test_open_note_without_known_signature_raises() -> None:
    """A note signed only by unknown keys is rejected, naming the keys seen."""
    with pytest.raises(
        InvalidSignatureError, match=r"no signature from a configured key.*c74f20a3"
    ):
        open_note(VECTOR["peter_signed_note"], [ENOCH_V])


def test_known_key_with_bad_signature_rejects_note() -> None:
    """A failed signature from a known key rejects the whole note."""
    text = VECTOR["text"].replace("problem", "Problem", 1)
    forged = text + VECTOR["peter_signed_note"][len(VECTOR["text"]) :]
    with pytest.raises(InvalidSignatureError, match="invalid signature for key PeterNeumann"):
        open_note(forged, [PETER_V])
    check = check_note(forged, [PETER_V])
    assert check.failed == ("PeterNeumann",) and not check


def test_same_name_other_key_is_unknown() -> None:
    """A key that shares the name but not the id is treated as unknown (signed-note §Signatures)."""
    skey, _ = generate_key("PeterNeumann")
    note = sign_note(VECTOR["text"], [Signer.from_skey(skey)])
    check = check_note(note, [PETER_V])
    assert check.verified == () and check.failed == () and len(check.unknown) == 1


def test_rotation_two_signatures_either_key_verifies() -> None:
    """A note signed by old and new keys verifies with either verifier alone."""
    old, new = (
        Signer.from_skey(generate_key("log.example")[0]),
        Signer.from_skey(generate_key("log.example")[0]),
    )
    note = sign_note("log.example\n1\n" + base64.b64encode(ROOT).decode() + "\n", [old, new])
    assert note.count("\u2014 log.example ") == 2
    assert open_note(note, [old.verifier()])[1] == ["log.example"]
    assert open_note(note, [new.verifier()])[1] == ["log.example"]


@pytest.mark.parametrize(
    "note",
    [
        VECTOR["text"],
        VECTOR["text"] + "\n",
        VECTOR["peter_signed_note"][:-1],
        "\x01" + VECTOR["peter_signed_note"],
        VECTOR["text"] + "\n\u2014 Bad Name " + VECTOR["peter_signed_note"].rsplit(" ", 1)[1],
        VECTOR["peter_signed_note"] + "Unexpected line.\n",
        VECTOR["text"] + "\n\u2014 PeterNeumann AAAA\n",
        VECTOR["peter_signed_note"] + VECTOR["peter_signed_note"].splitlines(True)[-1] * 100,
    ],
)
def test_malformed_notes_are_rejected(note: str) -> None:
    """Notes that break the signed-note grammar are rejected (note_test.go cases)."""
    with pytest.raises(InvalidSignatureError, match="malformed note"):
        open_note(note, [PETER_V])


def test_sign_note_refuses_bad_text_and_no_signer() -> None:
    """Text without a final newline, with control characters, or no signer is refused."""
    with pytest.raises(InvalidSignatureError, match="end with a newline"):
        sign_note("abc", [PETER])
    with pytest.raises(InvalidSignatureError, match="control character"):
        sign_note("a\tb\n", [PETER])
    with pytest.raises(InvalidSignatureError, match="at least one key"):
        sign_note("abc\n", [])


def test_checkpoint_body_round_trip() -> None:
    """A checkpoint body is origin, size and base64 root lines and parses back."""
    cp = Checkpoint("example.com/log", 20852163, ROOT)
    assert cp.body() == f"example.com/log\n20852163\n{base64.b64encode(ROOT).decode()}\n"
    assert parse_checkpoint(cp.body()) == cp
    with_ext = Checkpoint("o", 0, ROOT, ("ext one",))
    assert parse_checkpoint(with_ext.body()) == with_ext


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("o\n1\n", "got 2 lines"),
        ("o\n01\n" + base64.b64encode(ROOT).decode() + "\n", "leading zeros"),
        ("o\n-1\n" + base64.b64encode(ROOT).decode() + "\n", "leading zeros"),
        ("o\n1\n" + base64.b64encode(ROOT[:31]).decode() + "\n", "expected 32 bytes, got 31"),
        ("o\n1\n!!!\n", "not base64"),
        ("o\n1\n" + base64.b64encode(ROOT).decode(), "end with a newline"),
        ("o\n1\n" + base64.b64encode(ROOT).decode() + "\n\n", "non-empty"),
    ],
)
def test_parse_checkpoint_refuses_malformed(body: str, fragment: str) -> None:
    """Malformed checkpoint bodies are refused with what was wrong."""
    with pytest.raises(InvalidSignatureError, match=fragment):
        parse_checkpoint(body)


def test_non_canonical_base64_is_rejected() -> None:
    """A signature or root whose base64 has non-zero padding bits is refused."""
    note = VECTOR["peter_signed_note"]
    i = note.rindex("=") - 1
    bumped = note[:i] + chr(ord(note[i]) + 1) + note[i + 1 :]
    with pytest.raises(InvalidSignatureError, match="not canonical base64"):
        open_note(bumped, [PETER_V])
    root = base64.b64encode(ROOT).decode()
    body = f"o\n1\n{root[:-2]}{chr(ord(root[-2]) + 1)}=\n"
    with pytest.raises(InvalidSignatureError, match="not canonical base64"):
        parse_checkpoint(body)
