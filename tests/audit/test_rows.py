"""Tests for audit/_rows.py: templated envelopes equal the RFC 8785 envelope object."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import merkle
from audit._rows import NewEntry, build_rows, format_time, prepare
from audit.canonical import dumps_envelope, json_string
from audit.errors import CanonicalizationError, InputError
from audit.records import Head

_TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)))
_NAME = st.text(alphabet=st.characters(exclude_categories=("Cs",)), min_size=1)
_SUBJECT = st.fixed_dictionaries(
    {"name": _NAME}, optional={"version": _TEXT, "digest": _TEXT})
_TIME = st.datetimes(timezones=st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=11))]))


def _reference(origin: str, seq: int, time: str, entry: NewEntry, digest: str,
               prev: str) -> bytes:
    """The envelope as an object canonicalised by the generic encoder."""
    return dumps_envelope({
        "v": 1, "log": origin, "seq": seq, "time": time, "type": entry.type,
        "subject": entry.subject, "actor": entry.actor, "payload_digest": digest, "prev": prev,
    })


@settings(max_examples=300, deadline=None)
@given(origin=_TEXT, subject=_SUBJECT, actor=_NAME,
       kind=st.from_regex(r"[a-z_]{1,12}", fullmatch=True), size=st.integers(0, 2**40),
       time=st.none() | _TIME, count=st.integers(1, 3))
def test_templated_envelopes_equal_rfc8785(
    origin: str, subject: dict[str, str], actor: str, kind: str, size: int,
    time: datetime | None, count: int,
) -> None:
    """Every envelope build_rows writes equals dumps_envelope and rfc8785 of its object,
    and each names the previous leaf hash as prev."""
    if kind in ("redaction", "legal_hold", "legal_hold_release", "key_transition"):
        kind += "_x"
    entries = [NewEntry(kind, subject, actor, {"n": i}, time) for i in range(count)]
    last = merkle.leaf_hash(b"earlier") if size else bytes(32)
    head = Head(origin, size, last, [])
    now = "2026-01-02T03:04:05.000006Z"
    rows = build_rows(origin, head, [prepare(e) for e in entries], now)
    prev = last.hex() if size else "0" * 64
    for i, (row, entry) in enumerate(zip(rows, entries, strict=True)):
        stamp = now if time is None else format_time(time)
        want = _reference(origin, size + i, stamp, entry, row.payload_digest, prev)
        assert row.envelope == want
        assert row.envelope == rfc8785.dumps(json.loads(want))
        assert row.leaf_hash == merkle.leaf_hash(row.envelope)
        assert (row.seq, row.time) == (size + i, stamp)
        prev = row.leaf_hash.hex()


@pytest.mark.parametrize(
    "text", ['Zoë \u2028 "quoted" \\ \x00\x1f\x7f\b\f\n\r\t', "\U0001f600", ""])
def test_json_string_escapes_as_rfc8785(text: str) -> None:
    """One string's bytes equal RFC 8785's, control characters and astral ones included."""
    assert json_string(text, "x") == rfc8785.dumps(text)


@pytest.mark.parametrize(
    ("entry", "error", "fragment"),
    [
        (NewEntry("decision", {"name": "m"}, "bad \ud800", {}), CanonicalizationError,
         "actor: string holds a lone surrogate"),
        (NewEntry("decision", {"name": "m", "version": "\udfff"}, "ci", {}),
         CanonicalizationError, "subject.version: string holds a lone surrogate"),
        (NewEntry("decision", {"name": "m", "version": None}, "ci", {}),  # type: ignore[dict-item]
         InputError, "subject.version: expected a string"),
        (NewEntry("decision", {"name": "m", "x": "1"}, "ci", {}), InputError, "unknown"),
        (NewEntry("decision", {"name": "m"}, "ci", {}, datetime(2026, 1, 1)), InputError,
         "naive"),
    ],
)
def test_bad_entries_are_refused_before_any_transaction(
    entry: NewEntry, error: type[Exception], fragment: str
) -> None:
    """Strings that are not valid Unicode and malformed subjects or times fail in prepare."""
    with pytest.raises(error, match=fragment):
        prepare(entry)


def test_format_time_converts_other_zones_to_utc() -> None:
    """An aware time in another zone is written as the same instant in UTC."""
    ist = timezone(timedelta(hours=5, minutes=30))
    assert format_time(datetime(2026, 1, 1, 5, 30, tzinfo=ist)) == "2026-01-01T00:00:00.000000Z"
    assert format_time(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000000Z"


@settings(max_examples=200, deadline=None)
@given(_TIME)
def test_format_time_is_rfc3339_utc_with_microseconds(value: datetime) -> None:
    """Any aware time formats as its UTC instant, zero-padded, six fraction digits and Z,
    also when the same object is formatted twice."""
    u = value.astimezone(UTC)
    want = (f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:"
            f"{u.second:02d}.{u.microsecond:06d}Z")
    assert format_time(value) == want
    assert format_time(value) == want
