"""Hostile receipt files fail verification with one line: never a traceback."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.cli import main

RECEIPTS = Path(__file__).resolve().parents[1] / "vectors" / "receipts"
OK = (RECEIPTS / "receipt_ok.json").read_bytes()
VKEY = str(RECEIPTS / "verifier.vkey")

HOSTILE = {
    "int-5001-digits": OK.replace(b'"leaf_index":2', b'"leaf_index":' + b"1" * 5001),
    "10**400": OK.replace(b'"leaf_index":2', b'"leaf_index":1' + b"0" * 400),
    "1e400": OK.replace(b'"leaf_index":2', b'"leaf_index":1.0e+400'),
    "nan": OK.replace(b'"leaf_index":2', b'"leaf_index":NaN'),
    "deep": b'{"v": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
    "nul-byte": OK + b"\x00",
    "duplicate-key": OK.replace(b'"v":1}', b'"v":1,"v":1}'),
    "invalid-utf8": OK.replace(b"ci@example.org", b"ci@\xffexample.org"),
}


def _verify(path: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["receipt", "verify", str(path), "--key", VKEY], stdout=out, stderr=err)
    return code, err.getvalue()


def test_the_valid_receipt_verifies(tmp_path):
    """The untouched vector verifies (so the refusals below are the inputs' doing)."""
    (tmp_path / "r.json").write_bytes(OK)
    assert _verify(tmp_path / "r.json")[0] == 0


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_receipt_fails_with_one_line(tmp_path, name):
    """Each hostile class is a failed verification (exit 1) with one line."""
    (tmp_path / "r.json").write_bytes(HOSTILE[name])
    code, err = _verify(tmp_path / "r.json")
    assert code == 1, err
    assert err.count("\n") == 1 and "Traceback" not in err, err


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), steps=st.integers(1, 4))
def test_mutated_receipts_never_crash(tmp_path, seed, steps):
    """Random byte edits of a valid receipt verify or fail with one line; nothing escapes."""
    rnd = random.Random(seed)
    data = bytearray(OK)
    for _ in range(steps):
        i = rnd.randrange(len(data) + 1)
        if rnd.random() < 0.5:
            data[i:i] = rnd.choice([b"1" * 5001, b"NaN", b"1e400", b"\x00", b"[" * 70, b'"',
                                    b"\xff", b'"v":1,', b"-"])
        else:
            del data[i:i + rnd.randrange(1, 10)]
    (tmp_path / "r.json").write_bytes(bytes(data))
    code, err = _verify(tmp_path / "r.json")
    assert code in (0, 1, 2), err
    assert code == 0 or (err.count("\n") == 1 and "Traceback" not in err), err
