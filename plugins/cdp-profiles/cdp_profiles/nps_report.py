"""An NPS report: the figures `cdp nps` shows (:func:`report`) and their HTML page (:func:`render`).

The page is self-contained: inline CSS and an inline SVG trend chart, no external assets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from cdp_core.timeutil import utc_now
from sqlalchemy import Engine

from cdp_profiles.nps import (
    LOW_N,
    NONE_LABEL,
    Filters,
    NpsFigure,
    NpsGroup,
    NpsPeriod,
    Period,
    by_trait,
    summary,
    trend,
)

COLOURS = {"promoter": "#1a9850", "passive": "#bdbdbd", "detractor": "#d73027", "line": "#2c5aa0", "band": "#2c5aa0"}

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 0; background: #f6f7f9; }
main { max-width: 980px; margin: 0 auto; padding: 28px 24px 48px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 32px 0 10px; }
.muted { color: #666; font-size: 13px; }
.card { background: #fff; border: 1px solid #e2e4e8; border-radius: 8px; padding: 18px 20px; margin-top: 16px; }
.headline { display: flex; gap: 36px; align-items: center; flex-wrap: wrap; }
.score { font-size: 56px; font-weight: 700; line-height: 1; }
.score small { font-size: 20px; font-weight: 500; color: #555; margin-left: 6px; }
.counts { display: grid; grid-template-columns: auto auto auto; gap: 2px 14px; font-size: 14px; }
.counts b { font-variant-numeric: tabular-nums; text-align: right; }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
.bar { display: flex; height: 12px; width: 160px; border-radius: 3px; overflow: hidden; background: #eee; }
.bar.wide { width: 100%; height: 16px; margin-top: 14px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { padding: 6px 10px; border-bottom: 1px solid #eceef1; text-align: right; font-variant-numeric: tabular-nums; }
th { font-weight: 600; color: #444; background: #fafbfc; }
th:first-child, td:first-child, th:last-child { text-align: left; }
tr.low td { color: #8a6d00; }
.warn { background: #fff8e1; border: 1px solid #f0d98c; border-radius: 6px; padding: 8px 12px; font-size: 13px; }
.warn ul { margin: 6px 0 0; padding-left: 20px; } .warn summary { cursor: pointer; }
svg { width: 100%; height: auto; display: block; }
svg text { font: 12px system-ui, sans-serif; fill: #555; } svg text.small { font-size: 10px; fill: #888; }
"""


# -- the report: everything `cdp nps` shows --------------------------------------------


@dataclass
class NpsReport:
    filters: Filters
    summary: NpsFigure
    breakdowns: dict[str, list[NpsGroup]] = field(default_factory=dict)
    period: Period | None = None
    trend: list[NpsPeriod] = field(default_factory=list)
    unknown_traits: list[str] = field(default_factory=list)
    """Traits asked for that no answering profile has."""

    def warnings(self) -> list[str]:
        """One line per figure with fewer than LOW_N answers (figures without any answers aside)."""
        out = []
        if self.summary.low_n and self.summary.n:
            out.append(f"all answers: {_few(self.summary)}")
        for trait, groups in self.breakdowns.items():
            out.extend(f"{trait} = {g.label}: {_few(g.figure)}" for g in groups if g.figure.low_n and g.figure.n)
        out.extend(f"{p.period}: {_few(p.figure)}" for p in self.trend if p.figure.low_n and p.figure.n)
        out.extend(
            f"no answering profile has a trait {t!r}: all answers are under {NONE_LABEL}" for t in self.unknown_traits
        )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "filters": self.filters.to_dict(),
            "summary": self.summary.to_dict(),
            "by": {trait: [g.to_dict() for g in groups] for trait, groups in self.breakdowns.items()},
            "period": self.period,
            "trend": [p.to_dict() for p in self.trend],
            "warnings": self.warnings(),
        }


def _few(figure: NpsFigure) -> str:
    answers = "answer" if figure.n == 1 else "answers"
    moe = figure.margin_of_error or 0.0
    return f"only {figure.n} {answers} (fewer than {LOW_N}), NPS {points(figure.nps)} ± {moe:.1f} points is not reliable"


def report(
    engine: Engine,
    filters: Filters | None = None,
    by: Sequence[str] = (),
    period: Period | None = None,
) -> NpsReport:
    """Summary, breakdowns by each trait in ``by`` and the trend per ``period`` (if any), for the same answers."""
    filters = filters or Filters()
    kwargs = filters.kwargs()
    result = NpsReport(filters=filters, summary=summary(engine, **kwargs), period=period)
    for trait in dict.fromkeys(by):
        groups = by_trait(engine, trait, **kwargs)
        result.breakdowns[trait] = groups
        if result.summary.n and all(g.value is None for g in groups):
            result.unknown_traits.append(trait)
    if period is not None:
        result.trend = trend(engine, period, **kwargs)
    return result


# -- the HTML page ----------------------------------------------------------------------


def points(value: float | None, signed: bool = True) -> str:
    if value is None:
        return "–"
    return f"{value:+.1f}" if signed and round(value, 1) != 0 else f"{value:.1f}"


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} %"


def bar(figure: NpsFigure, wide: bool = False) -> str:
    if not figure.n:
        return f'<div class="bar{" wide" if wide else ""}"></div>'
    parts = [("promoter", figure.promoters), ("passive", figure.passives), ("detractor", figure.detractors)]
    cells = "".join(
        f'<div style="width:{100 * count / figure.n:.3f}%;background:{COLOURS[name]}" title="{name}s: {count}"></div>'
        for name, count in parts
        if count
    )
    return f'<div class="bar{" wide" if wide else ""}">{cells}</div>'


def headline(figure: NpsFigure) -> str:
    if not figure.n:
        return '<div class="card"><p><b>No NPS answers</b> match this report.</p></div>'
    rows = "".join(
        f'<span><i class="dot" style="background:{COLOURS[name]}"></i>{label}</span>'
        f"<b>{count:,}</b><span>{pct(share)}</span>"
        for name, label, count, share in (
            ("promoter", "Promoters (9-10)", figure.promoters, figure.pct_promoters),
            ("passive", "Passives (7-8)", figure.passives, figure.pct_passives),
            ("detractor", "Detractors (0-6)", figure.detractors, figure.pct_detractors),
        )
    )
    low = f'<p class="warn">Only {figure.n} answers: read this figure with care.</p>' if figure.low_n else ""
    return (
        '<div class="card"><div class="headline">'
        f'<div><div class="muted">Net Promoter Score</div><div class="score">{points(figure.nps)}'
        f"<small>± {points(figure.margin_of_error, False)}</small></div>"
        f'<div class="muted">{figure.n:,} answers · 95 % margin of error in points</div></div>'
        f'<div class="counts">{rows}</div></div>{bar(figure, wide=True)}{low}</div>'
    )


def figure_table(first: str, rows: Sequence[tuple[str, NpsFigure]]) -> str:
    head = "".join(
        f"<th>{h}</th>" for h in (escape(first), "NPS", "± points", "n", "promoters", "passives", "detractors", "mix")
    )
    body = []
    for label, f in rows:
        cls = ' class="low"' if f.n and f.low_n else ""
        body.append(
            f"<tr{cls}><td>{escape(label)}</td><td><b>{points(f.nps)}</b></td><td>{points(f.margin_of_error, False)}</td>"
            f"<td>{f.n:,}</td><td>{pct(f.pct_promoters)}</td><td>{pct(f.pct_passives)}</td>"
            f"<td>{pct(f.pct_detractors)}</td><td>{bar(f)}</td></tr>"
        )
    return f'<div class="card"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def breakdown(trait: str, groups: Sequence[NpsGroup]) -> str:
    return f"<h2>By {escape(trait)}</h2>" + figure_table(trait, [(g.label, g.figure) for g in groups])


def _ticks(lo: float, hi: float) -> list[int]:
    step = next(s for s in (5, 10, 20, 25, 50) if (hi - lo) / s <= 8)
    return list(range(int(math.ceil(lo / step) * step), int(hi) + 1, step))


def trend_chart(trend: Sequence[NpsPeriod], width: int = 900, height: int = 300) -> str:
    """NPS per period as a line, the 95 % margin of error as a shaded band and whiskers; hollow dots: n < 30."""
    known = {
        i: (p.figure.nps, p.figure.margin_of_error or 0.0) for i, p in enumerate(trend) if p.figure.nps is not None
    }
    if not known:
        return '<p class="muted">No dated answers for a trend.</p>'
    lo = max(-100.0, math.floor((min(min(v - m for v, m in known.values()), 0) - 5) / 10) * 10)
    hi = min(100.0, math.ceil((max(max(v + m for v, m in known.values()), 0) + 5) / 10) * 10)
    left, right, top, bottom = 48, 16, 14, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / len(trend)

    def x(i: int) -> float:
        return left + step * (i + 0.5)

    def y(v: float) -> float:
        return top + plot_h * (hi - max(lo, min(hi, v))) / (hi - lo)

    label = "NPS trend per period with 95 % margin of error"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" aria-label="{label}">']
    for tick in _ticks(lo, hi):
        colour = "#999" if tick == 0 else "#e5e7eb"
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="{colour}"/>')
        out.append(
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:+d}</text>'.replace("+0<", "0<")
        )
    runs: list[list[int]] = [[]]  # consecutive periods with answers: one band and line each
    for i in range(len(trend)):
        if i in known:
            runs[-1].append(i)
        else:
            runs.append([])
    for run in (r for r in runs if len(r) > 1):
        upper = [f"{x(i):.1f},{y(known[i][0] + known[i][1]):.1f}" for i in run]
        lower = [f"{x(i):.1f},{y(known[i][0] - known[i][1]):.1f}" for i in reversed(run)]
        out.append(f'<polygon points="{" ".join(upper + lower)}" fill="{COLOURS["band"]}" fill-opacity="0.13"/>')
        line = " ".join(f"{x(i):.1f},{y(known[i][0]):.1f}" for i in run)
        out.append(f'<polyline points="{line}" fill="none" stroke="{COLOURS["line"]}" stroke-width="2"/>')
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
        f, (value, moe) = p.figure, known[i]
        cx, cy = x(i), y(value)
        out.append(
            f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y(value + moe):.1f}" y2="{y(value - moe):.1f}" '
            f'stroke="{COLOURS["line"]}" stroke-opacity="0.55"/>'
        )
        fill = "#fff" if f.low_n else COLOURS["line"]
        tip = f"{p.period}: NPS {points(value)} ± {points(moe, False)} ({f.n} answers)"
        out.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="{fill}" stroke="{COLOURS["line"]}" stroke-width="2">'
            f"<title>{escape(tip)}</title></circle>"
        )
    out.append(
        f'<text x="{left}" y="{height - 6}">NPS per period · band and whiskers: 95 % margin of error · '
        f"hollow dots: fewer than {LOW_N} answers</text>"
    )
    out.append("</svg>")
    return "\n".join(out)


def describe(report: NpsReport) -> str:
    f = report.filters
    parts = ["every answer counts" if not f.latest_per_person else "each person's latest answer only"]
    if f.since or f.until:
        parts.append(f"answered {f.since.isoformat() if f.since else '…'} to {f.until.isoformat() if f.until else '…'}")
    if f.survey:
        parts.append(f"survey {f.survey}")
    if f.segment:
        parts.append(f"segment {f.segment}")
    return "; ".join(parts)


def render(report: NpsReport, title: str = "Net Promoter Score") -> str:
    """The whole page for ``report`` (its trend should be filled: the page always shows one)."""
    now = utc_now().strftime("%Y-%m-%d %H:%M UTC")
    body = [f"<h1>{escape(title)}</h1>", f'<div class="muted">{escape(describe(report))} · generated {now}</div>']
    body.append(headline(report.summary))
    warnings = report.warnings()
    if warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
        what = "warning" if len(warnings) == 1 else "warnings"
        body.append(
            f'<details class="card warn"><summary><b>{len(warnings)} {what}</b>: figures from fewer than {LOW_N} '
            f"answers (marked in the tables) have wide margins of error</summary><ul>{items}</ul></details>"
        )
    if report.period is not None:
        unit = "week (ISO)" if report.period == "week" else "month"
        body.append(f"<h2>Trend per {unit}</h2>")
        body.append(f'<div class="card">{trend_chart(report.trend)}</div>')
        body.append(figure_table(report.period, [(p.period, p.figure) for p in report.trend]))
    for trait, groups in report.breakdowns.items():
        body.append(breakdown(trait, groups))
    body.append(
        '<p class="muted">NPS = % promoters (9-10) − % detractors (0-6), in points from −100 to +100. '
        "Margin of error: half the 95 % adjusted Wald interval (Rocks 2016: 3/4 of a promoter, 3/2 of a passive "
        "and 3/4 of a detractor added, then 1.96 · √((p + d − (p − d)²) / n) on the adjusted shares), "
        f"clamped to ±100; figures from fewer than {LOW_N} answers are marked.</p>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )
