"""Waivers: which history waivers turn a failing rule into ``waived``.

A waiver (``history.waivers``, schemas/history.schema.json) names rule ids (``rule-id`` or
``policy/rule-id``), a model, optionally an exact ``version`` or a
``versions`` range such as ``">=1,<3"``, and an ``expires`` time. It applies
to a rule result when all of these hold:

- the result is ``fail`` or ``error`` (a waiver never turns anything into
  ``pass``; the result becomes ``waived``);
- it names the rule and the model, and the version matches;
- it was granted at or before ``now`` and expires after ``now``.

A waiver that names the rule but is expired (or has no valid expiry, or is
not yet granted) is ignored and reported in ``expired_waivers``, the same
way everywhere. Pure functions of their inputs; ``now`` comes from the
caller.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["parse_time", "select_waiver", "version_matches"]

_CLAUSE = re.compile(r"^\s*(>=|<=|==|!=|>|<|=)?\s*([0-9A-Za-z.+_-]+)\s*$")


def parse_time(value: Any) -> _dt.datetime | None:
    """An RFC 3339 timestamp as an aware datetime, or None when invalid."""
    if isinstance(value, _dt.datetime):
        return value if value.tzinfo else None
    if not isinstance(value, str):
        return None
    try:
        parsed = _dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    parts = re.split(r"[.+-]", version.lstrip("vV"))
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def _compare(left: str, right: str) -> int:
    a, b = _version_key(left), _version_key(right)
    width = max(len(a), len(b))
    a += ((0, 0),) * (width - len(a))
    b += ((0, 0),) * (width - len(b))
    return (a > b) - (a < b)


def version_matches(version: str, spec: str) -> bool:
    """True when ``version`` satisfies every comma-separated clause of ``spec``.

    Clauses: ``>=1``, ``<3``, ``==1.2.0``, ``!=2``; numeric parts compare as
    numbers (``1.10 > 1.9``), missing parts as zero. A malformed spec
    matches nothing (fail closed).
    """
    if spec.strip() in {"*", ""}:
        return spec.strip() == "*"
    for clause in spec.split(","):
        found = _CLAUSE.match(clause)
        if not found:
            return False
        op, target = found.group(1) or "==", found.group(2)
        cmp = _compare(version, target)
        ok = {">=": cmp >= 0, "<=": cmp <= 0, ">": cmp > 0, "<": cmp < 0,
              "==": cmp == 0, "=": cmp == 0, "!=": cmp != 0}[op]
        if not ok:
            return False
    return True


def _names_rule(waiver: dict[str, Any], policy: str, rule: str) -> bool:
    rules = waiver.get("rules")
    return isinstance(rules, list) and (rule in rules or f"{policy}/{rule}" in rules)


def _matches_subject(waiver: dict[str, Any], model: str, version: str) -> bool:
    if waiver.get("model") != model:
        return False
    if waiver.get("version") is not None:
        return str(waiver["version"]) == version
    if waiver.get("versions") is not None:
        return version_matches(version, str(waiver["versions"]))
    return True


def _summary(waiver: dict[str, Any], status: str | None = None) -> dict[str, Any]:
    out = {k: waiver.get(k) for k in ("id", "ticket", "approver", "reason", "expires")}
    out = {k: v for k, v in out.items() if v is not None}
    if status:
        out["status"] = status
    return out


def select_waiver(waivers: Iterable[Any], policy: str, rule: str, model: str, version: str,
                  now: _dt.datetime) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The waiver that applies to this rule, and those that name it but do not.

    Args:
        waivers: ``history.waivers`` (non-dict entries are ignored).
        policy: policy name; rule: rule id; model/version: the subject.
        now: the evaluation time.

    Returns:
        (summary of the applying waiver or None, summaries of ignored ones
        with ``status`` expired | not_yet_valid | invalid_expiry).
    """
    active: dict[str, Any] | None = None
    ignored: list[dict[str, Any]] = []
    for waiver in waivers:
        if not isinstance(waiver, dict) or not _names_rule(waiver, policy, rule):
            continue
        if not _matches_subject(waiver, model, version):
            continue
        expires, granted = parse_time(waiver.get("expires")), parse_time(waiver.get("time"))
        if expires is None:
            ignored.append(_summary(waiver, "invalid_expiry"))
        elif expires <= now:
            ignored.append(_summary(waiver, "expired"))
        elif granted is not None and granted > now:
            ignored.append(_summary(waiver, "not_yet_valid"))
        elif active is None:
            active = _summary(waiver)
    return active, ignored
