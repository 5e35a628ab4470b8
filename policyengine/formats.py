"""The JSON Schema ``format`` checks the schemas rely on, checked deliberately.

jsonschema's stock format checker skips ``date-time`` unless an optional
package (rfc3339-validator) happens to be installed, so an impossible
``model.created`` or an approval ``time`` of ``yesterday`` would pass schema
validation and reach the rules. :data:`FORMAT_CHECKER` is the stock checker
plus our own:

- ``date-time``: RFC 3339 section 5.6 ``date-time`` (JSON Schema 2020-12
  section 7.3.1), narrowed to what CEL's ``timestamp()`` accepts, so that a
  valid card never fails a rule on its own timestamps: upper-case ``T`` and
  ``Z`` only, at most 9 fraction digits, and no leap second (CEL timestamps
  are protobuf Timestamps, which have nanosecond precision and no leap
  seconds).
- ``date``: RFC 3339 ``full-date`` with a real calendar day.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # jsonschema is imported only when a reference validator is built
    from jsonschema import FormatChecker

__all__ = ["FORMAT_CHECKER", "is_date", "is_date_time"]  # noqa: F822 (module __getattr__)

_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?"
    r"(?:Z|[+-](\d{2}):(\d{2}))", re.ASCII)


def _real_day(year: str, month: str, day: str) -> bool:
    try:
        _dt.date(int(year), int(month), int(day))
    except ValueError:
        return False
    return True


def is_date(value: Any) -> bool:
    """True for an RFC 3339 ``full-date`` (``2026-11-26``); non-strings pass (JSON Schema)."""
    if not isinstance(value, str):
        return True
    match = _DATE.fullmatch(value)
    return match is not None and _real_day(*match.groups())


def is_date_time(value: Any) -> bool:
    """True for an RFC 3339 ``date-time`` CEL can read; non-strings pass (JSON Schema)."""
    if not isinstance(value, str):
        return True
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        return False
    year, month, day, hour, minute, second, off_hour, off_minute = match.groups()
    return (_real_day(year, month, day) and int(hour) <= 23 and int(minute) <= 59
            and int(second) <= 59 and int(off_hour or 0) <= 23 and int(off_minute or 0) <= 59)


@functools.cache
def _checker() -> FormatChecker:
    from jsonschema import Draft202012Validator, FormatChecker

    checker = FormatChecker(formats=Draft202012Validator.FORMAT_CHECKER.checkers)
    checker.checks("date-time")(is_date_time)
    checker.checks("date")(is_date)
    return checker


def __getattr__(name: str) -> Any:
    """``FORMAT_CHECKER``: the format checker for every schema validator, built on first use."""
    if name == "FORMAT_CHECKER":
        return _checker()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
