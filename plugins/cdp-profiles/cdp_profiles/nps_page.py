"""The NPS report as one self-contained HTML page (docs/nps.md, "The report").

Inline CSS and SVG only: no scripts, fonts, images or links to fetch, so the page reads the
same mailed, archived or opened without a network. Everything from the store (survey names,
trait values, comments) is HTML-escaped: comments are untrusted input.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Any

from cdp_core.timeutil import utc_now

from cdp_profiles.nps import LOW_N, NpsFigure, NpsGroup
from cdp_profiles.nps_chart import trend_chart
from cdp_profiles.nps_format import COLOURS, interval_text, pct, points
from cdp_profiles.nps_segments import SegmentSplit

if TYPE_CHECKING:
    from cdp_profiles.nps_report import NpsReport

MAX_DRIVERS = 25
CSS = """
*, *::before, *::after { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #1f2328; margin: 0; background: #f4f5f7; }
main { max-width: 1040px; margin: 0 auto; padding: 32px 28px 56px; }
header h1 { font-size: 26px; margin: 0 0 6px; letter-spacing: -0.01em; }
.meta { display: flex; flex-wrap: wrap; gap: 6px 22px; color: #57606a; font-size: 13.5px; }
.meta b { color: #1f2328; font-weight: 600; }
h2 { font-size: 18px; margin: 36px 0 4px; } h2 + .muted { margin-bottom: 10px; }
h3 { font-size: 15px; margin: 0 0 8px; }
.muted { color: #57606a; font-size: 13px; }
.card { background: #fff; border: 1px solid #dfe2e6; border-radius: 10px; padding: 18px 22px; margin-top: 14px;
  box-shadow: 0 1px 2px rgba(31, 35, 40, 0.04); overflow-x: auto; }
#drivers table { font-size: 13px; } #drivers th, #drivers td { padding: 7px 7px; }
.headline { display: flex; gap: 48px; align-items: center; flex-wrap: wrap; }
.score { font-size: 64px; font-weight: 700; line-height: 1; letter-spacing: -0.02em; }
.score-label { text-transform: uppercase; font-size: 12px; letter-spacing: 0.06em; color: #57606a; font-weight: 600; }
.interval { font-size: 15px; color: #1f2328; margin-top: 6px; }
.counts { display: grid; grid-template-columns: auto auto auto; gap: 4px 16px; font-size: 14px; }
.counts b { font-variant-numeric: tabular-nums; text-align: right; }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 7px; }
.bar { display: flex; height: 10px; width: 150px; border-radius: 3px; overflow: hidden; background: #eceef1; }
.bar.wide { width: 100%; height: 14px; margin-top: 18px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { padding: 7px 10px; border-bottom: 1px solid #eceef1; text-align: right; font-variant-numeric: tabular-nums;
  vertical-align: middle; }
th { font-weight: 600; color: #424a53; background: #f8f9fb; font-size: 13px; }
tbody tr:last-child td { border-bottom: none; }
td { white-space: nowrap; } td.l, th.l { text-align: left; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 24px; margin-top: 8px; font-size: 12.5px; color: #57606a; }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
tr.low td { color: #8a6d00; }
.pos { color: #1a7f37; } .neg { color: #cf222e; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; }
.badge.yes { background: #dafbe1; color: #116329; } .badge.no { background: #eef0f3; color: #57606a; }
.warn { background: #fff8e1; border: 1px solid #f0d98c; border-radius: 8px; padding: 9px 14px; font-size: 13px; }
.warn ul { margin: 6px 0 0; padding-left: 20px; } .warn summary { cursor: pointer; }
.verbatims { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 14px; margin-top: 14px; }
.verbatims .card { margin-top: 0; border-top-width: 4px; }
.terms { display: flex; flex-wrap: wrap; gap: 6px; margin: 6px 0 12px; }
.term { background: #f1f3f5; border-radius: 12px; padding: 2px 9px; font-size: 12.5px; }
.term i { font-style: normal; color: #6e7781; margin-left: 4px; }
blockquote { margin: 0 0 10px; padding: 8px 12px; background: #f8f9fb; border-radius: 6px; font-size: 13.5px;
  overflow-wrap: anywhere; }
blockquote footer { color: #6e7781; font-size: 12px; margin-top: 4px; }
.empty { color: #6e7781; font-style: italic; font-size: 13px; }
svg { width: 100%; height: auto; display: block; }
svg text { font: 12px system-ui, sans-serif; fill: #57606a; } svg text.small { font-size: 10px; fill: #8c959f; }
.method { margin-top: 40px; color: #57606a; font-size: 12.5px; line-height: 1.6; }
@media (max-width: 760px) { .verbatims { grid-template-columns: 1fr; } }
@media print { body { background: #fff; } .card { box-shadow: none; break-inside: avoid; } }
"""
_CATEGORIES = (
    ("promoter", "Promoters", "9-10"),
    ("passive", "Passives", "7-8"),
    ("detractor", "Detractors", "0-6"),
)


def _signed_class(value: float | None) -> str:
    if value is None or round(value, 1) == 0:
        return ""
    return "pos" if value > 0 else "neg"


def bar(figure: NpsFigure, wide: bool = False) -> str:
    cls = "bar wide" if wide else "bar"
    if not figure.n:
        return f'<div class="{cls}"></div>'
    parts = [("promoter", figure.promoters), ("passive", figure.passives), ("detractor", figure.detractors)]
    cells = "".join(
        f'<div style="width:{100 * count / figure.n:.3f}%;background:{COLOURS[name]}" title="{name}s: {count}"></div>'
        for name, count in parts
        if count
    )
    return f'<div class="{cls}">{cells}</div>'


def headline(figure: NpsFigure) -> str:
    if not figure.n:
        return '<section id="headline" class="card"><p><b>No NPS answers</b> match this report.</p></section>'
    rows = "".join(
        f'<span><i class="dot" style="background:{COLOURS[name]}"></i>{label} ({scores})</span>'
        f"<b>{count:,}</b><span>{pct(share)}</span>"
        for (name, label, scores), count, share in zip(
            _CATEGORIES,
            (figure.promoters, figure.passives, figure.detractors),
            (figure.pct_promoters, figure.pct_passives, figure.pct_detractors),
            strict=True,
        )
    )
    low = f'<p class="warn">Only {figure.n} answers: read this figure with care.</p>' if figure.low_n else ""
    return (
        '<section id="headline" class="card"><div class="headline">'
        f'<div><div class="score-label">Net Promoter Score</div>'
        f'<div class="score" id="headline-nps">{points(figure.nps)}</div>'
        f'<div class="interval">95 % interval <b>{interval_text(figure)}</b></div>'
        f'<div class="muted">{figure.n:,} answers</div></div>'
        f'<div class="counts">{rows}</div></div>{bar(figure, wide=True)}{low}</section>'
    )


def figure_table(first: str, rows: Sequence[tuple[str, NpsFigure]], smoothed: Sequence[float | None] = ()) -> str:
    heads = [first, "NPS", *(["smoothed"] if smoothed else []), "95 % interval", "n", "promoters", "passives",
             "detractors", "mix"]  # fmt: skip
    head = "".join(f'<th class="{"l" if i == 0 else ""}">{escape(h)}</th>' for i, h in enumerate(heads))
    body = []
    for i, (label, f) in enumerate(rows):
        cls = ' class="low"' if f.n and f.low_n else ""
        smooth = f"<td>{points(smoothed[i])}</td>" if smoothed else ""
        body.append(
            f'<tr{cls}><td class="l">{escape(label)}</td><td><b>{points(f.nps)}</b></td>{smooth}'
            f"<td>{interval_text(f)}</td><td>{f.n:,}</td><td>{pct(f.pct_promoters)}</td>"
            f"<td>{pct(f.pct_passives)}</td><td>{pct(f.pct_detractors)}</td><td>{bar(f)}</td></tr>"
        )
    return f'<div class="card"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def breakdown(trait: str, groups: Sequence[NpsGroup]) -> str:
    return f"<h2>By {escape(trait)}</h2>" + figure_table(trait, [(g.label, g.figure) for g in groups])


def _difference_bar(diff: float, low: float, high: float, width: int = 110, height: int = 16) -> str:
    """A diverging bar of ``diff`` (points, -100..100 mapped to the width) with its interval as a whisker."""

    def x(v: float) -> float:
        return width / 2 + max(-100.0, min(100.0, v)) / 200 * width

    colour = COLOURS["promoter"] if diff >= 0 else COLOURS["detractor"]
    start, end = sorted((x(0), x(diff)))
    mid = height / 2
    return (
        f'<svg class="diff" viewBox="0 0 {width} {height}" width="{width}" height="{height}" aria-hidden="true" '
        f'style="width:{width}px">'
        f'<rect x="{start:.1f}" y="3" width="{max(end - start, 1):.1f}" height="{height - 6}" fill="{colour}" '
        f'fill-opacity="0.75" rx="2"/><line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="{mid}" y2="{mid}" '
        f'stroke="#1f2328" stroke-width="1.2"/><line x1="{width / 2}" x2="{width / 2}" y1="0" y2="{height}" '
        'stroke="#8c959f"/></svg>'
    )


def drivers_section(rows: Sequence[dict[str, Any]]) -> str:
    intro = (
        '<h2>What drives the score</h2><p class="muted">NPS of each group against everyone else\'s, ranked by '
        "effect; the interval is the 95 % interval of the difference, p adjusted for the number of comparisons.</p>"
    )
    if not rows:
        return f'{intro}<section id="drivers" class="card"><p class="empty">No factor to compare: no group and its rest both have enough answers (<code>--min-n</code>).</p></section>'
    heads = ("Factor", "Group", "n group", "NPS group", "n rest", "NPS rest", "Difference", "95 % interval", "",
             "p (adjusted)", "Significant")  # fmt: skip
    head = "".join(f'<th class="{"l" if i < 2 else ""}">{escape(h)}</th>' for i, h in enumerate(heads))
    body = []
    for d in rows[:MAX_DRIVERS]:
        diff, low, high = float(d["difference"]), float(d["ci_low"]), float(d["ci_high"])
        sig = d.get("significant")
        body.append(
            f'<tr><td class="l">{escape(str(d["factor"]))}</td><td class="l">{escape(str(d["group"]))}</td>'
            f"<td>{int(d['n_group']):,}</td><td>{points(d['nps_group'])}</td><td>{int(d['n_rest']):,}</td>"
            f'<td>{points(d["nps_rest"])}</td><td class="{_signed_class(diff)}"><b>{points(diff)}</b></td>'
            f"<td>{points(low)} to {points(high)}</td><td>{_difference_bar(diff, low, high)}</td>"
            f"<td>{float(d['p_adjusted']):.3f}</td>"
            f'<td><span class="badge {"yes" if sig else "no"}">{"yes" if sig else "no"}</span></td></tr>'
        )
    more = len(rows) - MAX_DRIVERS
    tail = f'<p class="muted">{more} more: <code>cdp nps drivers</code> lists them all.</p>' if more > 0 else ""
    return (
        f'{intro}<section id="drivers" class="card"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>{tail}</section>"
    )


def _example(example: dict[str, Any]) -> str:
    when = example.get("answered_at")
    day = escape(str(when)[:10]) if when else "no date"
    return (
        f"<blockquote>{escape(str(example.get('text', '')))}"
        f"<footer>score {escape(str(example.get('score', '')))} · {day}</footer></blockquote>"
    )


def verbatims_section(verbatims: dict[str, Any]) -> str:
    cards = []
    for name, label, scores in _CATEGORIES:
        entry = verbatims.get(name) or {}
        n = int(entry.get("n_comments", 0))
        terms = "".join(
            f'<span class="term">{escape(str(term))}<i>×{int(count)}</i></span>'
            for term, count in entry.get("terms", [])
        )
        examples = "".join(_example(e) for e in entry.get("examples", []))
        inner = (
            f'<div class="terms">{terms}</div>{examples}' if n else '<p class="empty">No comments in this category.</p>'
        )
        comments = "comment" if n == 1 else "comments"
        cards.append(
            f'<section class="card verbatim" id="verbatims-{name}" style="border-top-color:{COLOURS[name]}">'
            f'<h3>{label} <span class="muted">({scores}) · {n:,} {comments}</span></h3>{inner}</section>'
        )
    return (
        '<h2>What they say</h2><p class="muted">Comments per category: the most frequent terms and the newest '
        f'comments.</p><div id="verbatims" class="verbatims">{"".join(cards)}</div>'
    )


def segments_section(splits: Sequence[SegmentSplit]) -> str:
    intro = '<h2>By segment</h2><p class="muted">NPS of the answers of each segment\'s members against the rest.</p>'
    if not splits:
        return f'{intro}<section id="segments" class="card"><p class="empty">No segment is configured.</p></section>'
    heads = ("Segment", "NPS in", "95 % interval", "n in", "mix in", "NPS out", "n out", "mix out", "Difference")
    head = "".join(f'<th class="{"l" if i == 0 else ""}">{h}</th>' for i, h in enumerate(heads))
    body = []
    for s in splits:
        cls = ' class="low"' if s.inside.n and s.inside.low_n else ""
        diff = s.difference
        body.append(
            f'<tr{cls}><td class="l">{escape(s.segment)}</td><td><b>{points(s.inside.nps)}</b></td>'
            f"<td>{interval_text(s.inside)}</td><td>{s.inside.n:,}</td><td>{bar(s.inside)}</td>"
            f"<td>{points(s.outside.nps)}</td><td>{s.outside.n:,}</td><td>{bar(s.outside)}</td>"
            f'<td class="{_signed_class(diff)}"><b>{points(diff)}</b></td></tr>'
        )
    return (
        f'{intro}<section id="segments" class="card"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></section>"
    )


def _day(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d") if moment else "…"


def meta(report: NpsReport) -> str:
    from cdp_profiles.nps_report import describe

    f = report.filters
    surveys = [f.survey] if f.survey else report.surveys
    survey_text = ", ".join(surveys) if surveys else "(no survey name)"
    label = "Survey" if len(surveys) <= 1 else "Surveys"
    if report.first_answer or report.last_answer:
        answered = f"{_day(report.first_answer)} to {_day(report.last_answer)}"
    else:
        answered = "no dated answers"
    items = [
        f'<span id="survey">{label}: <b>{escape(survey_text)}</b></span>',
        f'<span id="date-range">Answers: <b>{escape(answered)}</b></span>',
        f"<span>{escape(describe(report))}</span>",
        f"<span>generated {utc_now().strftime('%Y-%m-%d %H:%M UTC')}</span>",
    ]
    return f'<div class="meta">{"".join(items)}</div>'


def render(report: NpsReport, title: str = "Net Promoter Score") -> str:
    """The whole page for ``report`` (its trend should be filled: the page always shows one)."""
    body = [f"<header><h1>{escape(title)}</h1>{meta(report)}</header>", headline(report.summary)]
    warnings = report.warnings()
    if warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
        what = "warning" if len(warnings) == 1 else "warnings"
        body.append(
            f'<details class="card warn"><summary><b>{len(warnings)} {what}</b>: figures from fewer than {LOW_N} '
            f"answers (marked in the tables) have wide intervals</summary><ul>{items}</ul></details>"
        )
    if report.period is not None:
        unit = "week (ISO)" if report.period == "week" else "month"
        smooth_label = report.smoothing.label if report.smoothing else ""
        note = f" with the smoothed NPS ({escape(smooth_label)})" if report.smoothing else ""
        body.append(f'<h2>Trend per {unit}</h2><p class="muted">NPS per {unit}{note}.</p>')
        body.append(
            f'<section id="trend" class="card">{trend_chart(report.trend, report.smoothed, smooth_label)}</section>'
        )
        smoothed = [s.nps for s in report.smoothed] if report.smoothing else []
        body.append(figure_table(report.period, [(p.period, p.figure) for p in report.trend], smoothed))
    if report.drivers is not None:
        body.append(drivers_section(report.drivers))
    if report.verbatims is not None:
        body.append(verbatims_section(report.verbatims))
    if report.segments is not None:
        body.append(segments_section(report.segments))
    for trait, groups in report.breakdowns.items():
        body.append(breakdown(trait, groups))
    body.append(
        '<p class="method">NPS = % promoters (9-10) − % detractors (0-6), in points from −100 to +100. '
        "Each figure shows its 95 % interval, in points; figures from fewer than "
        f"{LOW_N} answers are marked. Smoothed values pool the counts of the periods they cover "
        "(a moving average) or weigh them exponentially, so each period weighs as much as its answers.</p>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )
