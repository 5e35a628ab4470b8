"""Schema formats: date-time and date are checked as RFC 3339, and eval refuses bad ones."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from policyengine.cli import main
from policyengine.formats import is_date, is_date_time

REPO = Path(__file__).resolve().parents[2]
CARD = REPO / "examples/cards/credit-risk-scorer.yaml"
HISTORY = REPO / "examples/history/credit-risk-scorer-approvals.yaml"


@pytest.mark.parametrize("text", [
    "2026-11-26T12:00:00Z", "2026-11-26T12:00:00.123456789Z", "2026-11-26T12:00:00+05:30",
    "2026-11-26T23:59:59-00:00", "2024-02-29T00:00:00Z", "0001-01-01T00:00:00Z",
])
def test_rfc3339_date_times_pass(text: str) -> None:
    """RFC 3339 date-times that CEL's timestamp() reads are valid."""
    assert is_date_time(text)


@pytest.mark.parametrize("text", [
    "2026-13-45T99:00:00Z", "yesterday", "", "2026-11-26", "2026-11-26T12:00:00",
    "2026-11-26 12:00:00Z", "2026-11-26t12:00:00z", "2025-02-29T00:00:00Z",
    "2026-11-26T24:00:00Z", "2026-11-26T12:60:00Z", "2016-12-31T23:59:60Z",
    "2026-11-26T12:00:00.1234567890Z", "2026-11-26T12:00:00+24:00", "2026-11-26T12:00:00+0530",
    "2026-11-26T12:00:00Z\n", "\uff12\uff10\uff12\uff16-11-26T12:00:00Z",
])
def test_other_date_times_fail(text: str) -> None:
    """Impossible dates, missing zones, lower case, leap seconds and free text are refused."""
    assert not is_date_time(text)


@pytest.mark.parametrize(("text", "ok"), [
    ("2026-11-26", True), ("2024-02-29", True), ("2025-02-29", False), ("2026-13-01", False),
    ("26-11-26", False), ("2026-11-26T00:00:00Z", False),
])
def test_dates(text: str, ok: bool) -> None:
    """A date is an RFC 3339 full-date on a real calendar day."""
    assert is_date(text) is ok


def _eval(card: Path, history: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["eval", str(card), "--event", "promote", "--to", "production",
                 "--history", str(history), "--now", "2026-11-26T12:00:00Z"], out=out, err=err)
    return code, err.getvalue()


def test_eval_refuses_impossible_created_time(tmp_path: Path) -> None:
    """A card whose model.created is not a real RFC 3339 time exits 2 naming its path."""
    card = yaml.safe_load(CARD.read_text())
    card["model"]["created"] = "2026-13-45T99:00:00Z"
    bad = tmp_path / "card.yaml"
    bad.write_text(yaml.safe_dump(card))
    code, err = _eval(bad, HISTORY)
    assert code == 2
    assert "$.model.created" in err and "date-time" in err


def test_eval_refuses_free_text_approval_time(tmp_path: Path) -> None:
    """A history whose approval time is 'yesterday' exits 2 naming its path."""
    history = yaml.safe_load(HISTORY.read_text())
    history["approvals"][0]["time"] = "yesterday"
    bad = tmp_path / "history.yaml"
    bad.write_text(yaml.safe_dump(history))
    code, err = _eval(CARD, bad)
    assert code == 2
    assert "$.approvals[0].time" in err and "date-time" in err


def test_eval_accepts_the_example() -> None:
    """The example card and history still evaluate (exit 0)."""
    assert _eval(CARD, HISTORY) == (0, "")
