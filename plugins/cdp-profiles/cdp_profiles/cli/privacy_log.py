"""`cdp privacy log [--json]`: the audit log of privacy requests, newest first (no identifier in readable form)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from cdp_core.cli import common
from cdp_core.cli.common import ConfigOption, JsonOption, emit_json, stdout
from rich.table import Table
from rich.text import Text

from cdp_profiles.cli.privacy import privacy_app
from cdp_profiles.cli.reading import open_for_reading
from cdp_profiles.privacy.audit import SUBJECT_SHOWN, read_log

KINDS = ("forget", "suppress", "unsuppress", "export", "purge")


@privacy_app.command("log")
def log_command(
    kind: str | None = typer.Option(None, "--kind", help=f"Only requests of this kind: {', '.join(KINDS)}."),
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many, newest first."),
    config: Path = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """The audit log: every privacy request (when, kind, outcome, details), the subject as a short keyed hash."""
    if kind is not None and kind not in KINDS:
        from cdp_core.keypaths import did_you_mean

        common.fail(f"--kind: unknown kind {kind!r}{did_you_mean(kind, list(KINDS))}; kinds: {', '.join(KINDS)}")
    cfg, loaded = common.load(config)
    engine = open_for_reading(cfg, loaded)
    try:
        with common.store_errors(cfg), engine.connect() as conn:
            entries = read_log(conn, limit, kind)
    finally:
        engine.dispose()
    if as_json:
        emit_json([e.shown() for e in entries])
        return
    if not entries:
        common.stderr.print("no privacy requests yet")
        return
    table = Table("when (UTC)", "kind", "outcome", f"subject ({SUBJECT_SHOWN} of 64 hex)", "details", "reason")
    for e in entries:
        shown = e.shown()
        table.add_row(
            e.created_at.strftime("%Y-%m-%d %H:%M:%S"), e.kind, e.outcome, shown["subject"] or "-",
            Text(_details(e.details)), Text(e.reason or ""),  # as written: no markup
        )  # fmt: skip
    stdout.print(table)


def _details(details: Any) -> str:
    """Counts as ``name n, outer.inner n, ...`` (nested objects flattened); anything else as compact JSON."""
    if details is None:
        return ""
    if not isinstance(details, dict):
        return json.dumps(details)
    return ", ".join(_flat(details, ""))


def _flat(value: dict[str, Any], prefix: str) -> list[str]:
    out: list[str] = []
    for name, item in value.items():
        if isinstance(item, dict):
            out += _flat(item, f"{prefix}{name}.")
        else:
            out.append(f"{prefix}{name} {item if isinstance(item, (int, str)) else json.dumps(item)}")
    return out
