"""`cdp nps`: the Net Promoter Score from the store (registered by the plugin)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path

import typer
from cdp_core.cli import common
from cdp_core.cli.common import ConfigOption, JsonOption, emit_json, stderr, stdout
from cdp_core.config import Config
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Engine

from cdp_profiles import nps
from cdp_profiles.cli.reading import RULE_SECTIONS, load_for_reading, open_for_reading, rules_for_reading
from cdp_profiles.nps_format import points
from cdp_profiles.nps_report import NpsReport, describe, render, report, with_details, with_trend
from cdp_profiles.nps_smoothing import Smoothing, parse_smoothing
from cdp_profiles.segments.clock import evaluation_time


class PeriodChoice(StrEnum):
    week = "week"
    month = "month"


ByOption = typer.Option(None, "--by", metavar="TRAIT", help="Break down by this profile trait (repeatable).")
PeriodOption = typer.Option(None, "--period", help="Trend per ISO week or month.")
HtmlOption = typer.Option(None, "--html", metavar="FILE", help="Also write a self-contained HTML report to this file.")
SmoothOption = typer.Option(
    None,
    "--smooth",
    metavar="ma:N|ewma:ALPHA",
    help="Smooth the trend: ma:3 pools the answers of the last 3 periods, ewma:0.3 weighs older periods by 0.7^k.",
)


nps_app = typer.Typer(
    help="Net Promoter Score: the score with counts and intervals (no subcommand), its drivers, the verbatims.",
    invoke_without_command=True,
)

SegmentOption = typer.Option(
    None, "--segment", metavar="NAME", help="Only answers of this segment's members (as its rule says now)."
)
SinceOption = typer.Option(
    None, "--since", metavar="DATE", help="Answers from this date (YYYY-MM-DD or ISO date-time, UTC)."
)
UntilOption = typer.Option(
    None, "--until", metavar="DATE", help="Answers up to this date; a date covers the whole day."
)
SurveyOption = typer.Option(None, "--survey", metavar="ID", help="Only answers to this survey id.")
LatestOption = typer.Option(
    False, "--latest-per-person", help="Count only each person's latest answer (default: every answer counts)."
)


@nps_app.callback(invoke_without_command=True)
def nps_command(
    ctx: typer.Context,
    by: list[str] | None = ByOption,
    segment: str | None = SegmentOption,
    period: PeriodChoice | None = PeriodOption,
    smooth: str | None = SmoothOption,
    since: str | None = SinceOption,
    until: str | None = UntilOption,
    survey: str | None = SurveyOption,
    latest_per_person: bool = LatestOption,
    html: Path | None = HtmlOption,
    min_n: int | None = typer.Option(
        None,
        "--min-n",
        metavar="N",
        min=1,
        help="With --html: the fewest answers in a driver's group and in its rest (default 30, as cdp nps drivers).",
    ),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Net Promoter Score: % promoters - % detractors, with counts, n and the 95 % interval.

    Subcommands: drivers (what moves the score), verbatims (the comments by category).
    """
    if ctx.invoked_subcommand is not None:
        return
    smoothing = _smoothing(smooth, period is not None or html is not None)
    cfg, engine, filters = _open(config, since, until, survey, latest_per_person, segment, with_rules=html is not None)
    chosen: nps.Period | None = None if period is None else "week" if period is PeriodChoice.week else "month"
    with common.store_errors(cfg):
        result = report(engine, filters, by or (), chosen, smoothing=smoothing)
    warnings = result.warnings()
    if html is not None:
        with common.store_errors(cfg):
            if chosen is None:  # the page always has a trend: by month unless --period says otherwise
                result = with_trend(result, engine, "month", smoothing)
            result = with_details(result, engine, cfg, evaluation_time(), min_n=min_n)
        page = result
        try:
            html.write_text(render(page), encoding="utf-8")
        except OSError as exc:
            common.fail(f"cannot write {html}: {exc.strerror or exc}", common.EXIT_FAILED)
    for line in warnings:
        stderr.print(f"[yellow]warning:[/] {escape(line)}", highlight=False)
    if result.summary.n == 0:
        _say_none(filters)
    if as_json:
        emit_json({**result.to_dict(), "html": str(html) if html else None})
    elif result.summary.n:
        _print(result)
    if html is not None:
        stderr.print(f"wrote {escape(str(html))}", highlight=False)


def _open(
    config: Path,
    since: str | None,
    until: str | None,
    survey: str | None,
    latest: bool,
    segment: str | None,
    *,
    with_rules: bool = False,
) -> tuple[Config, Engine, nps.Filters]:
    """The config, the store and the answers' filters of the common options (bad ones exit 2).

    The answers need no config section; ``--segment`` and ``with_rules`` (the report's segment breakdowns, the
    drivers' configured segments) load the rule sections too.
    """
    filters = nps.Filters(_when(since, "--since"), _when(until, "--until"), survey, latest)
    if filters.since and filters.until and nps.as_utc(filters.since) > nps.as_utc(filters.until):
        common.fail("--since is after --until")
    cfg, loaded = load_for_reading(config, RULE_SECTIONS if segment is not None or with_rules else ())
    rules = None
    if segment is not None:
        from cdp_profiles.cli.segments import known_segment

        rules = rules_for_reading(cfg)
        known_segment(rules, segment)
    engine = open_for_reading(cfg, loaded)
    if rules is not None and segment is not None:
        from cdp_profiles.segments import members_query

        members = members_query(rules, segment, engine.dialect.name, evaluation_time())
        filters = dataclasses.replace(filters, segment=segment, members=members)
    return cfg, engine, filters


def _say_none(filters: nps.Filters) -> None:
    filtered = filters.since or filters.until or filters.survey or filters.segment
    stderr.print("no NPS answers " + ("match these filters" if filtered else "in the store yet"), highlight=False)


def _smoothing(text: str | None, has_trend: bool) -> Smoothing | None:
    if text is None:
        return None
    if not has_trend:
        common.fail("--smooth smooths the trend: add --period week|month (or --html, whose page has a trend)")
    try:
        return parse_smoothing(text)
    except nps.NpsError as exc:
        common.fail(f"--smooth: {exc}")


def _when(text: str | None, option: str) -> date | datetime | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        common.fail(f"{option} {text!r} is not a date (YYYY-MM-DD) or an ISO date-time")


def _print(result: NpsReport) -> None:
    s = result.summary
    stdout.print(
        f"[bold]NPS {points(s.nps)}[/] ± {points(s.margin_of_error, False)} points (95 %{_interval(s)}), n = {s.n:,}"
        f"  [dim]{escape(describe(result))}[/]",
        highlight=False,
    )
    stdout.print(_table("", [("all answers", s)]))
    for trait, groups in result.breakdowns.items():
        stdout.print()
        stdout.print(_table(trait, [(g.label, g.figure) for g in groups], f"NPS by {trait}"))
    if result.period is not None:
        stdout.print()
        title = "NPS per ISO week" if result.period == "week" else "NPS per month"
        if result.smoothing is not None:
            title += f", smoothed: {result.smoothing.label}"
        smoothed = [s.nps for s in result.smoothed] if result.smoothing is not None else None
        stdout.print(_table(result.period, [(p.period, p.figure) for p in result.trend], title, smoothed))


def _interval(figure: nps.NpsFigure) -> str:
    bounds = figure.interval
    return "" if bounds is None else f": {points(bounds[0])} to {points(bounds[1])}"


def _table(
    first: str,
    rows: Sequence[tuple[str, nps.NpsFigure]],
    title: str | None = None,
    smoothed: Sequence[float | None] | None = None,
) -> Table:
    table = Table(title=escape(title) if title else None, title_justify="left", show_edge=False, pad_edge=False)
    table.add_column(escape(first))
    columns = ("NPS", *(("smoothed",) if smoothed is not None else ()), "± points", "n", "promoters", "passives")
    for column in (*columns, "detractors"):
        table.add_column(column, justify="right")
    for i, (label, f) in enumerate(rows):
        style = "yellow" if f.n and f.low_n else None
        table.add_row(
            escape(label),
            points(f.nps),
            *((points(smoothed[i]),) if smoothed is not None else ()),
            points(f.margin_of_error, False),
            f"{f.n:,}",
            _share(f.promoters, f.pct_promoters),
            _share(f.passives, f.pct_passives),
            _share(f.detractors, f.pct_detractors),
            style=style,
        )
    return table


def _share(count: int, pct: float | None) -> str:
    return "–" if pct is None else f"{count:,} ({pct:.1f} %)"
