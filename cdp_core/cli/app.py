"""The commands of ``cdp``: validate, plugins, sync, runs (the other groups live in their own modules).

Kept light: ``cdp --help`` imports this module, so the store, the scheduler and the other
groups' modules are imported inside the commands that use them (the groups are lazy
commands: :data:`KERNEL_COMMANDS`, :mod:`cdp_core.cli.lazy`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from cdp_core import logs
from cdp_core.cli import common
from cdp_core.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, ConfigOption, JsonOption, emit_json, stderr, stdout
from cdp_core.cli.lazy import LazyEntry, lazy_group
from cdp_core.plugins import LazyCommand
from cdp_core.runinfo import RunInfo, RunKind, RunStatus

if TYPE_CHECKING:  # pydantic models: imported by the commands that load the config, not by `cdp --help`
    from cdp_core.graph import SyncGraph

EXIT_INTERRUPTED = 130
"""`cdp sync` stopped at once by a second Ctrl-C (the shell's code for SIGINT)."""

KERNEL_COMMANDS: dict[str, LazyEntry] = {
    name: LazyEntry(LazyCommand(target, help))
    for name, target, help in (
        (
            "new-plugin",
            "cdp_core.cli.new_plugin:new_plugin",
            "Scaffold a plugin distribution cdp-NAME (pyproject, a source skeleton, tests), or with --declarative a\n"
            "config-only REST connector (connectors.toml and a test running the conformance suite on it).",
        ),
        (
            "serve",
            "cdp_core.cli.serve:serve",
            "Accept Segment-compatible /v1 calls and webhooks into the ingest log; run continuous graphs. Stops on SIGTERM.",
        ),
        ("quarantine", "cdp_core.cli.quarantine:quarantine_app", "Records rejected by a sync, with reason and raw payload."),
        ("scheduler", "cdp_core.cli.scheduler:scheduler_app", "Run sync graphs on their schedules, unattended."),
        ("state", "cdp_core.cli.state:state_app", "Where each source node of a graph resumes: show, set or reset its cursor."),
    )
}
"""The kernel's command groups, imported when they run (their help here is checked against theirs by a test)."""

app = typer.Typer(
    name="cdp",
    help="Collect, clean and unify customer data from many tools, through plugins.",
    cls=lazy_group(KERNEL_COMMANDS),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(log_level: str = typer.Option("WARNING", "--log-level", help="DEBUG, INFO, WARNING or ERROR.")) -> None:
    common.setup_logging(log_level)


@app.command()
def validate(config: Path = ConfigOption, as_json: bool = JsonOption) -> None:
    """Check connectors.toml, plugins and graphs; list every problem at once (exit 2 if any)."""
    from cdp_core.config import ConfigError, load_config

    loaded = common.plugins()
    try:
        cfg = load_config(config, loaded)
    except ConfigError as exc:
        if as_json:
            warnings = [i.to_dict() for i in exc.warnings]
            emit_json({"valid": False, "file": exc.file, "issues": [i.to_dict() for i in exc.issues], "warnings": warnings})
        else:
            common.print_config_error(exc, stdout)
            common.print_warnings(exc.file, exc.warnings)
        raise typer.Exit(EXIT_USAGE) from None
    if as_json:
        emit_json(
            {
                "valid": True,
                "file": str(config),
                "connectors": sorted(cfg.connectors),
                "graphs": sorted(cfg.graphs),
                "warnings": [i.to_dict() for i in cfg.warnings],
            }
        )
        return
    common.print_warnings(str(config), cfg.warnings)
    stdout.print(
        f"[green]ok[/] {config}: {len(cfg.connectors)} connectors, {len(cfg.graphs)} sync graphs "
        f"({', '.join(sorted(cfg.graphs)) or 'none'})",
        highlight=False,
    )
    for plugin in loaded.broken:
        stderr.print(f"[yellow]warning:[/] plugin {plugin.name} is broken: {plugin.error}", highlight=False)


@app.command()
def plugins(as_json: bool = JsonOption) -> None:
    """Every plugin, its distribution and version, and what it registered; broken ones with their error."""
    loaded = common.plugins()
    infos = [info.to_dict() for info in loaded.info.values()]
    if as_json:
        emit_json(infos)
        return
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False)
    for column in ("plugin", "distribution", "version", "status", "registered"):
        table.add_column(column)
    for info in infos:
        registered = "; ".join(f"{role}: {', '.join(names)}" for role, names in info["registered"].items())
        status = {"ok": "[green]ok[/]", "disabled": "[yellow]disabled[/]"}.get(info["status"], "[red]broken[/]")
        table.add_row(info["name"], info["distribution"] or "", info["version"] or "", status, registered or info["error"] or "")
    stdout.print(table)
    for info in infos:
        if info["status"] == "broken":
            stderr.print(f"[red]{info['name']}[/]: {info['error']}", highlight=False)


@app.command()
def sync(
    graph: str | None = typer.Argument(None, help="The sync graph to run."),
    all_graphs: bool = typer.Option(False, "--all", help="Run every graph, dependencies first."),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Run one sync graph, or all enabled ones (dependencies first); exit 1 if any run failed."""
    from cdp_core.cli.progress import ProgressView, run_table
    from cdp_core.cli.signals import stop_on_signals
    from cdp_core.scheduler.execute import prepare, run_guarded
    from cdp_core.store.leases import LeaseBusy, Leases

    if (graph is None) == (not all_graphs):
        common.fail("name one GRAPH or pass --all")
    # Only the secrets of the graphs about to run are needed (cdp validate checks them all).
    cfg, loaded = common.load(config, graphs={"*enabled"} if all_graphs else {graph})  # type: ignore[arg-type]
    if graph is not None and graph not in cfg.graphs:
        common.fail(f"no sync graph {graph!r} in {config}; graphs: {', '.join(sorted(cfg.graphs)) or 'none'}")
    enabled = set(cfg.enabled_graphs())
    names = [n for n in _in_dependency_order(cfg.graphs) if n in enabled] if all_graphs else [graph]
    if all_graphs and len(enabled) < len(cfg.root.syncs):
        skipped = sorted(set(cfg.root.syncs) - enabled)
        stderr.print(f"not run (enabled = false, or a secret they need is not set): {', '.join(skipped)}", highlight=False)
    runs: list[RunInfo] = []
    failed: set[str] = set()
    logs.configure(None, cfg.redact)  # $CDP_LOG_FORMAT; run id and graph on every line of a run
    system = common.open_store(cfg, loaded, create=True)
    leases = Leases(system.engine)
    prepare(cfg, loaded)
    with stop_on_signals() as stop:
        for name in names:
            assert name is not None
            if stop.is_set():
                stderr.print(f"[yellow]not started[/] {name}: stopping", highlight=False)
                continue
            blocked = [d for d in cfg.graphs[name].config.depends_on if d in failed]
            if blocked:
                failed.add(name)
                stderr.print(f"[yellow]skipped[/] {name}: depends on failed {', '.join(blocked)}", highlight=False)
                continue
            try:
                with ProgressView(stderr, enabled=not as_json) as view:
                    # Under the graph's lease: never overlaps a scheduled run of it, in any process.
                    outcome = run_guarded(cfg, loaded, system, name, leases=leases, stop=stop, on_progress=view.update)
            except LeaseBusy as busy:
                failed.add(name)
                stderr.print(f"[red]busy[/] {busy}; not started (try again when it has finished)", highlight=False)
                continue
            except KeyboardInterrupt:
                # A second Ctrl-C: the run was recorded as interrupted and its lease released on the way out.
                stderr.print(f"[red]interrupted[/] {name}: stopped mid-batch; that batch was not committed", highlight=False)
                raise typer.Exit(EXIT_INTERRUPTED) from None
            assert outcome.run is not None
            run = outcome.run
            runs.append(run)
            # Stopped on request (SIGTERM, Ctrl-C) after a committed batch: not a failure.
            if run.status is not RunStatus.succeeded and not (run.status is RunStatus.interrupted and stop.is_set()):
                failed.add(name)
            if not as_json:
                colour = "green" if run.status is RunStatus.succeeded else "red"
                stdout.print(run_table(run, f"{name}: [{colour}]{run.status}[/] in {_duration(run)} (run {run.id[:8]})"))
                if run.error:
                    stdout.print(f"  {run.error}", style="red", highlight=False, markup=False)
                for node_name, stats in run.nodes.items():
                    for message, count in sorted(stats.warnings.items()):
                        line = f"  {node_name}: {count:,}x {message}"
                        stdout.print(line, style="yellow", highlight=False, markup=False)
    if as_json:
        emit_json([run.to_dict() for run in runs])
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


@app.command()
def runs(
    graph: str | None = typer.Option(None, "--graph", help="Only this graph."),
    limit: int = typer.Option(20, "--limit", min=1),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Recent sync runs, newest first, with status, counts and duration."""
    from rich.table import Table

    cfg, loaded = common.load(config)
    with common.store_errors(cfg):
        history = common.open_store(cfg, loaded, create=False).runs(graph, limit)
    if as_json:
        emit_json([run.to_dict() for run in history])
        return
    table = Table(show_edge=False, pad_edge=False)
    columns = ("run", "graph", "status", "started", "duration", "read", "written", "rejected", "new", "held back", "suppressed", "error")
    for column in columns:
        table.add_column(column)
    for run in history:
        totals = run.totals()
        table.add_row(
            run.id[:8],
            run.graph if run.kind is RunKind.sync else f"{run.graph} ({run.kind})",
            str(run.status),
            run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            _duration(run),
            f"{totals.read:,}",
            f"{totals.written:,}",
            f"{totals.rejected:,}",
            f"{totals.new_rejects:,}",
            f"{totals.held_back:,}",
            f"{totals.suppressed:,}",
            (run.error or "")[:80],
        )
    stdout.print(table)
    # Per node and reason: who was kept from which export, and why (docs/consent.md); per node, what
    # the record screens dropped (a suppressed person's records and rejects, docs/privacy.md).
    for run in history:
        for name, stats in run.nodes.items():
            if stats.held_back:
                stdout.print(f"{run.id[:8]} {name}: held back: {stats.held_back_text()}", highlight=False, markup=False)
            if stats.suppressed:
                stdout.print(f"{run.id[:8]} {name}: suppressed: {stats.suppressed:,}", highlight=False, markup=False)


def _in_dependency_order(graphs: dict[str, SyncGraph]) -> list[str]:
    from cdp_core.graph import toposort

    order, _ = toposort({name: graph.config.depends_on for name, graph in graphs.items()})
    return order


def _duration(run: RunInfo) -> str:
    if run.finished_at is None:
        return "running"
    return f"{(run.finished_at - run.started_at).total_seconds():.1f}s"

