"""`cdp quarantine list|retry`: records a sync rejected, and sending them again (a lazy command of the app: cdp_core.cli.app.KERNEL_COMMANDS)."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from cdp_core import logs
from cdp_core.cli import common
from cdp_core.cli.app import EXIT_INTERRUPTED
from cdp_core.cli.common import EXIT_FAILED, EXIT_OK, ConfigOption, JsonOption, emit_json, stderr, stdout
from cdp_core.cli.operator import check_node, existing_store, graph_nodes
from cdp_core.cli.progress import ProgressView, run_table
from cdp_core.cli.signals import stop_on_signals
from cdp_core.retry import Retry, retry_guarded
from cdp_core.runinfo import RunStatus
from cdp_core.scheduler.execute import prepare
from cdp_core.store.leases import LeaseBusy, Leases
from cdp_core.store.system import QuarantineEntry

quarantine_app = typer.Typer(help="Records rejected by a sync, with reason and raw payload.", no_args_is_help=True)


@quarantine_app.command("list")
def quarantine_list(
    graph: str | None = typer.Option(None, "--graph"),
    node: str | None = typer.Option(None, "--node"),
    run: str | None = typer.Option(None, "--run", help="A run id."),
    limit: int = typer.Option(100, "--limit", min=1),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Rejected records with the node, run, reason and raw payload."""
    cfg, _ = common.load(config)
    rows = existing_store(cfg).quarantine(graph, node, run, limit)
    if as_json:
        emit_json(rows)
        return
    table = Table(show_edge=False, pad_edge=False)
    for column in ("id", "graph", "node", "run", "reason", "payload"):
        table.add_column(column, overflow="fold")
    for row in rows:
        payload = json.dumps(row["payload"], default=str, ensure_ascii=False)
        table.add_row(str(row["id"]), row["graph"], row["node"], row["run_id"][:8], row["reason"], payload[:120])
    stdout.print(table)
    if not rows:
        stderr.print("quarantine is empty" + (" for that filter" if graph or node or run else ""))


@quarantine_app.command("retry")
def quarantine_retry(
    graph: str | None = typer.Option(None, "--graph", help="Only records of this sync graph."),
    node: str | None = typer.Option(None, "--node", help="Only records this node rejected."),
    ids: list[int] | None = typer.Option(None, "--id", help="Only this quarantine row (repeatable; ids as `cdp quarantine list` shows)."),
    reason: str | None = typer.Option(
        None, "--reason", help="Only records whose reason contains this text, or matches re:PATTERN (a regular expression)."
    ),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Send quarantined records again from the node that rejected them, with today's config and plugins.

    Those that pass leave the quarantine; those rejected again stay, with today's reason.
    Each graph's retry is a run of its own, under the graph's lease. Exit 1 if a retry failed.
    """
    ids = ids or []
    cfg, loaded = common.load(config)
    if graph is not None:
        graph_nodes(cfg, graph)
        if node is not None:
            check_node(cfg, graph, node)
    elif node is not None and not any(node in graph_nodes(cfg, g) for g in cfg.root.syncs):
        common.fail(f"no graph of {cfg.path} has a node {node!r}")
    if reason is not None and reason.startswith("re:"):
        try:
            re.compile(reason[3:])
        except re.error as exc:
            common.fail(f"--reason: not a regular expression: {reason[3:]!r} ({exc})")
    system = existing_store(cfg, loaded)
    entries = system.quarantined(graph, node, ids, reason)
    if not entries:
        what = _describe_filter(graph, node, ids, reason)
        stderr.print(f"nothing in quarantine matches{what}: nothing retried", highlight=False, markup=False)
        if as_json:
            emit_json([])
        raise typer.Exit(EXIT_OK)
    by_graph: dict[str, list[QuarantineEntry]] = defaultdict(list)
    for entry in entries:
        by_graph[entry.graph].append(entry)
    gone = sorted(g for g in by_graph if g not in cfg.root.syncs)
    for name in gone:
        stderr.print(
            f"[yellow]not retried[/] {len(by_graph.pop(name))} record(s) of graph {escape(repr(name))}: "
            f"it is no longer in {escape(str(cfg.path))}",
            highlight=False,
        )
    # The retried graphs run: the secrets of their connectors are needed now.
    cfg, loaded = common.load(config, loaded, graphs=set(by_graph))
    logs.configure(None, cfg.redact)
    prepare(cfg, loaded)
    leases = Leases(system.engine)
    results: list[dict[str, Any]] = []
    failed = bool(gone) and not by_graph
    with stop_on_signals() as stop:
        for name, group in by_graph.items():
            if stop.is_set():
                stderr.print(f"[yellow]not retried[/] {len(group)} record(s) of {escape(name)}: stopping", highlight=False)
                continue
            retry = Retry(group)
            try:
                with ProgressView(stderr, enabled=not as_json) as view:
                    run = retry_guarded(
                        cfg, loaded, system, name, retry, leases=leases, on_progress=view.update, should_stop=stop.is_set
                    )
            except LeaseBusy as busy:
                failed = True
                stderr.print(f"[red]busy[/] {escape(str(busy))}; nothing retried (try again when it has finished)", highlight=False)
                continue
            except KeyboardInterrupt:
                # A second Ctrl-C: the run was recorded as interrupted and its lease released on the way out.
                stderr.print(f"[red]interrupted[/] {escape(name)}: stopped mid-batch; that batch was not committed", highlight=False)
                raise typer.Exit(EXIT_INTERRUPTED) from None
            # Stopped on request (SIGTERM, Ctrl-C) after a committed batch: not a failure; the rest stays in quarantine.
            failed = failed or not (run.status is RunStatus.succeeded or (run.status is RunStatus.interrupted and stop.is_set()))
            totals = run.totals()
            result = {
                "graph": name,
                "selected": len(group),
                "sent": retry.sent,
                "written": totals.written,
                "rejected_again": totals.rejected,
                "same_reason": totals.already_quarantined,
                "suppressed": totals.suppressed,
                "not_sent": dict(retry.skipped),
                "run": run.to_dict(),
            }
            results.append(result)
            if not as_json:
                colour = "green" if run.status is RunStatus.succeeded else "red"
                title = (
                    f"{escape(name)}: retry [{colour}]{run.status}[/] (run {run.id[:8]}): {retry.sent} record(s) sent again, "
                    f"{totals.written} written, {totals.rejected} rejected again"
                    + (f" ({totals.already_quarantined} for the same reason)" if totals.already_quarantined else "")
                    + (f", {totals.suppressed} suppressed (removed from quarantine)" if totals.suppressed else "")
                )
                stdout.print(run_table(run, title))
                if run.error:
                    stdout.print(f"  {run.error}", style="red", highlight=False, markup=False)
            for why, count in retry.skipped.items():
                stderr.print(f"[yellow]not retried[/] {count} record(s) of {escape(name)}: {escape(why)}", highlight=False)
    if as_json:
        emit_json(results)
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


def _describe_filter(graph: str | None, node: str | None, ids: list[int], reason: str | None) -> str:
    parts = [f"--graph {graph}" if graph else "", f"--node {node}" if node else ""]
    parts += [f"--id {i}" for i in ids] + [f"--reason {reason!r}" if reason is not None else ""]
    shown = " ".join(p for p in parts if p)
    return f" {shown}" if shown else ""
