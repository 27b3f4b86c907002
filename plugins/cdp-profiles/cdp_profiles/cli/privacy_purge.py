"""`cdp privacy purge [--dry-run] [--json]`: delete what ``[privacy.retention]`` keeps no longer."""

from __future__ import annotations

from pathlib import Path

import typer
from cdp_core.cli import common
from cdp_core.cli.common import ConfigOption, JsonOption, emit_json, stdout
from cdp_core.timeutil import utc_now
from rich.table import Table

from cdp_profiles.cli.privacy import privacy_app
from cdp_profiles.cli.reading import open_for_reading
from cdp_profiles.privacy.config import privacy_of
from cdp_profiles.privacy.log_retention import log_readers
from cdp_profiles.privacy.retention import purge


@privacy_app.command("purge")
def purge_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be deleted; delete nothing."),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    r"""Delete what \[privacy.retention] keeps no longer, per kind (the scheduler does it daily); audited."""
    cfg, loaded = common.load(config)
    retention = privacy_of(cfg.sections).retention
    if not retention.periods():
        common.fail("no retention configured: add e.g. `[privacy.retention] events = \"400d\"` to connectors.toml")
    readers = log_readers(cfg)  # who reads the ingest log: what they have not all read stays
    engine = open_for_reading(cfg, loaded)  # a missing store is a one-line error, exit 1; never created here
    try:
        with common.store_errors(cfg):
            result = purge(engine, retention, readers, utc_now(), dry_run=dry_run)
    finally:
        engine.dispose()
    if as_json:
        emit_json(result.to_dict())
        return
    table = Table("kind", "older than", "rows " + ("to delete" if dry_run else "deleted"))
    for kind, rows in result.counts.items():
        table.add_row(kind, result.cutoffs[kind].strftime("%Y-%m-%d %H:%M UTC"), f"{rows:,}")
    stdout.print(table)
    for why in result.held:
        stdout.print(f"ingest_log kept whole: {why}")
    if dry_run:
        stdout.print("dry run: nothing was deleted")
