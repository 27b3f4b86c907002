"""The NPS trend as an inline SVG chart: raw NPS per period with its 95 % interval, and the smoothed line."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from cdp_profiles.nps import LOW_N, NpsPeriod
from cdp_profiles.nps_format import COLOURS, interval_of, points
from cdp_profiles.nps_smoothing import Smoothed


def _ticks(lo: float, hi: float) -> list[int]:
    step = next(s for s in (5, 10, 20, 25, 50) if (hi - lo) / s <= 8)
    return list(range(int(math.ceil(lo / step) * step), int(hi) + 1, step))


def _runs(indexes: set[int], length: int) -> list[list[int]]:
    """Consecutive indexes of ``range(length)`` that are in ``indexes``."""
    runs: list[list[int]] = [[]]
    for i in range(length):
        if i in indexes:
            runs[-1].append(i)
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


def trend_chart(
    trend: Sequence[NpsPeriod],
    smoothed: Sequence[Smoothed] = (),
    smooth_label: str = "",
    width: int = 900,
    height: int = 300,
) -> str:
    """NPS per period as a line with its 95 % interval as a band and whiskers (hollow dots: n < 30), and
    the smoothed NPS as a second line when ``smoothed`` is given."""
    known: dict[int, tuple[float, float, float]] = {}
    for i, p in enumerate(trend):
        span = interval_of(p.figure)
        if p.figure.nps is not None and span is not None:
            known[i] = (p.figure.nps, span[0], span[1])
    if not known:
        return '<p class="muted">No dated answers for a trend.</p>'
    smooth = {i: s.nps for i, s in enumerate(smoothed) if s.nps is not None and i < len(trend)}
    values = [lo for _, lo, _ in known.values()] + [hi for _, _, hi in known.values()] + list(smooth.values())
    lo = max(-100.0, math.floor((min(min(values), 0) - 5) / 10) * 10)
    hi = min(100.0, math.ceil((max(max(values), 0) + 5) / 10) * 10)
    left, right, top, bottom = 48, 16, 14, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / len(trend)

    def x(i: int) -> float:
        return left + step * (i + 0.5)

    def y(v: float) -> float:
        return top + plot_h * (hi - max(lo, min(hi, v))) / (hi - lo)

    label = "NPS trend per period with its 95 % interval" + (" and the smoothed NPS" if smooth else "")
    out = [
        (
            f'<svg id="trend-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{label}">'
        )
    ]
    for tick in _ticks(lo, hi):
        colour = "#9aa0a6" if tick == 0 else "#e5e7eb"
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="{colour}"/>')
        text = "0" if tick == 0 else f"{tick:+d}"
        out.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{text}</text>')
    for run in _runs(set(known), len(trend)):
        if len(run) > 1:
            upper = [f"{x(i):.1f},{y(known[i][2]):.1f}" for i in run]
            lower = [f"{x(i):.1f},{y(known[i][1]):.1f}" for i in reversed(run)]
            out.append(f'<polygon points="{" ".join(upper + lower)}" fill="{COLOURS["band"]}" fill-opacity="0.12"/>')
            line = " ".join(f"{x(i):.1f},{y(known[i][0]):.1f}" for i in run)
            out.append(f'<polyline points="{line}" fill="none" stroke="{COLOURS["line"]}" stroke-width="2"/>')
    for run in _runs(set(smooth), len(trend)):
        line = " ".join(f"{x(i):.1f},{y(smooth[i]):.1f}" for i in run)
        out.append(
            f'<polyline class="smoothed" points="{line}" fill="none" stroke="{COLOURS["smooth"]}" '
            'stroke-width="2.5" stroke-dasharray="7 4" stroke-linejoin="round"/>'
        )
    every = max(1, math.ceil(len(trend) / 12))
    for i, p in enumerate(trend):
        if i % every == 0:
            out.append(
                f'<text x="{x(i):.1f}" y="{height - bottom + 17}" text-anchor="middle">{escape(p.period)}</text>'
            )
            out.append(
                f'<text x="{x(i):.1f}" y="{height - bottom + 30}" text-anchor="middle" class="small">n={p.figure.n}</text>'
            )
        if i not in known:
            continue
        value, low, high = known[i]
        cx = x(i)
        out.append(
            f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y(high):.1f}" y2="{y(low):.1f}" '
            f'stroke="{COLOURS["line"]}" stroke-opacity="0.5"/>'
        )
        fill = "#fff" if p.figure.low_n else COLOURS["line"]
        tip = f"{p.period}: NPS {points(value)}, 95 % interval {points(low)} to {points(high)} ({p.figure.n} answers)"
        if i in smooth:
            tip += f"; smoothed {points(smooth[i])}"
        out.append(
            f'<circle cx="{cx:.1f}" cy="{y(value):.1f}" r="4" fill="{fill}" stroke="{COLOURS["line"]}" '
            f'stroke-width="2"><title>{escape(tip)}</title></circle>'
        )
    out.append("</svg>")
    return "\n".join(out) + legend(bool(smooth), smooth_label)


def _swatch(colour: str, dashed: bool = False) -> str:
    dash = ' stroke-dasharray="7 4"' if dashed else ""
    return (
        f'<svg width="26" height="10" viewBox="0 0 26 10" aria-hidden="true" style="width:26px;display:inline">'
        f'<line x1="1" x2="25" y1="5" y2="5" stroke="{colour}" stroke-width="2.5"{dash}/></svg>'
    )


def legend(smoothed: bool, smooth_label: str) -> str:
    """The chart's legend, as HTML below it (text wraps; no overlap at any width)."""
    items = [
        (
            f"<span>{_swatch(COLOURS['line'])} NPS per period (band and whiskers: 95 % interval; hollow dots: "
            f"fewer than {LOW_N} answers)</span>"
        )
    ]
    if smoothed:
        items.append(f"<span>{_swatch(COLOURS['smooth'], True)} smoothed: {escape(smooth_label)}</span>")
    return f'<div class="legend">{"".join(items)}</div>'
