"""Pure parts of the pages: session cookies and the SVG charts."""

from __future__ import annotations

from policyengine.service.pages.charts import line_chart, series_from_cards
from policyengine.service.pages.session import SESSION_SECONDS, SessionKeys


class _Signer:
    def __init__(self, seed: bytes) -> None:
        self.seed = seed

    def sign(self, msg: bytes) -> bytes:
        return self.seed + msg


def test_session_cookie_round_trips_and_refuses_forgery():
    """A cookie names its token reference until it expires; a changed or foreign one is refused."""
    keys = SessionKeys(_Signer(b"a"))
    value = keys.issue("ab" * 32, now=1000.0)
    assert keys.check(value, now=1001.0) == "ab" * 32
    assert keys.check(value, now=1000.0 + SESSION_SECONDS + 1) is None
    body, mac = value.split(".")
    assert keys.check(body + "." + "0" * len(mac), now=1001.0) is None
    assert SessionKeys(_Signer(b"b")).check(value, now=1001.0) is None
    assert keys.check("garbage", now=1001.0) is None


def test_charts_from_cards_are_inline_svg_without_fetches():
    """One chart per metric and fairness metric; SVG with no style attribute, script or URL."""
    cards = [("1.0", {"metrics": [{"name": "auc", "value": 0.7, "dataset": "holdout"}],
                      "fairness": [{"metric": "dp_ratio", "value": 0.9,
                                    "protected_attribute": "sex"}]}),
             ("2.0", {"metrics": [{"name": "auc", "value": 0.85, "dataset": "holdout"}]})]
    series = series_from_cards(cards)
    assert [s.title for s in series] == ["fairness: dp_ratio", "metric: auc"]
    svg = line_chart(series[1], ["1.0", "2.0"])
    assert svg.startswith("<svg") and "<polyline" in svg and svg.count("<circle") == 2
    assert "style=" not in svg and "<script" not in svg and "href" not in svg


def test_chart_escapes_labels():
    """Versions and labels from cards are escaped in the SVG."""
    series = series_from_cards([("<b>", {"metrics": [{"name": "x<y", "value": 1}]})])
    svg = line_chart(series[0], ["<b>"])
    assert "<b>" not in svg and "&lt;b&gt;" in svg and "x&lt;y" in svg
