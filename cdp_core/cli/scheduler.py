"""`cdp scheduler run|status` (a lazy command of the app: cdp_core.cli.app.KERNEL_COMMANDS)."""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from cdp_core import logs
from cdp_core.cli import common
from cdp_core.cli.common import ConfigOption, JsonOption, emit_json, stdout
from cdp_core.scheduler import Scheduler, graph_status
from cdp_core.store.leases import default_ttl
from cdp_core.timeutil import aware, utc_now

scheduler_app = typer.Typer(help="Run sync graphs on their schedules, unattended.", no_args_is_help=True)

LogFormatOption = typer.Option(
    None, "--log-format", metavar="text|json", help="Log lines as text or JSON lines (default: $CDP_LOG_FORMAT, else text)."
)


@scheduler_app.command("run")
def run_command(
    ctx: typer.Context,
    config: Path = ConfigOption,
    log_format: str | None = LogFormatOption,
    lease_ttl: float | None = typer.Option(
        None, "--lease-ttl", min=1.0, help="Seconds a graph's lease outlives a silent holder (default: $CDP_LEASE_TTL, else 30)."
    ),
    workers: int = typer.Option(8, "--workers", min=1, help="Graphs that may run at the same time."),
) -> None:
    """Run every graph with a schedule (or dependencies) until SIGTERM or SIGINT; then finish the current batch and exit 0."""
    try:
        fmt = logs.resolve_format(log_format)
    except ValueError as exc:
        common.fail(str(exc))
    logs.configure(fmt)  # before anything logs: every line in the chosen format
    cfg, loaded = common.load(config, graphs=("*enabled",))  # the secrets of every graph it will run
    logs.configure(fmt, cfg.redact)
    _default_to_info(ctx)
    system = common.open_store(cfg, loaded, create=True)
    scheduler = Scheduler(cfg, loaded, system=system, lease_ttl=lease_ttl or default_ttl(), workers=workers)
    if not scheduler.runnable:
        common.fail(f"no sync graph in {config} has a schedule, an interval or dependencies: nothing to run")
    raise typer.Exit(scheduler.serve())


@scheduler_app.command("status")
def status_command(
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
    at: str | None = typer.Option(
        None, "--at", metavar="DATETIME", help="Compute next runs as of this ISO time (UTC unless it has an offset)."
    ),
) -> None:
    """Every graph: its schedule, next run time, whether it runs now, and its last run with status, counts and duration."""
    now = utc_now()
    if at is not None:
        try:
            now = datetime.fromisoformat(at)
        except ValueError:
            common.fail(f"--at: not an ISO date and time: {at!r}")
        now = aware(now)  # the given offset is kept: next runs print in the graph's zone anyway
    cfg, loaded = common.load(config)
    with common.store_errors(cfg):
        entries = graph_status(cfg, common.open_store(cfg, loaded, create=False, missing_ok=True), now)
    if as_json:
        emit_json(entries)
        return
    table = Table(show_edge=False, pad_edge=False)
    for column in ("graph", "schedule", "next run", "now", "last run", "status", "duration", "read", "written", "rejected"):
        table.add_column(column)
    for entry in entries:
        last = entry["last_run"] or {}
        duration = last.get("duration_seconds")
        table.add_row(
            entry["graph"],
            entry["trigger"],
            _local(entry["next_run"]) or "-",
            _now_column(entry),
            _local(last.get("started_at")) or "never",
            last.get("status", ""),
            f"{duration:.1f}s" if duration is not None else "",
            f"{last['read']:,}" if last else "",
            f"{last['written']:,}" if last else "",
            f"{last['rejected']:,}" if last else "",
        )
    stdout.print(table)


def _now_column(entry: dict[str, Any]) -> str:
    if entry["running"]:
        return f"running ({entry['running']['holder']})"
    if entry["unavailable"]:
        return f"cannot run: {entry['unavailable'][0]}"
    return ""


def _local(iso: str | None) -> str | None:
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S %z") if iso else None


def _default_to_info(ctx: typer.Context) -> None:
    """A long-running scheduler says what it does: INFO unless --log-level or $CDP_LOG_LEVEL chose otherwise."""
    source = ctx.find_root().get_parameter_source("log_level")
    chosen = source is not None and source.name != "DEFAULT"
    if not chosen and "CDP_LOG_LEVEL" not in os.environ:
        logging.getLogger().setLevel(logging.INFO)
    # APScheduler's "running job"/"executed successfully" lines would drown the runs' own.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLogger().level))
