"""`cdp nps drivers` and `cdp nps verbatims`: subcommands of the `cdp nps` group (cli/nps.py)."""

from __future__ import annotations

from pathlib import Path

import typer
from cdp_core.cli import common
from cdp_core.cli.common import ConfigOption, JsonOption, emit_json, stderr, stdout
from rich.markup import escape
from rich.table import Table

from cdp_profiles import nps_drivers, nps_verbatims
from cdp_profiles.cli.nps import (
    LatestOption,
    SegmentOption,
    SinceOption,
    SurveyOption,
    UntilOption,
    _open,
    _say_none,
    nps_app,
)
from cdp_profiles.nps_report import points

__all__ = ["nps_app"]


@nps_app.command("drivers")
def drivers_command(
    min_n: int = typer.Option(
        nps_drivers.MIN_N, "--min-n", metavar="N", help="Fewest answers in a group and in the rest to compare them."
    ),
    alpha: float = typer.Option(
        nps_drivers.ALPHA, "--alpha", help="False discovery rate: significant when the adjusted p-value is below it."
    ),
    segment: str | None = SegmentOption,
    since: str | None = SinceOption,
    until: str | None = UntilOption,
    survey: str | None = SurveyOption,
    latest_per_person: bool = LatestOption,
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """What drives NPS: each trait value, computed trait, segment and behaviour against the rest, ranked."""
    if min_n < 1:
        common.fail(f"--min-n must be at least 1, got {min_n}")
    if not 0 < alpha < 1:
        common.fail(f"--alpha must be between 0 and 1 (exclusive), got {alpha}")
    cfg, engine, filters = _open(config, since, until, survey, latest_per_person, segment, with_rules=True)
    with common.store_errors(cfg):
        result = nps_drivers.analyse(engine, cfg, filters, min_n=min_n, alpha=alpha)
    if result.answers == 0:
        _say_none(filters)
    if as_json:
        emit_json({"filters": filters.to_dict(), **result.to_dict()})
        return
    if result.answers == 0:
        return
    significant = sum(d.significant for d in result.drivers)
    stdout.print(
        f"[bold]{len(result.drivers)} comparisons[/] of {result.answers:,} answers, {significant} significant "
        f"(Benjamini-Hochberg adjusted p < {alpha:g}); groups of fewer than {min_n} answers left out",
        highlight=False,
    )
    if result.anonymous:
        stdout.print(f"[dim]{result.anonymous:,} answers without a profile are not in any group[/]", highlight=False)
    if result.drivers:
        stdout.print(_drivers_table(result.drivers))
    for line in result.skipped:
        stderr.print(f"[dim]skipped: {escape(line)}[/]", highlight=False)


def _drivers_table(drivers: list[nps_drivers.Driver]) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    for column, justify in [
        ("factor", "left"),
        ("group", "left"),
        ("n", "right"),
        ("NPS", "right"),
        ("rest n", "right"),
        ("rest NPS", "right"),
        ("difference", "right"),
        ("95 % interval", "right"),
        ("p adjusted", "right"),
    ]:
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for d in drivers:
        low, high = 100 * d.comparison.low, 100 * d.comparison.high
        table.add_row(
            escape(d.factor),
            escape(d.group),
            f"{d.figure.n:,}",
            points(d.figure.nps),
            f"{d.rest.n:,}",
            points(d.rest.nps),
            points(d.difference),
            f"{points(low)} to {points(high)}",
            f"{d.p_adjusted:.3g}",
            style="bold" if d.significant else "dim",
        )
    return table


@nps_app.command("verbatims")
def verbatims_command(
    per_category: int = typer.Option(
        5, "--per-category", metavar="N", help="Example comments per category, newest first."
    ),
    terms: int = typer.Option(10, "--terms", metavar="N", help="Most frequent terms per category."),
    segment: str | None = SegmentOption,
    since: str | None = SinceOption,
    until: str | None = UntilOption,
    survey: str | None = SurveyOption,
    latest_per_person: bool = LatestOption,
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """The answers' comments by category (promoters, passives, detractors): counts, top terms, newest examples.

    Comments are shown as written and may name people.
    """
    if per_category < 0 or terms < 0:
        common.fail("--per-category and --terms must be 0 or more")
    cfg, engine, filters = _open(config, since, until, survey, latest_per_person, segment)
    with common.store_errors(cfg):
        result = nps_verbatims.verbatims(engine, filters, per_category=per_category, terms=terms)
    if as_json:
        emit_json({"filters": filters.to_dict(), **result.to_dict()})
        return
    if not any(c.n_comments for c in result.categories.values()):
        stderr.print("no NPS answers with a comment" + (" match these filters" if _filtered(filters) else ""))
        return
    for name in nps_verbatims.CATEGORIES:
        c = result.categories[name]
        stdout.print(f"[bold]{name}s[/]: {c.n_comments:,} comments", highlight=False)
        if c.terms:
            stdout.print("  terms: " + ", ".join(f"{escape(t)} ({n})" for t, n in c.terms), highlight=False)
        for e in c.examples:
            when = e.answered_at.date().isoformat() if e.answered_at else "undated"
            text = e.text if len(e.text) <= 200 else e.text[:199] + "…"
            stdout.print(f"  [dim]{when} · {e.score}[/] {escape(text)}", highlight=False)
        stdout.print()


def _filtered(filters: object) -> bool:
    return any(getattr(filters, f) for f in ("since", "until", "survey", "segment"))
