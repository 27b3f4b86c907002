"""`cdp segments list|show|preview|count|history|refresh`: segments, their members and who entered and left."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from cdp_core.cli import common
from cdp_core.cli.common import ConfigOption, JsonOption, emit_json, stdout
from cdp_core.config import Config
from cdp_core.keypaths import did_you_mean
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine

from cdp_profiles.segments.clock import evaluation_time

segments_app = typer.Typer(help="Segments: who is in them now, who entered and left, and refreshing them.", no_args_is_help=True)

NameArgument = typer.Argument(..., metavar="NAME", help="A segment of [segments.NAME] in connectors.toml.")


def _load(config: Path) -> tuple[Config, Any, Any]:
    """The config's ``[store]`` and rule sections, its plugins and its compiled rules (a bad rule: exit 2)."""
    from cdp_profiles.cli.reading import RULE_SECTIONS, load_for_reading, rules_for_reading

    cfg, loaded = load_for_reading(config, RULE_SECTIONS)
    return cfg, loaded, rules_for_reading(cfg)


@contextmanager
def _open(cfg: Config, loaded: Any) -> Iterator[Engine]:
    from cdp_profiles.cli.reading import open_for_reading

    engine = open_for_reading(cfg, loaded)
    try:
        with common.store_errors(cfg):
            yield engine
    finally:
        engine.dispose()


def known_segment(rules: Any, name: str) -> str:
    """``name`` if it is a configured segment; else the error names it, with a did-you-mean (exit 2)."""
    if name not in rules.segments:
        known = sorted(rules.segments)
        listed = ", ".join(known) if known else "none is configured ([segments.NAME] in connectors.toml)"
        common.fail(f"unknown segment {name!r}{did_you_mean(name, known)}; segments: {listed}")
    return name


@segments_app.command("list")
def list_command(config: Path = ConfigOption, as_json: bool = JsonOption) -> None:
    """Every segment: description, members (as of its last refresh) and when it was last refreshed."""
    from cdp_profiles.membership import reads

    cfg, loaded, rules = _load(config)
    with _open(cfg, loaded) as engine, engine.connect() as conn:
        counts, refreshed = reads.member_counts(conn), reads.last_refreshes(conn)
    rows = [
        {
            "name": name,
            "description": rule.description,
            "members": counts.get(name, 0) if name in refreshed else None,
            "refreshed_at": refreshed[name].refreshed_at.isoformat() if name in refreshed else None,
        }
        for name, rule in sorted(rules.segments.items())
    ]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        common.stderr.print("no segments configured ([segments.NAME] in connectors.toml)")
        return
    table = _table("segment", "description", "members", "last refresh")
    for row in rows:
        members = "never refreshed" if row["members"] is None else f"{row['members']:,}"
        table.add_row(*_cells(row["name"], row["description"], members, _when(row["refreshed_at"])))
    stdout.print(table)


@segments_app.command("show")
def show(name: str = NameArgument, config: Path = ConfigOption, as_json: bool = JsonOption) -> None:
    """One segment: its rule, description, members now (live) and at its last refresh."""

    from cdp_profiles.membership import reads
    from cdp_profiles.segments import members_query

    cfg, loaded, rules = _load(config)
    rule = rules.segments[known_segment(rules, name)]
    with _open(cfg, loaded) as engine, engine.connect() as conn:
        live = _count(conn, members_query(rules, name, conn.dialect.name, evaluation_time()))
        refreshed = reads.last_refreshes(conn).get(name)
    data = {
        "name": name,
        "where": rule.source,
        "description": rule.description,
        "members": live,
        "stream": f"segment_{name}",
        "last_refresh": refreshed.model_dump(mode="json") if refreshed else None,
    }
    if as_json:
        emit_json(data)
        return
    stdout.print(Text.assemble((name, "bold"), f"  {rule.description}" if rule.description else ""))
    stdout.print(Text(f"where {rule.source}"))
    stdout.print(Text(f"members now: {live:,}"))
    if refreshed:
        stdout.print(Text(f"last refresh {_when(refreshed.refreshed_at)}: {refreshed.members:,} members "
                          f"({refreshed.entered:,} entered, {refreshed.left:,} left)"))  # fmt: skip
    else:
        stdout.print(Text("never refreshed (cdp segments refresh)"))
    stdout.print(Text(f"as a source: store.segment_{name} (a profile_store connector's stream)"))


@segments_app.command("preview")
def preview(
    name: str = NameArgument,
    limit: int = typer.Option(20, "--limit", min=1, help="How many members to show."),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """The first members of a segment, computed live from its rule, with their name, email and phone."""

    from cdp_profiles.segments import members_query
    from cdp_profiles.store.queries import list_profiles

    cfg, loaded, rules = _load(config)
    known_segment(rules, name)
    with _open(cfg, loaded) as engine:
        members = members_query(rules, name, engine.dialect.name, evaluation_time())
        rows = list_profiles(engine, within=members, limit=limit)
    if as_json:
        emit_json([row.model_dump(mode="json") for row in rows])
        return
    if not rows:
        common.stderr.print(f"segment {name} has no members now")
        return
    table = _table("profile", "name", "email", "phone", "orders", "NPS")
    for row in rows:
        table.add_row(*_cells(row.id, row.name, row.email, row.phone, row.orders, row.nps_score))
    stdout.print(table)


@segments_app.command("count")
def count(
    name: str | None = typer.Argument(None, metavar="[NAME]", help="One segment (default: every one)."),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Members of a segment (or of each), counted live from its rule."""

    from cdp_profiles.segments import members_query

    cfg, loaded, rules = _load(config)
    names = [known_segment(rules, name)] if name is not None else sorted(rules.segments)
    now = evaluation_time()
    with _open(cfg, loaded) as engine, engine.connect() as conn:
        counts = {n: _count(conn, members_query(rules, n, conn.dialect.name, now)) for n in names}
    if as_json:
        emit_json(counts if name is None else {"name": name, "members": counts[name]})
        return
    for n, members in counts.items():
        stdout.print(Text(f"{n}: {members:,}"))


@segments_app.command("history")
def history(
    name: str = NameArgument,
    profile: str | None = typer.Option(None, "--profile", metavar="ID", help="Only this profile's stays."),
    limit: int = typer.Option(50, "--limit", min=1),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Who entered and left the segment, and when (latest change first), as its refreshes saw it."""
    from cdp_profiles.membership import reads

    cfg, loaded, rules = _load(config)
    known_segment(rules, name)
    with _open(cfg, loaded) as engine, engine.connect() as conn:
        stays = reads.history(conn, name, limit, profile)
    if as_json:
        emit_json([s.model_dump(mode="json") for s in stays])
        return
    if not stays:
        common.stderr.print(f"no history for segment {name} yet (cdp segments refresh)")
        return
    table = _table("profile", "entered", "left")
    for stay in stays:
        table.add_row(*_cells(stay.profile_id, _when(stay.entered_at), _when(stay.left_at) or "(still in)"))
    stdout.print(table)


@segments_app.command("refresh")
def refresh_command(config: Path = ConfigOption, as_json: bool = JsonOption) -> None:
    """Recompute every computed trait for everyone and every segment's membership (run it daily: time windows move)."""
    from cdp_profiles.membership.engine import rules_of
    from cdp_profiles.membership.refresh import refresh

    cfg, loaded = common.load(config)  # it writes: the whole file is checked, as `cdp sync` does
    rules = rules_of(cfg)
    with _open(cfg, loaded) as engine:
        result = refresh(engine, rules)
    if as_json:
        emit_json(result.to_dict())
        return
    stdout.print(Text(f"computed traits: {result.computed_rows:,} values ({len(rules.computed)} traits, everyone)"))
    if result.analytics is not None:
        done = ", ".join(f"{what} {n:,} people" for what, n in result.analytics.people.items())
        stdout.print(Text(f"analytics traits: {result.analytics.rows:,} values ({done})"))
        for problem in result.analytics.problems:
            stdout.print(Text(f"analytics: {problem}"))
    for change in result.segments:
        stdout.print(Text(f"{change.segment}: {change.members:,} members, {change.entered:,} entered, {change.left:,} left"))


def _count(conn: Any, stmt: Any) -> int:
    from sqlalchemy import func, select

    return int(conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one())


def _table(*columns: str) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold", justify="right" if column in ("members", "orders") else "left")
    return table


def _cells(*values: Any) -> list[Text]:
    return [Text("" if v is None else str(v)) for v in values]


def _when(value: datetime | str | None) -> str:
    if value is None:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.strftime("%Y-%m-%d %H:%M")
