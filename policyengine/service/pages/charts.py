"""Charts of a model's metrics and fairness results across its versions, as inline SVG.

Pure: cards in, SVG text out. Rendered on the server and embedded in the page,
so nothing is fetched at run time (no CDN, no script); the page's CSP forbids
both. Colours and strokes are SVG presentation attributes, not ``style``
attributes, which the CSP would block.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

__all__ = ["Series", "line_chart", "series_from_cards"]

_W, _H = 420, 200
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 26, 38
_COLOURS = ("#1f5fa8", "#b5461b", "#2e7d32", "#7b3fa0", "#8a6d00", "#00707a")


@dataclass(frozen=True)
class Series:
    """One chart: a title and, per line, a value for each version that has one."""

    title: str
    lines: dict[str, dict[str, float]]
    """Line label -> version -> value."""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def series_from_cards(cards: Iterable[tuple[str, Mapping[str, Any]]]) -> list[Series]:
    """Charts from ``(version, card)`` pairs: one per metric name, one per fairness metric.

    A metric's lines are its datasets/slices; a fairness metric's lines are its
    protected attributes. The last card given for a version wins.
    """
    charts: dict[str, dict[str, dict[str, float]]] = {}
    for version, card in cards:
        for m in card.get("metrics") or []:
            if isinstance(m, Mapping) and (value := _number(m.get("value"))) is not None:
                label = "/".join(str(m[k]) for k in ("dataset", "slice") if m.get(k)) or "value"
                charts.setdefault(f"metric: {m.get('name')}", {}).setdefault(label, {})[
                    version] = value
        for f in card.get("fairness") or []:
            if isinstance(f, Mapping) and (value := _number(f.get("value"))) is not None:
                label = str(f.get("protected_attribute") or f.get("attribute") or "value")
                charts.setdefault(f"fairness: {f.get('metric')}", {}).setdefault(label, {})[
                    version] = value
    return [Series(title, lines) for title, lines in sorted(charts.items())]


def _scale(lo: float, hi: float) -> tuple[float, float]:
    if hi - lo < 1e-12:
        pad = abs(hi) * 0.1 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.1
    return lo - pad, hi + pad


def line_chart(series: Series, versions: Sequence[str]) -> str:
    """An SVG line chart of ``series`` over ``versions`` (x axis, in that order)."""
    values = [v for line in series.lines.values() for v in line.values()]
    lo, hi = _scale(min(values), max(values)) if values else (0.0, 1.0)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    step = plot_w / max(len(versions) - 1, 1)

    def x(i: int) -> float:
        return _LEFT + (i * step if len(versions) > 1 else plot_w / 2)

    def y(v: float) -> float:
        return _TOP + plot_h - (v - lo) / (hi - lo) * plot_h

    title = escape(series.title)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{_W}" height="{_H}" '
             f'viewBox="0 0 {_W} {_H}" role="img" aria-label="{title}">',
             f'<text x="{_LEFT}" y="16" font-size="12" font-weight="bold">{title}</text>',
             f'<line x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_W - _RIGHT}" y2="{_TOP + plot_h}" '
             'stroke="#888"/>',
             f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + plot_h}" stroke="#888"/>']
    for v in (lo, (lo + hi) / 2, hi):
        parts.append(f'<text x="{_LEFT - 4}" y="{y(v) + 4:.1f}" font-size="9" '
                     f'text-anchor="end">{v:.3g}</text>')
    for i, version in enumerate(versions):
        parts.append(f'<text x="{x(i):.1f}" y="{_H - _BOTTOM + 14}" font-size="9" '
                     f'text-anchor="middle">{escape(version)}</text>')
    for n, (label, points) in enumerate(sorted(series.lines.items())):
        colour = _COLOURS[n % len(_COLOURS)]
        xy = [(x(i), y(points[ver])) for i, ver in enumerate(versions) if ver in points]
        if len(xy) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in xy)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                         'stroke-width="2"/>')
        parts += [f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>' for px, py in xy]
        parts.append(f'<text x="{_LEFT + 4 + 110 * n}" y="{_H - 6}" font-size="9" '
                     f'fill="{colour}">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
