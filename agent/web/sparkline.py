"""Inline SVG sparklines of a check's recent values, with its warning and critical bounds.

Hand-drawn (a polyline and two dashed lines): a sparkline is a few dozen points, and drawing it
here keeps a plotting library out of every page view. The markup is built from numbers only;
the title text is escaped.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT, PAD = 160, 34, 3
STATE_COLOURS = {"OK": "#1b7f3b", "WARNING": "#a86b00", "CRITICAL": "#b3261e", "UNKNOWN": "#5b3cc4"}


def sparkline(values: Sequence[tuple[datetime, float, str]], warning: float | None = None,
              critical: float | None = None, title: str = "") -> Markup:
    """An ``<svg class="spark">`` of ``(time, value, state)`` points, oldest first; an empty
    string with fewer than two points. Bounds outside the values' range widen the scale so the
    operator sees how far the value is from them."""
    if len(values) < 2:
        return Markup("")
    ys = [v for _, v, _ in values]
    bounds = [b for b in (warning, critical) if b is not None]
    lo, hi = min(ys + bounds), max(ys + bounds)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    t0, t1 = values[0][0].timestamp(), values[-1][0].timestamp()
    span = (t1 - t0) or 1.0

    def x(t: datetime) -> float:
        return PAD + (t.timestamp() - t0) / span * (WIDTH - 2 * PAD)

    def y(v: float) -> float:
        return HEIGHT - PAD - (v - lo) / (hi - lo) * (HEIGHT - 2 * PAD)

    points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v, _ in values)
    last_t, last_v, last_state = values[-1]
    parts = [f'<svg class="spark" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>"]
    for bound, colour in ((warning, STATE_COLOURS["WARNING"]), (critical, STATE_COLOURS["CRITICAL"])):
        if bound is not None:
            parts.append(f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{y(bound):.1f}" y2="{y(bound):.1f}" '
                         f'stroke="{colour}" stroke-width="1" stroke-dasharray="3 2"/>')
    parts.append(f'<polyline fill="none" stroke="#333" stroke-width="1.4" points="{points}"/>')
    parts.append(f'<circle cx="{x(last_t):.1f}" cy="{y(last_v):.1f}" r="2.6" '
                 f'fill="{STATE_COLOURS.get(last_state, "#333")}"/></svg>')
    return Markup("".join(parts))
