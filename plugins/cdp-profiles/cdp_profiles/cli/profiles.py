"""`cdp profiles show|list`: one person's 360° view, and lists of profiles (registered by the plugin)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import typer
from cdp_core.cli import common
from cdp_core.cli.common import EXIT_FAILED, ConfigOption, JsonOption, emit_json, stdout
from cdp_core.config import Config
from cdp_core.plugins import Plugins
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine

from cdp_profiles.cli.reading import (
    PROFILE_SECTIONS,
    RULE_SECTIONS,
    load_for_reading,
    open_for_reading,
    rules_for_reading,
)
from cdp_profiles.consent import consent_of
from cdp_profiles.identity import identity_section
from cdp_profiles.segments.clock import evaluation_time
from cdp_profiles.store.queries import (
    RECENT_EVENTS,
    ConsentView,
    Lookup,
    MergeView,
    ProfileView,
    display_name,
    list_profiles,
    lookup_profile,
    profile_view,
)

profiles_app = typer.Typer(help="Unified profiles: one person's 360° view, or a filtered list.", no_args_is_help=True)

IDENTIFIER_HELP = (
    "email:ADDRESS, phone:NUMBER, TYPE:VALUE for any identifier type (e.g. shopify_customer_id:42), "
    "profile:ID or a bare profile id, or a bare email or phone. Values are normalized as the store does."
)
WhereOption = typer.Option(
    None,
    "--where",
    help="A rule of the segment language (\"count(orders, days = 90) >= 2\"), or TRAIT=VALUE "
    "(case-insensitive); repeat it: all must match.",
)
_TRAIT_EQUALS = re.compile(r"\s*([A-Za-z_][\w.-]*)\s*=(?!=)(.*)")
"""The old ``--where TRAIT=VALUE`` form (one ``=``): not a rule of the language, which compares with ``==``."""


@contextmanager
def _store(config: Config, loaded: Plugins) -> Iterator[Engine]:
    """The store for reading (never created here: a missing one is a one-line error, exit 1)."""
    engine = open_for_reading(config, loaded)
    try:
        with common.store_errors(config):
            yield engine
    finally:
        engine.dispose()


@profiles_app.command("show")
def show(
    identifier: str = typer.Argument(..., help=IDENTIFIER_HELP),
    segment: str | None = typer.Option(
        None, "--segment", metavar="NAME", help="Also say why the person is in this segment or not (each condition)."
    ),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Everything known about one person: traits, identities, merges and why, events, orders, NPS, consents, segments."""
    cfg, loaded = load_for_reading(config, PROFILE_SECTIONS if segment is None else RULE_SECTIONS)
    rules = None
    if segment is not None:
        from cdp_profiles.cli.segments import known_segment

        rules = rules_for_reading(cfg)
        known_segment(rules, segment)
    why = None
    with _store(cfg, loaded) as engine:
        found = lookup_profile(engine, identifier, identity_section(cfg))
        view = profile_view(engine, found.profile_id, consent_of(cfg.sections)) if found.profile_id else None
        if view is not None and rules is not None and segment is not None:
            why = explain_membership(engine, rules, segment, view.profile.id)
    if view is None:
        common.fail(f"no profile for {identifier}" + (f" ({found.problem})" if found.problem else ""), EXIT_FAILED)
    if as_json:
        extra = {"explanation": {"segment": segment, "member": why.held, "why": _tree(why)}} if why else {}
        emit_json({"lookup": asdict(found), **view.model_dump(mode="json"), **extra})
        return
    for part in render_view(view, found):
        stdout.print(part)
    if why is not None and segment is not None:
        stdout.print(_explanation(segment, why))


def explain_membership(engine: Engine, rules: Any, segment: str, profile_id: str) -> Any:
    """The engine's explanation of ``segment`` for one live profile, read now (its tree of conditions)."""

    from cdp_profiles.segments import explain, load_person

    with engine.connect() as conn:
        person = load_person(conn, profile_id)
    if person is None:
        common.fail(f"profile {profile_id} is not live", EXIT_FAILED)
    return explain(rules, segment, person, evaluation_time())


def _tree(node: Any) -> dict[str, Any]:
    value = node.value if isinstance(node.value, (str, int, float, bool, type(None), list, dict)) else str(node.value)
    return {"condition": node.text, "value": value, "held": node.held, "parts": [_tree(c) for c in node.children]}


def _explanation(segment: str, why: Any) -> RenderableType:
    verdict = "in" if why.held else "not in"
    lines: list[RenderableType] = [Text.assemble("\n", (f"segment {segment}: {verdict}", "bold"), " (why, condition by condition)")]

    def walk(node: Any, depth: int) -> None:
        mark = ("✓", "green") if node.held else ("✗", "red")
        lines.append(Text.assemble("  " * depth, mark, f" {node.text}", (f"  = {_fmt(node.value)}", "dim")))
        for child in node.children:
            walk(child, depth + 1)

    walk(why, 1)
    return Group(*lines)


@profiles_app.command("list")
def list_command(
    where: list[str] | None = WhereOption,
    has: str | None = typer.Option(None, "--has", help="Only profiles with an identifier of this TYPE."),
    limit: int = typer.Option(50, "--limit", min=1),
    offset: int = typer.Option(0, "--offset", min=0),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Profiles, most recently updated first: name, email, phone, orders, latest NPS."""
    filters: dict[str, str] = {}
    rules_given: list[str] = []
    for item in where or []:
        old_form = _TRAIT_EQUALS.fullmatch(item)
        if old_form:
            filters[old_form.group(1)] = old_form.group(2).strip()
        elif item.strip():
            rules_given.append(item)
        else:
            common.fail("--where takes a rule (city == 'Berlin') or TRAIT=VALUE, got an empty one")
    cfg, loaded = load_for_reading(config, RULE_SECTIONS if rules_given else PROFILE_SECTIONS)
    within = None
    if rules_given:
        within = _matching(cfg, rules_given)
    with _store(cfg, loaded) as engine:
        rows = list_profiles(engine, filters, has, limit, offset, within=within(engine.dialect.name) if within else None)
    if as_json:
        emit_json([row.model_dump(mode="json") for row in rows])
        return
    if not rows:
        common.stderr.print("no profiles" + (" match that filter" if filters or has or rules_given else " yet"))
        return
    table = _table(("profile", "name", "email", "phone", "orders", "NPS", "updated"))
    for row in rows:
        nps = f"{row.nps_score} {row.nps_category or ''}" if row.nps_score is not None else ""
        table.add_row(*_cells(row.id, row.name, row.email, row.phone, row.orders, nps.strip(), row.updated_at))
    stdout.print(table)


def _matching(cfg: Config, rules_given: list[str]) -> Callable[[str], Any]:
    """The profiles every ``--where`` rule holds for, as a ``SELECT profile_id`` per dialect; a bad rule: exit 2."""

    from cdp_profiles.segments import RulesError, where_query

    rules = rules_for_reading(cfg)
    for text in rules_given:
        try:
            rules.compile(text)
        except RulesError as exc:
            common.fail(f"--where {text!r}: {exc}")
    now = evaluation_time()
    combined = " and ".join(f"({text})" for text in rules_given)
    return lambda dialect: where_query(rules, combined, dialect, now)


# -- rendering ------------------------------------------------------------------------


def render_view(view: ProfileView, found: Lookup | None = None) -> list[RenderableType]:
    """The 360° view as rich renderables, section by section; empty sections say so in one line."""
    p = view.profile
    name = display_name({t.name: t.value for t in view.traits})
    head = Text.assemble((name or "(no name)", "bold"), "  ", (p.id, "cyan"))
    lines: list[RenderableType] = [head, Text(f"created {_fmt(p.created_at)}, updated {_fmt(p.updated_at)}")]
    if found is not None and found.matched:
        lines.append(Text(f"found by {found.matched}"))
    if found is not None and found.merged_from:
        note = f"profile {found.merged_from} was merged into this one; showing the surviving profile"
        lines.append(Text(note, style="yellow"))
    if p.merged_ids:
        lines.append(Text(f"merged into it: {', '.join(p.merged_ids)}"))
    parts: list[RenderableType] = [Panel(Group(*lines), title="profile", title_align="left", expand=False)]
    columns: tuple[str, ...] = ("trait", "value", "source", "set at")
    parts.append(_section("traits", columns, view.traits, lambda t: (t.name, t.value, t.source, t.set_at)))
    parts.append(
        _section(
            "identities",
            ("type", "value", "source", "first seen", "record"),
            view.identities,
            lambda i: (i.type, i.value, i.source, i.first_seen, i.record),
        )
    )
    parts.append(_merge_history(view.merges))
    shown = str(view.event_count)
    if view.event_count > RECENT_EVENTS:
        shown = f"last {len(view.events)} of {shown}"
    parts.append(
        _section(
            f"events ({shown})",
            ("when", "event", "stream", "properties"),
            view.events,
            lambda e: (e.occurred_at, e.name, e.stream, e.properties),
        )
    )
    orders = view.orders
    summary = f"orders ({orders.count}"
    if orders.count:
        totals = ", ".join(f"{_money(v)} {c}" for c, v in orders.totals.items()) or "no revenue"
        summary += f"; {totals}; first {_fmt(orders.first_order_at)}, last {_fmt(orders.last_order_at)}"
    parts.append(
        _section(
            summary + ")",
            ("when", "order", "amount", "status", "stream"),
            orders.recent,
            lambda o: (o.occurred_at, o.order_id, f"{_money(o.amount)} {o.currency or ''}".strip(), o.status, o.stream),
        )
    )
    parts.append(
        _section(
            "NPS answers",
            ("answered", "score", "category", "comment", "survey", "stream"),
            view.nps,
            lambda n: (n.answered_at, n.score, n.category, n.comment, n.survey, n.stream),
        )
    )
    parts.append(
        _section(
            "consent by purpose (the latest decision is in force; may send: under the purpose's policy)",
            ("purpose", "policy", "decision", "since", "source", "stream", "may send"),
            view.consents.purposes,
            lambda p: (p.purpose, p.policy or "(not a purpose)", p.status or "no decision", p.occurred_at, p.source,
                       p.stream, _may(p.allowed)),
        )  # fmt: skip
    )
    current = {(c.stream, c.key) for c in view.consents.latest}
    parts.append(
        _section(
            "consent history (newest first)",
            ("purpose", "status", "at", "source", "stream", ""),
            view.consents.history,
            lambda c: (c.purpose, c.status, c.occurred_at, c.source, c.stream, _is(c, current)),
        )
    )
    columns = ("stream", "key", "kind", "when")
    parts.append(_section("source records", columns, view.records, lambda r: (r.stream, r.key, r.kind, r.occurred_at)))
    title = "segments (as of their last refresh)"
    parts.append(_section(title, ("segment", "since"), view.segments, lambda m: (m.segment, m.entered_at)))
    return parts


def _merge_history(merges: Sequence[MergeView]) -> RenderableType:
    """One block per merge: which profile went into which, then the reason on its own line, never cut."""
    title = "merge history (why these records are one person)"
    if not merges:
        return Text.assemble("\n", (title, "bold"), ": none, every record matched this profile directly")
    lines: list[RenderableType] = [Text.assemble("\n", (title, "bold"))]
    for merge in merges:
        run = f" (run {merge.run_id})" if merge.run_id else ""
        undone = f", undone {_fmt(merge.undone_at)}" if merge.undone_at else ""
        who = ("profile ", (merge.loser, "cyan"), " merged into ", (merge.winner, "cyan"))
        lines.append(Text.assemble(_fmt(merge.at), "  ", *who, run, undone))
        lines.append(Text("    " + merge.reason))
    return Group(*lines)


def _is(consent: ConsentView, current: set[tuple[str, str]]) -> str:
    return "in force" if (consent.stream, consent.key) in current else ""


def _may(allowed: bool | None) -> str:
    return "" if allowed is None else "yes" if allowed else "no"


def _section(
    title: str, columns: Sequence[str], items: Sequence[Any], row: Callable[[Any], Sequence[Any]]
) -> RenderableType:
    if not items:
        return Text.assemble("\n", (title, "bold"), ": none")
    table = _table(columns)
    for item in items:
        table.add_row(*_cells(*row(item)))
    return Group(Text.assemble("\n", (title, "bold")), table)


def _table(columns: Sequence[str]) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    for column in columns:
        right = column in ("orders", "score", "amount")
        table.add_column(column, overflow="fold", justify="right" if right else "left")
    return table


def _cells(*values: Any) -> list[Text]:
    """Data as plain text: a trait value such as "[vip]" must not be read as rich markup."""
    return [Text(_fmt(v)) for v in values]


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False, default=str)
        return text if len(text) <= 80 else text[:77] + "..."
    return str(value)


def _money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:,.2f}" if value == value.quantize(Decimal("0.01")) else f"{value:,}"
