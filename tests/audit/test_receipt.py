"""Tests for audit/receipt.py: receipts verify offline and every byte is bound."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest

from audit.errors import IntegrityError
from audit.keys import NoteVerifier, load_verifiers
from audit.receipt import build_receipt, dumps_receipt, loads_receipt, verify_receipt

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
sys.path.insert(0, str(VECTORS))
import generate  # noqa: E402
from memlog import MemLog, fixed_signer  # noqa: E402

RECEIPTS = VECTORS / "receipts"
KEY = load_verifiers([RECEIPTS / "verifier.vkey"])


def test_good_receipt_vector_verifies_with_only_the_public_key() -> None:
    """The committed receipt verifies from its file and the vkey file alone."""
    receipt = loads_receipt((RECEIPTS / "receipt_ok.json").read_bytes())
    verify_receipt(receipt, KEY)


@pytest.mark.parametrize("stem", sorted(generate.NEGATIVE))
def test_negative_receipt_vectors_fail_with_reason(stem: str) -> None:
    """Each named negative vector fails verification with its documented reason."""
    _mutation, fragment = generate.NEGATIVE[stem]
    receipt = loads_receipt((RECEIPTS / f"{stem}.json").read_bytes())
    with pytest.raises(IntegrityError, match=fragment):
        verify_receipt(receipt, KEY)


def test_vectors_are_reproducible() -> None:
    """Regenerating the receipt vectors gives exactly the committed files."""
    for name, data in generate.vectors().items():
        assert (RECEIPTS / name).read_bytes() == data, f"{name} is stale: run generate.py"


@pytest.mark.parametrize("mask", [0x01, 0x20, 0x80])
def test_changing_any_byte_breaks_the_receipt(mask: int) -> None:
    """Flipping any byte of a serialised receipt makes it unparsable or fail to verify."""
    data = (RECEIPTS / "receipt_ok.json").read_bytes().rstrip(b"\n")
    for i in range(len(data)):
        mutated = bytearray(data)
        mutated[i] ^= mask
        with pytest.raises(IntegrityError):
            verify_receipt(loads_receipt(bytes(mutated)), KEY)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8, 33])
def test_every_entry_gets_a_verifying_receipt(size: int) -> None:
    """Receipts for every entry of logs of several sizes verify; other keys do not."""
    log = MemLog().fill(size)
    other = fixed_signer("2").verifier()
    for seq in range(size):
        receipt = loads_receipt(dumps_receipt(log.receipt(seq)))
        verify_receipt(receipt, [other, log.signer.verifier()])
        with pytest.raises(IntegrityError, match="no signature from a configured key"):
            verify_receipt(receipt, [other])


def test_receipt_shape_errors_name_the_field() -> None:
    """Missing, extra and mistyped fields are reported by name."""
    good = MemLog().fill(3).receipt(1)
    key: list[NoteVerifier] = [fixed_signer().verifier()]
    cases = [
        ({k: v for k, v in good.items() if k != "checkpoint"}, "missing \\['checkpoint'\\]"),
        ({**good, "extra": 1}, "unexpected \\['extra'\\]"),
        ({**good, "v": 2}, "version: expected 1, got 2"),
        ({**good, "v": True}, "expected int, got bool"),
        ({**good, "inclusion_proof": "x"}, "expected list, got str"),
        ({**good, "payload_digest": "sha256:" + "0" * 64}, "payload digest mismatch"),
        ([], "must be a JSON object"),
    ]
    for receipt, fragment in cases:
        with pytest.raises(IntegrityError, match=fragment):
            verify_receipt(receipt, key)  # type: ignore[arg-type]
    with pytest.raises(IntegrityError, match="at least one public key"):
        verify_receipt(good, [])


def test_receipt_from_other_origin_is_refused() -> None:
    """A checkpoint of another log cannot vouch for this log's entry."""
    good = MemLog().fill(3).receipt(1)
    other = MemLog(origin="other.example/audit").fill(3)
    bad = copy.deepcopy(good)
    bad["checkpoint"] = other.checkpoint(3).note
    with pytest.raises(IntegrityError, match="origin mismatch"):
        verify_receipt(bad, [fixed_signer().verifier()])


def test_loads_receipt_refuses_duplicates_and_garbage() -> None:
    """Duplicate keys, non-JSON and non-objects are refused when loading."""
    with pytest.raises(IntegrityError, match="duplicate key 'v'"):
        loads_receipt(b'{"v":1,"v":1}')
    with pytest.raises(IntegrityError, match="not valid JSON"):
        loads_receipt(b"{")
    with pytest.raises(IntegrityError, match="must be a JSON object"):
        loads_receipt(b"[]")


def test_build_receipt_refuses_mismatched_parts() -> None:
    """build_receipt refuses a seq, size or note that does not fit the envelope."""
    log = MemLog().fill(4)
    note = log.checkpoint(4).note
    env = log.entries[1].envelope
    with pytest.raises(IntegrityError, match="parts disagree"):
        build_receipt(env, 2, 4, [], note)
    with pytest.raises(IntegrityError, match="checkpoint size mismatch: expected 3"):
        build_receipt(env, 1, 3, [], note)
