"""`cdp state show|set|reset GRAPH [NODE]`: where a graph's source nodes resume (a lazy command of the app: cdp_core.cli.app.KERNEL_COMMANDS).

A source node's cursor is what its stream reported after the last committed page.
``reset`` forgets it (the next run reads the stream from the start), ``set`` puts a
value of the stream's own shape there (``show`` prints it; a file stream's is
``{"watermark": ...}``). Changes are made under the graph's lease, so never while
the graph runs anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from cdp_core.base import WriteMode
from cdp_core.cli import common
from cdp_core.cli.common import EXIT_FAILED, ConfigOption, JsonOption, emit_json, stderr, stdout
from cdp_core.cli.operator import check_node, existing_store, graph_nodes
from cdp_core.config import Config
from cdp_core.store import SystemStore
from cdp_core.store.leases import LeaseBusy, Leases

state_app = typer.Typer(
    help="Where each source node of a graph resumes: show, set or reset its cursor.", no_args_is_help=True
)

GraphArgument = typer.Argument(..., metavar="GRAPH", help="A sync graph of connectors.toml.")


@state_app.command("show")
def show(
    graph: str = GraphArgument,
    node: str | None = typer.Argument(None, metavar="[NODE]", help="Only this source node."),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """The cursor of each source node of GRAPH (or of NODE): where its next run resumes."""
    cfg, _ = common.load(config)
    nodes = graph_nodes(cfg, graph)
    if node is not None:
        check_node(cfg, graph, node, source=True)
    names = [node] if node is not None else [n for n, c in nodes.items() if c.role == "source"]
    states = {s.node: s for s in existing_store(cfg).states(graph)}
    entries: list[dict[str, Any]] = []
    for name in names:
        state = states.get(name)
        entries.append(
            {
                "node": name,
                "source": nodes[name].ref,
                "cursor": state.cursor if state else None,
                "stored": state is not None,
                "updated_at": state.updated_at.isoformat() if state else None,
                "run_id": state.run_id if state else None,
            }
        )
    if as_json:
        emit_json(entries)
        return
    table = Table(show_edge=False, pad_edge=False)
    for column in ("node", "source", "cursor", "updated", "by"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        stored = entry["stored"]
        table.add_row(
            entry["node"],
            entry["source"],
            json.dumps(entry["cursor"], ensure_ascii=False, default=str) if stored else "none: reads from the start",
            entry["updated_at"] or "",
            (entry["run_id"] or "")[:8] or ("cdp state set" if stored else ""),
        )
    stdout.print(table)


@state_app.command("set")
def set_cursor(
    graph: str = GraphArgument,
    node: str = typer.Argument(..., metavar="NODE", help="A source node of GRAPH."),
    value: str = typer.Argument(..., metavar="VALUE", help='The cursor as JSON, e.g. \'{"watermark": "2024-05-01"}\'.'),
    config: Path = ConfigOption,
) -> None:
    """Make NODE's next run resume after VALUE (JSON, of the shape `cdp state show` prints)."""
    cfg, loaded = common.load(config)
    check_node(cfg, graph, node, source=True)
    try:
        cursor = json.loads(value)
    except ValueError as exc:
        common.fail(
            f"VALUE for {graph}.{node} is not JSON ({exc}): {value!r}; "
            'text needs quotes inside the argument, e.g. \'"2024-05-01"\' or \'{"watermark": "2024-05-01"}\''
        )
    system = existing_store(cfg, loaded, create=True)
    before = {s.node: s.cursor for s in system.states(graph)}.get(node)
    _under_lease(system, graph, lambda conn: system.set_cursor(conn, graph, node, cursor))
    stdout.print(
        f"{graph}.{node}: cursor set to {json.dumps(cursor, ensure_ascii=False)} "
        f"(was {json.dumps(before, ensure_ascii=False, default=str)}); the next run resumes after it",
        highlight=False,
        markup=False,
    )


@state_app.command("reset")
def reset(
    graph: str = GraphArgument,
    node: str | None = typer.Argument(None, metavar="[NODE]", help="Only this source node (default: all of GRAPH's)."),
    config: Path = ConfigOption,
) -> None:
    """Forget the cursor of NODE (or of every source node of GRAPH): the next run reads from the start."""
    cfg, _ = common.load(config)
    nodes = graph_nodes(cfg, graph)
    if node is not None:
        check_node(cfg, graph, node, source=True)
    system = existing_store(cfg)
    counts: list[int] = []
    _under_lease(system, graph, lambda conn: counts.append(system.reset(graph, node, conn)))
    names = [node] if node is not None else sorted(n for n, c in nodes.items() if c.role == "source")
    stdout.print(
        f"{graph}: {', '.join(names)} will be read from the start by the next run "
        f"({counts[0]} stored cursor{'s' if counts[0] != 1 else ''} removed)",
        highlight=False,
        markup=False,
    )
    appending = _append_destinations(cfg, graph)
    if appending:
        stderr.print(
            f"note: {', '.join(appending)} append{'s' if len(appending) == 1 else ''} what it is given: "
            "the records read again will be written there again (stores that upsert by stream and key, "
            "like the profile store, keep one copy)",
            highlight=False,
            markup=False,
        )


def _under_lease(system: SystemStore, graph: str, change: Any) -> None:
    """Apply ``change(conn)`` in one transaction that also proves the graph's lease is held."""
    try:
        with Leases(system.engine).hold(graph) as lease, system.engine.begin() as conn:
            change(conn)
            lease.fence(conn)
    except LeaseBusy as busy:
        common.fail(f"{busy}; nothing changed (try again when it has finished)", EXIT_FAILED)


def _append_destinations(cfg: Config, graph: str) -> list[str]:
    """The destination nodes of ``graph`` whose plugin appends (a re-read writes its records again)."""
    found = []
    for name, node in graph_nodes(cfg, graph).items():
        connector = cfg.connectors.get(node.ref) if node.role == "destination" else None
        role = connector.roles.get("destination") if connector is not None else None
        if role is not None and getattr(role.cls, "write_mode", None) == WriteMode.append:
            found.append(name)
    return sorted(found)
