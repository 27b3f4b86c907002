"""The commands of ``cdp``: validate, plugins, sync, runs (the other groups live in their own modules)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from cdp_core import logs
from cdp_core.cli import common
from cdp_core.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, ConfigOption, JsonOption, emit_json, stderr, stdout
from cdp_core.cli.progress import ProgressView, run_table
from cdp_core.cli.signals import stop_on_signals
from cdp_core.config import ConfigError, load_config
from cdp_core.graph import SyncGraph, toposort
from cdp_core.runinfo import RunInfo, RunKind, RunStatus
from cdp_core.scheduler.execute import prepare, run_guarded
from cdp_core.store.leases import LeaseBusy, Leases

EXIT_INTERRUPTED = 130
"""`cdp sync` stopped at once by a second Ctrl-C (the shell's code for SIGINT)."""

app = typer.Typer(
    name="cdp",
    help="Collect, clean and unify customer data from many tools, through plugins.",
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
    order, _ = toposort({name: graph.config.depends_on for name, graph in graphs.items()})
    return order


def _duration(run: RunInfo) -> str:
    if run.finished_at is None:
        return "running"
    return f"{(run.finished_at - run.started_at).total_seconds():.1f}s"


# The kernel's command groups in their own modules register themselves on `app` when imported;
# plugins' commands are added by cdp_core.cli.main (cdp_register_commands).
from cdp_core.cli import new_plugin as _new_plugin  # noqa: E402, F401
from cdp_core.cli import quarantine as _quarantine  # noqa: E402, F401
from cdp_core.cli import scheduler as _scheduler  # noqa: E402, F401
from cdp_core.cli import serve as _serve  # noqa: E402, F401
from cdp_core.cli import state as _state  # noqa: E402, F401
